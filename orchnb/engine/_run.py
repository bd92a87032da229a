"""A run of a pipeline: its status, output and trace, and the controls to step through it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..exceptions import RunCancelled
from ..trace import Trace
from ._config import RunOptions
from ._context import _SCOPE, RunContext, _clip, _status_of, as_text, total_cost
from ._gate import Boundary, Decision, Gate
from ._loop import engine_loop, in_running_loop, thread_loop, wait_future

Body = Callable[[RunContext, Any], Awaitable[Any]]
_HOOKS: list[Any] = []
# Run ids from a private generator (seeded from the OS once): os.urandom costs ~6 µs a run, and
# the shared `random` module would repeat ids after a user's random.seed(0).
_IDS = random.Random()


class RunTrace(Trace):
    """A run's trace, with ``trace.plot.timeline()``, ``.cost()``, ``.latency()``... charts."""

    __slots__ = ()

    @property
    def plot(self) -> Any:
        """The common charts over this trace (Plotly figures you can restyle)."""
        from ..viz import TracePlots

        return TracePlots(self.df)


def add_hook(hook: Any) -> None:
    """Subscribe to every run's events. A hook has keyword-only methods ``on_span_start(*, span)``,
    ``on_span_end(*, span)`` and ``on_run_end(*, run)`` (any may be missing)."""
    _HOOKS.append(_Hook(hook))


def remove_hook(hook: Any) -> None:
    """Unsubscribe a hook added with :func:`add_hook`."""
    _HOOKS[:] = [h for h in _HOOKS if h.inner is not hook]


class _Hook:
    __slots__ = ("inner", "on_run_end", "on_span_end", "on_span_start")

    def __init__(self, inner: Any):
        self.inner = inner
        noop = _noop
        self.on_span_start = getattr(inner, "on_span_start", noop)
        self.on_span_end = getattr(inner, "on_span_end", noop)
        self.on_run_end = getattr(inner, "on_run_end", noop)


def _noop(**_: Any) -> None:
    return None


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
        self._hooks = [*_HOOKS, *(_Hook(h) for h in hooks)]
        self._gate: Gate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = threading.Event()
        self._cancel_requested = False
        self._pause_requested = False

    # -- the run itself --------------------------------------------------------------------
    async def _execute(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        ctx = RunContext(self, self.options, self._gate, self._hooks)
        root = ctx.new_span("run", self.pipeline, pattern=self.pattern,
                            input=_clip(as_text(self.input)))
        token = ctx.enter_root(root)
        self.status = "running"
        try:
            if self._cancel_requested:  # cancelled before it began: end at once, traced
                raise asyncio.CancelledError
            self.output = await self._body(ctx, self.input)
            root.output = _clip(as_text(self.output))
            root.status = self.status = "ok"
        except (Exception, asyncio.CancelledError, KeyboardInterrupt) as e:
            self.status = root.status = _status_of(e)  # type: ignore[assignment]
            if self.status == "cancelled" and not isinstance(e, RunCancelled):
                done = sum(1 for s in self.trace.spans if s.kind in ("model", "tool"))
                e = RunCancelled(f"run of '{self.pipeline}' cancelled after {done} calls; the "
                                 f"partial trace is in run.trace.df")
            root.error = f"{type(e).__name__}: {e}"
            self.error = e
            if isinstance(e, Exception):
                e.run = self  # type: ignore[attr-defined]
        finally:
            _SCOPE.reset(token)
            root.end = time.time()
            root.latency_ms = (root.end - root.start) * 1000.0
            ctx._end(root)
            if self._gate is not None:
                self._gate.finish()
            for hook in self._hooks:
                hook.on_run_end(run=self)
            self._done.set()

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
            fut = asyncio.run_coroutine_threadsafe(self._execute(), engine_loop())
            try:
                wait_future(fut, self.cancel)
            except KeyboardInterrupt:
                self._done.wait(30)
                self._mark_interrupted()
        return self._result()

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
        self._cancel_requested = True

        def stop() -> None:
            if self._task is not None and self.status != "pending" and not self._task.done():
                self._task.cancel()

        loop.call_soon_threadsafe(stop)

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run has finished (for runs started in the background)."""
        self._done.wait(timeout)
        return self

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
        return (f"<Run {self.pipeline!r} {self.status}{nxt}: {self.calls} calls, "
                f"{_money(self.cost_usd, self.unpriced_calls)}{sim}, output={out!r}>")

    def _repr_html_(self) -> str:
        return _run_html(self)


def _money(usd: float, unpriced: int) -> str:
    text = f"${usd:.6f}" if usd < 0.01 else f"${usd:.4f}"
    return text + (f" (+{unpriced} unpriced)" if unpriced else "")


def _run_html(run: Run) -> str:
    e = html.escape
    colour = {"ok": "#2e7d32", "paused": "#1565c0", "running": "#1565c0"}.get(run.status, "#c62828")
    rows = []
    for s in sorted(run.trace.spans, key=lambda s: s.start):
        if s.kind not in ("model", "tool", "step"):
            continue
        cost = "" if s.kind != "model" else (
            "unpriced" if s.cost_usd is None or math.isnan(s.cost_usd) else f"${s.cost_usd:.6f}")
        tokens = "" if s.input_tokens is None else f"{s.input_tokens} → {s.output_tokens}"
        what = s.tool if s.kind == "tool" else (f"{s.provider}:{s.model}" if s.model else "")
        flags = " ".join(f for f, on in (("sim", s.simulated), ("cached", s.cached)) if on)
        out = as_text(s.output or s.error or "")
        rows.append(
            f"<tr><td>{e(s.step)}</td><td>{e(s.kind)}</td><td>{e(what)} <i>{flags}</i></td>"
            f"<td>{e(s.status)}</td><td style='text-align:right'>{tokens}</td>"
            f"<td style='text-align:right'>{cost}</td>"
            f"<td style='text-align:right'>{(s.latency_ms or 0):.1f}</td>"
            f"<td style='max-width:40em'>{e(out[:300])}</td></tr>")
    sim = (" <span style='background:#fff3cd;padding:0 4px'>simulated models</span>"
           if run.simulated else "")
    err = f"<div style='color:#c62828'>{e(str(run.error))}</div>" if run.error else ""
    pending = run.pending
    if pending:
        b = pending[0]
        err += (f"<div>next: <b>{e(b.kind)} call</b> of step <b>{e(b.step)}</b> ({e(b.name)})"
                f"{f' and {len(pending) - 1} more waiting' if len(pending) > 1 else ''} · "
                f"<code>run.step()</code> / <code>run.resume()</code></div>")
    return (
        f"<div><b>{e(run.pipeline)}</b> <span style='color:{colour}'>{e(run.status)}</span>"
        f" · {run.calls} calls · {run.tokens} tokens · {_money(run.cost_usd, run.unpriced_calls)}"
        f"{sim}{err}<div style='margin:4px 0;padding:6px;background:#f6f8fa;white-space:pre-wrap'>"
        f"{e(as_text(run.output) if run.output is not None else '')}</div>"
        "<table><thead><tr><th>step</th><th>kind</th><th>model / tool</th><th>status</th>"
        "<th>tokens in → out</th><th>cost</th><th>ms</th><th>output</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></div>")
