"""Step boundaries: where a run may pause (stepping, breakpoints, tool approval) and resume."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(slots=True)
class Boundary:
    """A call about to be made, waiting for permission.

    ``kind`` is "model", "tool" or "memory" (tool approval holds tools only); ``step`` the step
    making it; ``request`` the rendered messages (model) or the arguments (tool, memory).
    """

    kind: Literal["model", "tool", "memory"]
    step: str
    name: str
    """Model id or tool name."""
    request: Any
    span_parent: str | None = None
    iteration: int | None = None
    item: int | None = None
    _future: asyncio.Future[Decision] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a boundary: proceed (optionally with edited tool arguments) or reject."""

    action: Literal["proceed", "reject"] = "proceed"
    arguments: dict[str, Any] | None = None
    reason: str = ""


PROCEED = Decision()


class Gate:
    """Holds calls at their boundaries while a run is stepped; thread-safe controls.

    Everything here runs on the run's event loop: the engine awaits :meth:`wait` before each call;
    controls (:meth:`release`, :meth:`open`) are scheduled onto the loop by ``Run.step()`` and
    friends, which then await :attr:`settled`: set when the run reached its next pause or ended.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        stepping: bool = False,
        breakpoints: set[str] | None = None,
        approve_tools: bool = False,
    ):
        self.loop = loop
        self.stepping = stepping
        self.breakpoints = breakpoints or set()
        self.approve_tools = approve_tools
        self.pending: deque[Boundary] = deque()
        self.active = 0
        self.done = False
        self.settled = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.stepping or bool(self.breakpoints) or self.approve_tools

    def _should_pause(self, b: Boundary) -> bool:
        if self.stepping or b.step in self.breakpoints or b.name in self.breakpoints:
            return True
        return self.approve_tools and b.kind == "tool"

    async def wait(self, boundary: Boundary) -> Decision:
        """Called by the engine before a call; returns when the call may go ahead."""
        if not self._should_pause(boundary):
            self.active += 1
            return PROCEED
        fut = self.loop.create_future()
        boundary._future = fut
        self.pending.append(boundary)
        self._check()
        decision = await fut
        self.active += 1
        return decision

    def call_done(self) -> None:
        """Called by the engine when a call that passed the gate has finished."""
        self.active -= 1
        self._check()

    def finish(self) -> None:
        self.done = True
        for b in self.pending:
            if b._future and not b._future.done():
                b._future.cancel()
        self.pending.clear()
        self.settled.set()

    def _check(self) -> None:
        if self.done or (self.pending and self.active == 0):
            self.settled.set()

    # -- controls: run on the loop's thread (use call_soon_threadsafe from elsewhere) --
    def release(self, decision: Decision = PROCEED) -> None:
        """Let the oldest pending call go ahead (or be rejected)."""
        self.settled.clear()
        while self.pending:
            b = self.pending.popleft()
            if b._future and not b._future.done():
                b._future.set_result(decision)
                return
        self._check()

    def open(self) -> None:
        """Stop stepping and release what waits, except tool calls awaiting approval: those
        still need ``approve``/``reject`` (resuming must never approve a call by accident)."""
        self.stepping = False
        self.settled.clear()
        held = deque(b for b in self.pending if self.approve_tools and b.kind == "tool")
        held_ids = {id(b) for b in held}
        while self.pending:
            b = self.pending.popleft()
            if id(b) in held_ids:
                continue
            if b._future and not b._future.done():
                b._future.set_result(PROCEED)
        self.pending = held
        self._check()
