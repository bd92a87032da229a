"""A run of a pipeline: its status, output and trace, and the controls to step through it.

A ``Run`` is a handle: the engine (``RunContext``) executes it and publishes its events; the
run's own trace is just one listener of those events (the recorder), the store another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import RunCancelled
from ..trace import Trace, get_store
from ._config import RunOptions
from ._context import RunContext, total_cost
from ._display import money, plural, run_html
from ._events import EventBus, Subscription, global_subscriptions
from ._gate import Boundary, Decision, Gate
from ._loop import engine_loop, in_running_loop, thread_loop, wait_future
from ._ops import as_text
from ._progress import ProgressBars

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


class _Recorder:
    """The run's own trace: a listener like any other."""

    __slots__ = ()

    def on_span_start(self, *, span: Any, run: Run) -> None:
        run._open[span.span_id] = span  # a paused run's open steps (run.fork needs them)

    def on_span_end(self, *, span: Any, run: Run) -> None:
        run._open.pop(span.span_id, None)
        run.trace.spans.append(span)


class _StoreWriter:
    """Persists spans as they end (and run spans as they start: a run that dies shows up)."""

    __slots__ = ("ensure_writer", "write", "write_run")

    def __init__(self, store: Any):
        self.write = store.write
        self.write_run = store.write_run
        self.ensure_writer = store.ensure_writer

    def on_span_start(self, *, span: Any, run: Run) -> None:
        if span.kind == "run":
            # A writer thread that died is replaced (and said so) before this run's spans queue.
            self.ensure_writer()
            self.write(span)
            # What orchnb.load_run needs to rebuild the run in another kernel.
            if run.source is not None or not isinstance(run.input, str):
                self.write_run(run.id, run.source, _json_or_none(run.input))

    def on_span_end(self, *, span: Any, run: Run) -> None:
        self.write(span)


_RECORDER = Subscription(_Recorder(), trusted=True)
_BARS = Subscription(ProgressBars(), trusted=True)
_WRITERS: dict[int, tuple[Any, Subscription]] = {}
_BUSES: dict[tuple[int, ...], EventBus] = {}


def _store_subscription() -> Subscription:
    store = get_store()
    hit = _WRITERS.get(id(store))
    if hit is None or hit[0] is not store:
        hit = _WRITERS[id(store)] = (store, Subscription(_StoreWriter(store), trusted=True))
    return hit[1]


def _bus(options: RunOptions, extra: Sequence[Any]) -> EventBus:
    subs = [_RECORDER]
    if options.persist:
        subs.append(_store_subscription())
    if options.progress:
        subs.append(_BARS)
    subs += global_subscriptions()
    if extra:
        return EventBus([*subs, *(Subscription(h) for h in extra)])
    key = tuple(map(id, subs))
    bus = _BUSES.get(key)
    if bus is None or bus.subscriptions != subs:
        if len(_BUSES) > 64:
            _BUSES.clear()
        bus = _BUSES[key] = EventBus(subs)
    return bus


def _json_or_none(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def set_live_display(factory: Callable[[Run], Any] | None) -> None:
    """Register how a streaming run shows its tokens while a synchronous caller waits (the
    notebook layer does, on ``%load_ext orchnb``). ``factory(run)`` returns a listener with
    ``tick()`` (called on the waiting thread about ten times a second) and ``close()``."""
    _LIVE[:] = [factory] if factory is not None else []


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a model call's text as it arrives (``pipe.stream(x)`` yields these).

    ``attempt`` tells a retried call's restart apart: a new attempt starts its text over.
    """

    step: str
    """The step making the call."""
    text: str
    """The new text."""
    span_id: str
    run_id: str
    item: int | None = None
    """Map item (fan-outs stream several calls at once)."""
    attempt: int | None = None


class ChunkStream:
    """The chunks of a streaming run, as they arrive (iterate it once); ``.run`` is the run.
    Breaking out of the loop leaves the run going; ``close()`` (or a ``with`` block) stops it.

    >>> stream = pipe.stream("x")                 # doctest: +SKIP
    >>> text = "".join(c.text for c in stream)    # doctest: +SKIP
    >>> stream.run.status                          # doctest: +SKIP
    'ok'
    """

    def __init__(self, run: Run, chunks: Iterator[StreamChunk]):
        self.run = run
        self._chunks = chunks

    def __iter__(self) -> Iterator[StreamChunk]:
        return self._chunks

    def __next__(self) -> StreamChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop early: cancels the run if it is still going (its partial trace is kept)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if not self.run.done:
            self.run.cancel()
            self.run.wait(30)

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChunkStream of run {self.run.id} ({self.run.status})>"


class _ChunkQueue:
    """Collects a run's stream deltas for an iterator (thread-safe or loop-local)."""

    def __init__(self, put: Callable[[Any], None]):
        self.put = put

    def on_stream_delta(self, *, span: Any, text: str, run: Run, attempt: int | None = None
                        ) -> None:
        self.put(StreamChunk(span.step, text, span.span_id, run.id, span.item, attempt))

    def on_run_end(self, *, run: Run) -> None:
        self.put(None)


class Run:
    """One execution of a pipeline.

    >>> run = pipe("some input")     # doctest: +SKIP  (runs to the end)
    >>> run.output, run.status, run.cost_usd, run.trace.df   # doctest: +SKIP
    >>> run = pipe.start("input")   # doctest: +SKIP  (paused at the first call)
    >>> run.step(); run.resume()     # doctest: +SKIP
    """

    def __init__(self, pipeline: str, pattern: str, input: Any, body: Body,
                 options: RunOptions, hooks: Sequence[Any] = ()):
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
        self._done = threading.Event()
        self.cancel_requested = False
        """Set by :meth:`cancel`; a run that has not begun yet ends at once when it begins."""
        self._pause_requested = False
        self.owner: Any = None
        """The pipeline that made this run (``run.fork`` / ``run.replay`` rebuild from it)."""
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
            await RunContext(self, self.options, self._gate, _bus(self.options, self._hooks)
                             ).execute(self._body)
        finally:
            if self._gate is not None:
                self._gate.finish()
            self._done.set()

    def finish(self, status: str, output: Any, error: BaseException | None) -> None:
        """Called by the engine as the run ends (before its last events are published)."""
        self.status, self.output, self.error = status, output, error
        if isinstance(error, Exception):
            error.run = self  # type: ignore[attr-defined]

    def run_sync(self) -> Run:
        """Run to the end from synchronous code (works inside Jupyter's running loop)."""
        if not in_running_loop():
            loop = thread_loop()
            task = loop.create_task(self._execute())
            try:
                loop.run_until_complete(task)
            except KeyboardInterrupt:
                if not task.done():
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

    def iter_stream(self) -> ChunkStream:
        """Start this run and iterate its text chunks as they arrive (a sync iterator, fine in a
        notebook cell); at the end, the run's error (if any) is raised. Leaving the loop early
        cancels the run."""
        chunks: queue.SimpleQueue[StreamChunk | None] = queue.SimpleQueue()
        self._hooks.append(_ChunkQueue(chunks.put))
        self.start_nowait(stepping=False)
        return ChunkStream(self, self._drain(chunks))

    def _drain(self, chunks: queue.SimpleQueue[StreamChunk | None]) -> Iterator[StreamChunk]:
        finished = False
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=0.25)
                except queue.Empty:
                    continue
                if chunk is None:
                    break
                yield chunk
            finished = True
        finally:
            if not finished:
                self.cancel()
            self._done.wait(30)
        self._result()

    async def aiter_stream(self) -> AsyncIterator[StreamChunk]:
        """``iter_stream`` on the caller's event loop (``async for chunk in ...``)."""
        chunks: asyncio.Queue[StreamChunk | None] = asyncio.Queue()
        self._hooks.append(_ChunkQueue(chunks.put_nowait))
        task = asyncio.ensure_future(self._execute())
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
            await task
        finally:
            if not task.done():
                self.cancel_requested = True
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._result()

    async def arun(self) -> Run:
        """Run to the end on the caller's event loop."""
        await self._execute()
        return self._result()

    def _mark_interrupted(self) -> None:
        if not isinstance(self.error, RunCancelled):
            self.status = "cancelled"
            self.error = RunCancelled(f"run of '{self.pipeline}' interrupted; the partial trace "
                                      f"is in run.trace.df")
            self.error.run = self  # type: ignore[attr-defined]

    def _result(self) -> Run:
        if self.error is not None and self._done.is_set():
            raise self.error
        return self

    # -- stepping ------------------------------------------------------------------------------
    def start(self, *, stepping: bool = True, breakpoints: Sequence[str] = (),
              approve_tools: bool = False) -> Run:
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

    def _paused_or_result(self) -> Run:
        if not self._done.is_set():
            self.status = "paused"
            return self
        return self._result()

    def _control(self, action: Callable[[], None]) -> Run:
        if self._done.is_set() or self._gate is None or self._loop is None:
            return self._result()
        self._wait(self._control_nowait(action))
        return self._paused_or_result()

    def step(self, n: int = 1) -> Run:
        """Let the next ``n`` calls happen, then pause again (returns the run)."""
        for _ in range(n):
            self._control(lambda: self._gate.release())  # type: ignore[union-attr]
        return self

    def resume(self) -> Run:
        """Run on to the end (or the next breakpoint / tool awaiting approval)."""
        return self._control(lambda: self._gate.open())  # type: ignore[union-attr]

    def approve(self, arguments: dict[str, Any] | None = None) -> Run:
        """Let the pending tool call run, optionally with edited arguments."""
        return self._control(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("proceed", arguments)))

    def reject(self, reason: str = "") -> Run:
        """Refuse the pending tool call; the agent sees the rejection as an observation."""
        return self._control(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("reject", reason=reason)))

    # -- non-blocking controls (widgets: their handlers must return at once) -----------------
    def start_nowait(self, *, stepping: bool = True, breakpoints: Sequence[str] = (),
                     approve_tools: bool = False) -> concurrent.futures.Future[Run]:
        """``start`` without waiting: the returned future completes (with the run) once the run
        pauses at a boundary or ends. Its callbacks run on the engine's loop thread."""
        loop = engine_loop()

        async def begin() -> Run:
            self._gate = Gate(loop, stepping=stepping or self._pause_requested,
                              breakpoints=set(breakpoints), approve_tools=approve_tools)
            self._gate.settled.clear()
            self._task = loop.create_task(self._execute())
            await self._gate.settled.wait()
            return self._settled()

        self._loop = loop  # so that pause() and cancel() can reach the run from now on
        return asyncio.run_coroutine_threadsafe(begin(), loop)

    def _settled(self) -> Run:
        if not self._done.is_set():
            self.status = "paused"
        return self

    def _control_nowait(self, action: Callable[[], None]) -> concurrent.futures.Future[Run]:
        if self._done.is_set() or self._gate is None or self._loop is None:
            done: concurrent.futures.Future[Run] = concurrent.futures.Future()
            done.set_result(self)
            return done
        gate = self._gate

        async def go() -> Run:
            if not self._done.is_set():
                self.status = "running"
                action()
                await gate.settled.wait()
            return self._settled()

        return asyncio.run_coroutine_threadsafe(go(), self._loop)

    def step_nowait(self) -> concurrent.futures.Future[Run]:
        """``step()`` without waiting (a future done at the next pause or the end)."""
        return self._control_nowait(lambda: self._gate.release())  # type: ignore[union-attr]

    def resume_nowait(self) -> concurrent.futures.Future[Run]:
        """``resume()`` without waiting."""
        return self._control_nowait(lambda: self._gate.open())  # type: ignore[union-attr]

    def approve_nowait(self, arguments: dict[str, Any] | None = None
                       ) -> concurrent.futures.Future[Run]:
        """``approve()`` without waiting."""
        return self._control_nowait(lambda: self._gate.release(  # type: ignore[union-attr]
            Decision("proceed", arguments)))

    def reject_nowait(self, reason: str = "") -> concurrent.futures.Future[Run]:
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

    async def astep(self, n: int = 1) -> Run:
        """``step`` for async code."""
        return await asyncio.to_thread(self.step, n)

    async def aresume(self) -> Run:
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

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run has finished (for runs started in the background)."""
        self._done.wait(timeout)
        return self

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
        return self._owner("fork")._fork(self, step, edits, item=item, iteration=iteration)

    def replay(self) -> Any:
        """Re-run this run's pipeline on its recorded responses (no provider call) and report
        the first step that no longer does what it did: a regression check after a prompt or
        code change. Returns a ``ReplayReport`` (``.ok``, ``.first``, ``.differences``).

        >>> report = run.replay()       # doctest: +SKIP
        >>> report.ok, report.first     # doctest: +SKIP
        """
        return self._owner("replay")._replay(self)

    def _owner(self, what: str) -> Any:
        if self.owner is None:
            from ..exceptions import ForkError

            raise ForkError(f"run {self.id} of '{self.pipeline}' has no pipeline to {what}: "
                            "load it with orchnb.load_run(run_id, pipeline=PIPELINE)")
        return self.owner

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
                f"{money(self.cost_usd, self.unpriced_calls)}{sim}, output={out!r}>")

    def _repr_html_(self) -> str:
        return run_html(self)
