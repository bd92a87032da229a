"""Stepping through a run: start it paused, let calls through one by one, approve or reject a
tool call, resume, pause, cancel; each control also without waiting (widgets)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

from ..exceptions import OrchnbWarning, RunCancelled
from ._display import stopped_message
from ._gate import Decision, Gate
from ._loop import DoneFlag, engine_loop, wait_future


class Stepping:
    """The controls of ``Run`` (a base class of it: these are its methods)."""

    pipeline: str
    status: str
    error: BaseException | None
    cancel_requested: bool
    _gate: Gate | None
    _loop: asyncio.AbstractEventLoop | None
    _task: asyncio.Task[None] | None
    _done: DoneFlag
    _pause_requested: bool

    if TYPE_CHECKING:  # Run's, used here
        async def _execute(self) -> None: ...

    def _mark_interrupted(self) -> None:
        if not isinstance(self.error, RunCancelled):
            self.status = "cancelled"
            self.error = RunCancelled(stopped_message(self, "interrupted"))  # type: ignore[arg-type]
            self.error.run = self  # type: ignore[attr-defined]

    def _result(self) -> Self:
        if self.error is not None and self._done.is_set():
            raise self.error
        return self

    def start(self, *, stepping: bool = True, breakpoints: Sequence[str] = (),
              approve_tools: bool = False) -> Self:
        """Start on the engine loop and return once paused at the first boundary (or done)."""
        self._wait(self.start_nowait(stepping=stepping, breakpoints=breakpoints,
                                     approve_tools=approve_tools))
        return self._paused_or_result()

    def _wait(self, fut: Any) -> None:
        try:
            wait_future(fut, self.cancel)
        except KeyboardInterrupt:
            self._done.wait(30)
            self._mark_interrupted()
            raise self.error from None  # type: ignore[misc]

    def _paused_or_result(self) -> Self:
        if not self._done.is_set():
            self.status = "paused"
            return self
        return self._result()

    def _control(self, action: Callable[[], None]) -> Self:
        if self._done.is_set() or self._gate is None or self._loop is None:
            return self._result()
        self._wait(self._control_nowait(action))
        return self._paused_or_result()

    def _finished(self, what: str) -> bool:
        """Warn (and say what to do) when a control is used on a run that has ended."""
        if not self._done.is_set():
            return False
        warnings.warn(
            f"run of '{self.pipeline}' has already ended ({self.status}): there is nothing to "
            f"{what}. Start a paused run with pipe.start(input) (or %orch step NAME INPUT), "
            f"or re-run a step of this one with run.fork(step)", OrchnbWarning, stacklevel=3)
        return True

    def step(self, n: int = 1) -> Self:
        """Let the next ``n`` calls happen, then pause again (returns the run). On a run that
        has ended, warns and does nothing."""
        if self._finished("step"):
            return self
        for _ in range(n):
            self._control(lambda: self._gate.release())  # type: ignore[union-attr]
        return self

    def resume(self) -> Self:
        """Run on to the end (or the next breakpoint / tool awaiting approval)."""
        return self._control(lambda: self._gate.open())  # type: ignore[union-attr]

    def approve(self, arguments: dict[str, Any] | None = None) -> Self:
        """Let the pending tool call run, optionally with edited arguments."""
        if self._finished("approve"):
            return self
        return self._control(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("proceed", arguments)))

    def reject(self, reason: str = "") -> Self:
        """Refuse the pending tool call; the agent sees the rejection as an observation."""
        if self._finished("reject"):
            return self
        return self._control(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("reject", reason=reason)))

    # -- non-blocking controls (widgets: their handlers must return at once) -----------------
    def start_nowait(self, *, stepping: bool = True, breakpoints: Sequence[str] = (),
                     approve_tools: bool = False) -> concurrent.futures.Future[Self]:
        """``start`` without waiting: the returned future completes (with the run) once the run
        pauses at a boundary or ends. Its callbacks run on the engine's loop thread."""
        loop = engine_loop()

        async def begin() -> Self:
            self._gate = Gate(loop, stepping=stepping or self._pause_requested,
                              breakpoints=set(breakpoints), approve_tools=approve_tools)
            self._gate.settled.clear()
            self._task = loop.create_task(self._execute())
            await self._gate.settled.wait()
            return self._settled()

        self._loop = loop  # so that pause() and cancel() can reach the run from now on
        return asyncio.run_coroutine_threadsafe(begin(), loop)

    def _settled(self) -> Self:
        if not self._done.is_set():
            self.status = "paused"
        return self

    def _control_nowait(self, action: Callable[[], None]) -> concurrent.futures.Future[Self]:
        if self._done.is_set() or self._gate is None or self._loop is None:
            done: concurrent.futures.Future[Self] = concurrent.futures.Future()
            done.set_result(self)
            return done
        gate = self._gate

        async def go() -> Self:
            if not self._done.is_set():
                self.status = "running"
                action()
                await gate.settled.wait()
            return self._settled()

        return asyncio.run_coroutine_threadsafe(go(), self._loop)

    def step_nowait(self) -> concurrent.futures.Future[Self]:
        """``step()`` without waiting (a future done at the next pause or the end)."""
        return self._control_nowait(lambda: self._gate.release())  # type: ignore[union-attr]

    def resume_nowait(self) -> concurrent.futures.Future[Self]:
        """``resume()`` without waiting."""
        return self._control_nowait(lambda: self._gate.open())  # type: ignore[union-attr]

    def approve_nowait(self, arguments: dict[str, Any] | None = None
                       ) -> concurrent.futures.Future[Self]:
        """``approve()`` without waiting."""
        return self._control_nowait(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("proceed", arguments)))

    def reject_nowait(self, reason: str = "") -> concurrent.futures.Future[Self]:
        """``reject()`` without waiting."""
        return self._control_nowait(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("reject", reason=reason)))

    def pause(self) -> None:
        """From any thread: a running run pauses again at its next call boundary."""
        loop = self._loop
        if loop is None or self._done.is_set():
            return
        self._pause_requested = True  # a gate not made yet (start_nowait) is made stepping

        def stop_at_next() -> None:
            if self._gate is not None:
                self._gate.stepping = True

        loop.call_soon_threadsafe(stop_at_next)

    async def astep(self, n: int = 1) -> Self:
        """``step`` for async code."""
        return await asyncio.to_thread(self.step, n)

    async def aresume(self) -> Self:
        """``resume`` for async code."""
        return await asyncio.to_thread(self.resume)

    def cancel(self) -> None:
        """Cancel the run from any thread; the partial trace is kept."""
        loop = self._loop
        if loop is None or self._done.is_set():
            return

        # A task cancelled before its first step would never run its body (no trace, no end
        # of run), so a run that has not begun yet sees the flag when it does.
        self.cancel_requested = True

        def stop() -> None:
            if self._task is not None and self.status != "pending" and not self._task.done():
                self._task.cancel()

        loop.call_soon_threadsafe(stop)

    def wait(self, timeout: float | None = None) -> Self:
        """Block until the run has finished (for runs started in the background)."""
        self._done.wait(timeout)
        return self
