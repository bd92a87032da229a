"""A run of a pipeline: its status, output and trace, and the controls to step through it.

A ``Run`` is a handle: the engine (``RunContext``) executes it and publishes its events; the
run's own trace is just one listener of those events (the recorder), the store another. Its
controls are in ``_stepping``, its streaming in ``_stream``, its listeners in ``_subscribers``,
fork and replay in ``_forking``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..trace import Trace
from ._config import RunOptions
from ._context import RunContext, total_cost
from ._display import plural, run_html, run_money
from ._forking import Rebuild, prepare_fork, replay_run
from ._gate import Boundary, Gate
from ._loop import (
    DoneFlag,
    engine_loop,
    in_running_loop,
    run_on_thread_loop,
    thread_loop,
    wait_future,
)
from ._stepping import Stepping
from ._stream import ChunkStream, StreamChunk, Streaming
from ._subscribers import bus_for
from ._text import as_text

__all__ = ["ChunkStream", "Run", "RunTrace", "StreamChunk", "set_live_display"]

Body = Callable[[RunContext, Any], Awaitable[Any]]
# Run ids from a private generator (seeded from the OS once): os.urandom costs ~6 µs a run, and
# the shared `random` module would repeat ids after a user's random.seed(0).
_IDS = random.Random()
_LIVE: list[Callable[[Run], Any]] = []


class RunTrace(Trace):
    """A run's trace, with ``trace.plot.timeline()``, ``.cost()``, ``.latency()``... charts."""

    __slots__ = ()

    @property
    def plot(self) -> Any:
        """The common charts over this trace (Plotly figures you can restyle)."""
        from ..viz import TracePlots

        return TracePlots(self.df)


def set_live_display(factory: Callable[[Run], Any] | None) -> None:
    """Register how a streaming run shows its tokens while a synchronous caller waits (the
    notebook layer does, on ``%load_ext orchnb``). ``factory(run)`` returns a listener with
    ``tick()`` (called on the waiting thread about ten times a second) and ``close()``."""
    _LIVE[:] = [factory] if factory is not None else []


class Run(Stepping, Streaming):
    """One execution of a pipeline.

    >>> run = pipe("some input")     # doctest: +SKIP  (runs to the end)
    >>> run.output, run.status, run.cost_usd, run.trace.df   # doctest: +SKIP
    >>> run = pipe.start("input")   # doctest: +SKIP  (paused at the first call)
    >>> run.step(); run.resume()     # doctest: +SKIP
    """

    def __init__(self, pipeline: str, pattern: str, input: Any, body: Body,
                 options: RunOptions, hooks: Sequence[Any] = (), *,
                 rebuild: Rebuild | None = None):
        self.id = f"{_IDS.getrandbits(48):012x}"
        self.pipeline = pipeline
        self.pattern = pattern
        self.input = input
        self.options = options
        self.status = "pending"
        """pending, paused, running, ok, error, cancelled, budget_exceeded, max_iterations."""
        self.output: Any = None
        self.error: BaseException | None = None
        self.trace = RunTrace()
        self._body = body
        self._hooks = list(hooks)
        self._gate: Gate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = DoneFlag()
        self.cancel_requested = False
        """Set by :meth:`cancel`; a run that has not begun yet ends at once when it begins."""
        self._pause_requested = False
        self.owner: Any = None
        """The pipeline that made this run (for display: ``rebuild`` is what forks use)."""
        self.rebuild = rebuild
        """How the run's maker builds it again (``run.fork`` / ``run.replay``); see
        :class:`~orchnb.engine._forking.Rebuild`."""
        self.source: str | None = None
        """The ``%%orch`` YAML of that pipeline, kept with the run in the store."""
        self.forked_from: str | None = None
        """The run this one was forked or replayed from."""
        self._open: dict[str, Any] = {}

    # -- the run itself --------------------------------------------------------------------
    async def _execute(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.status = "running"
        try:
            await RunContext(self, self.options, self._gate, bus_for(self.options, self._hooks)
                             ).execute(self._body)
        finally:
            if self._gate is not None:
                self._gate.finish()
            self._done.set()

    def _set_task(self, task: Any) -> None:
        self._task = task

    def finish(self, status: str, output: Any, error: BaseException | None) -> None:
        """Called by the engine as the run ends (before its last events are published)."""
        self.status, self.output, self.error = status, output, error
        if isinstance(error, Exception):
            error.run = self  # type: ignore[attr-defined]

    def run_sync(self) -> Run:
        """Run to the end from synchronous code (works inside Jupyter's running loop)."""
        if not in_running_loop():
            # Stepped inline until it first waits: a run that never does (sim models, cache
            # hits) costs no event-loop round trip; one that does goes on as a loop task.
            loop = thread_loop()
            try:
                run_on_thread_loop(self._execute(), loop, self._set_task)
            except KeyboardInterrupt:
                task = self._task
                if task is not None and not task.done():
                    task.cancel()
                    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
                self._mark_interrupted()
        else:
            # Inside Jupyter's loop the run goes on the engine's loop; a streaming run shows
            # its tokens meanwhile through the notebook's live display, ticked from here.
            live = _LIVE[0](self) if self.options.stream and _LIVE else None
            if live is not None:
                self._hooks.append(live)
            fut = asyncio.run_coroutine_threadsafe(self._execute(), engine_loop())
            try:
                wait_future(fut, self.cancel, tick=live.tick if live is not None else None)
            except KeyboardInterrupt:
                self._done.wait(30)
                self._mark_interrupted()
            finally:
                if live is not None:
                    live.close()
        return self._result()

    async def arun(self) -> Run:
        """Run to the end on the caller's event loop."""
        await self._execute()
        return self._result()

    # -- fork and replay -----------------------------------------------------------------------
    def fork(self, step: str, *, item: int | None = None, iteration: int | None = None,
             **edits: Any) -> Run:
        """A new run that replays this one's calls up to ``step`` (no provider call, no cost),
        applies ``edits`` to ``step`` (``prompt``, ``system``, ``model``, ``temperature``,
        ``max_tokens`` or a pattern's knobs such as ``max_iterations``) and returns paused at
        the step's first call: go on with ``.step()`` / ``.resume()``. ``item`` / ``iteration``
        pick one occurrence of a step inside a map or a loop.

        >>> run = pipe("a contract")                               # doctest: +SKIP
        >>> fork = run.fork("summarize", prompt="In one line: {{ input }}")  # doctest: +SKIP
        >>> fork.resume().output                                   # doctest: +SKIP
        """
        return prepare_fork(self, step, edits, item=item, iteration=iteration
                            ).start(stepping=False)

    def replay(self) -> Any:
        """Re-run this run's pipeline on its recorded responses (no provider call) and report
        the first step that no longer does what it did: a regression check after a prompt or
        code change. Returns a ``ReplayReport`` (``.ok``, ``.first``, ``.differences``).

        >>> report = run.replay()       # doctest: +SKIP
        >>> report.ok, report.first     # doctest: +SKIP
        """
        return replay_run(self)

    # -- what users look at --------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def pending(self) -> list[Boundary]:
        """Calls waiting at their boundary (the next is first)."""
        return list(self._gate.pending) if self._gate is not None else []

    @property
    def cost_usd(self) -> float:
        """Dollars spent on priced calls (see ``unpriced_calls`` for calls with no known price)."""
        return total_cost(self.trace.spans)[0]

    @property
    def unpriced_calls(self) -> int:
        return total_cost(self.trace.spans)[1]

    @property
    def tokens(self) -> int:
        return sum((s.input_tokens or 0) + (s.output_tokens or 0)
                   for s in self.trace.spans if s.kind == "model")

    @property
    def calls(self) -> int:
        return sum(1 for s in self.trace.spans if s.kind in ("model", "tool"))

    @property
    def simulated(self) -> bool:
        return any(s.simulated for s in self.trace.spans if s.kind == "model")

    def __repr__(self) -> str:
        sim = ", simulated" if self.simulated else ""
        out = "" if self.output is None else as_text(self.output)
        out = out if len(out) < 60 else out[:57] + "..."
        nxt = f", next={self.pending[0].step!r}" if self.pending else ""
        return (f"<Run {self.pipeline!r} {self.status}{nxt}: {plural(self.calls, 'call')}, "
                f"{run_money(self)}{sim}, output={out!r}>")

    def _repr_html_(self) -> str:
        return run_html(self)
