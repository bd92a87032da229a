"""The run context: every model call, tool call and fan-out of every pattern goes through here.

One guarded path per call (step boundary → budget reservation → span → cache → attempts → price
→ settle), and one event stream that everything following a run subscribes to.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from itertools import count
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import (
    BudgetExceeded,
    CallTimeoutError,
    MaxIterationsExceeded,
    ProviderError,
    RunCancelled,
)
from ..models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    StreamDelta,
    ToolSpec,
    needs_scrub,
    scrub_exception,
    scrub_secrets,
)
from ..models import resolve_model as _resolve
from ..tools import Tool
from ..trace import MAX_TEXT, Span, clip
from ._budget import Charge, Ledger
from ._cache import get_cache
from ._events import EventBus
from ._gate import Boundary, Gate
from ._limiter import LEASE, OVERLOAD, Lease, Slots, park
from ._ops import EmbedOp, LocalOp, ModelOp, Op, ToolOp, ToolResult, as_text

if TYPE_CHECKING:
    from ._config import RunOptions
    from ._run import Run

T = TypeVar("T")
_perf = time.perf_counter
_now = time.time
_NAN = math.nan
_FAILED = Charge(calls=1)
"""What a failed request books: a call sent (its tokens, if any were billed, are unknown)."""


class _Scope:
    """Where the code now running sits: its span, pattern, and loop/item position."""

    __slots__ = ("item", "iteration", "pattern", "span")

    def __init__(self, span: Span, pattern: str, item: int | None, iteration: int | None):
        self.span = span
        self.pattern = pattern
        self.item = item
        self.iteration = iteration


_SCOPE: ContextVar[_Scope] = ContextVar("orchnb_scope")


def status_of(exc: BaseException) -> str:
    """The span/run status an exception ends it with."""
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, MaxIterationsExceeded):
        return "max_iterations"
    if isinstance(exc, (asyncio.CancelledError, RunCancelled, KeyboardInterrupt)):
        return "cancelled"
    return "error"


class _SpanScope:
    """Context manager opening a child span of the current scope (class-based: it is hot)."""

    __slots__ = ("_ctx", "_t0", "_token", "span")

    def __init__(self, ctx: RunContext, span: Span):
        self._ctx = ctx
        self.span = span

    def __enter__(self) -> Span:
        scope = _SCOPE.get()
        span = self.span
        span.parent_id = scope.span.span_id
        if span.iteration is None:
            span.iteration = scope.iteration
        if span.item is None:
            span.item = scope.item
        self._token = _SCOPE.set(_Scope(span, span.pattern, span.item, span.iteration))
        self._ctx._start(span)
        self._t0 = _perf()
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        span = self.span
        _SCOPE.reset(self._token)
        span.latency_ms = (_perf() - self._t0) * 1000.0
        span.end = span.start + span.latency_ms / 1000.0
        if exc is not None:
            span.status = status_of(exc)  # type: ignore[assignment]
            span.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        elif span.status == "running":
            span.status = "ok"
        self._ctx._end(span)


class RunContext:
    """The engine's face to patterns: ``call``, ``embed``, ``tool``, ``gather`` and ``span``.

    Patterns describe control flow only; everything else (spans, retries, timeouts, caching,
    budgets, stepping, cancellation, events) happens here.
    """

    def __init__(self, run: Run, options: RunOptions, gate: Gate | None, bus: EventBus):
        self.run = run
        self.options = options
        self.gate = gate
        self.bus = bus
        self.ledger = Ledger(options.budget)
        self.largest_output = 0
        """The most output tokens one call of this run gave (sizes budget reservations)."""
        self._seq = count(1)
        self._cache = get_cache() if options.cache else None
        self.limiter: Callable[[Op], Awaitable[None]] | None = None
        """Waits for a shared rate limit before each model-call attempt (remote executors)."""

    # -- the run ---------------------------------------------------------------------------
    async def execute(self, body: Callable[[RunContext, Any], Awaitable[Any]]) -> Any:
        """Run ``body`` under the run span; the root span's whole life is here.

        Returns the output; an exception is recorded on the run (``run.error``), not raised.
        """
        run = self.run
        root = self.new_span("run", run.pipeline, pattern=run.pattern, input=as_text(run.input))
        for f in self.bus.run_start:
            f(run=run)
        self._start(root)
        token = _SCOPE.set(_Scope(root, root.pattern, None, None))
        t0 = _perf()
        try:
            if run.cancel_requested:  # cancelled before it began: end at once, traced
                raise asyncio.CancelledError
            output = await body(self, run.input)
            root.output = as_text(output)
            root.status = "ok"
            run.finish("ok", output, None)
        except (Exception, asyncio.CancelledError, KeyboardInterrupt) as e:
            status = status_of(e)
            if status == "cancelled" and not isinstance(e, RunCancelled):
                done = sum(1 for s in run.trace.spans
                           if s.kind in ("model", "tool") and s.status == "ok")
                e = RunCancelled(f"run of '{run.pipeline}' cancelled after {done} completed "
                                 f"calls; the partial trace is in run.trace.df")
            scrub_exception(e)  # run.error, its str and repr never carry a key
            root.status = status  # type: ignore[assignment]
            root.error = f"{type(e).__name__}: {e}"
            run.finish(status, None, e)
        finally:
            _SCOPE.reset(token)
            root.latency_ms = (_perf() - t0) * 1000.0
            root.end = root.start + root.latency_ms / 1000.0
            self._end(root)
            for f in self.bus.run_end:
                f(run=run)
        return run.output

    # -- spans ---------------------------------------------------------------------------
    def new_span(self, kind: str, step: str, pattern: str | None = None, **fields: Any) -> Span:
        scope = _SCOPE.get(None)
        run = self.run
        return Span(
            run.id, f"{run.id}.{next(self._seq)}", None, run.pipeline,
            pattern or (scope.pattern if scope else run.pattern), step, kind,  # type: ignore[arg-type]
            start=_now(), **fields,
        )

    def span(self, kind: str, step: str, *, pattern: str | None = None,
             **fields: Any) -> _SpanScope:
        """Open a child span of the current one: ``with ctx.span("step", "summarize") as s:``."""
        return _SpanScope(self, self.new_span(kind, step, pattern, **fields))

    def current_span(self) -> Span:
        """The span of the code now running: inside a pattern's ``_run``, the pattern's own span
        (the run span at top level), so a pattern can set its columns (``route``, ``meta``)."""
        return _SCOPE.get().span

    def _start(self, span: Span) -> None:
        run = self.run
        for f in self.bus.span_start:
            f(span=span, run=run)

    def _end(self, span: Span) -> None:
        # The one place span text is bounded and scrubbed of keys (a model or a tool may echo
        # one): what listeners get is what the store keeps.
        # (length tests inline: clip() is a call per span for the rare long text)
        inp = span.input
        if inp is not None and len(inp) > MAX_TEXT:
            span.input = clip(inp)
        out = span.output
        if out is not None:
            if needs_scrub(out):
                out = span.output = scrub_secrets(out)
            if len(out) > MAX_TEXT:
                span.output = clip(out)
        if span.error is not None and needs_scrub(span.error):
            span.error = scrub_secrets(span.error)
        run = self.run
        for f in self.bus.span_end:
            f(span=span, run=run)

    def delta_sink(self, span: Span) -> Callable[[StreamDelta], None]:
        """The ``on_delta`` a streaming call hands its provider: publishes each chunk."""
        run, listeners, t0 = self.run, self.bus.stream_delta, _perf()
        attempt = span.attempt

        def sink(delta: StreamDelta) -> None:
            if delta.kind != "text":  # tool-call argument fragments: the response has them whole
                return
            if span.ttft_ms is None and delta.text:
                span.ttft_ms = (_perf() - t0) * 1000.0
            for f in listeners:
                f(span=span, text=delta.text, run=run, attempt=attempt)

        return sink

    def _publish_whole(self, span: Span, text: str) -> None:
        """A call that should stream but could not (cache hit, provider without streaming):
        its text as one chunk, so stream consumers see every step."""
        if text:
            for f in self.bus.stream_delta:
                f(span=span, text=text, run=self.run, attempt=span.attempt)

    def progress(self, label: str, done: int, total: int) -> None:
        """Publish how far a long piece of work is (progress bars listen)."""
        run = self.run
        for f in self.bus.progress:
            f(run=run, label=label, done=done, total=total)

    # -- the guarded path ---------------------------------------------------------------------
    async def _guarded(self, op: Op) -> Any:
        gate = self.gate if op.boundary is not None else None
        if gate is not None:
            op.decision = await gate.wait(op.boundary)  # type: ignore[arg-type, attr-defined]
        try:
            ledger = self.ledger
            # The first reservation comes before the span: a call the budget refuses outright
            # was never made and leaves no call span (its step's span says why it stopped).
            held = await ledger.reserve(op.step, op.need(self)) if ledger.capped else None
            try:
                with self.span(op.kind, op.step, **op.fields()) as span:
                    result = await self._cached_or_called(op, span, held)
            except BaseException:
                if held is not None:  # no-op when already settled
                    ledger.settle(held, None)
                raise
            if ledger.capped:
                ledger.check_after(op.step)
            return result
        finally:
            if gate is not None:
                gate.call_done()

    async def _cached_or_called(self, op: Op, span: Span, held: Charge | None) -> Any:
        replay = self.options.replay  # a fork or replay: the recorded run answers first
        if replay is not None and (hit := replay.answer(self, op, span)) is not None:
            self._release(held)
            return hit[0]
        cache = self._cache
        key = op.cache_key() if cache is not None else None
        if key is not None:
            hit = cache.get_json(key)  # type: ignore[union-attr]
            if hit is not None:
                self._release(held)
                result, usd = op.load(hit)
                # A cached answer costs nothing now and keeps the original's priced state:
                # an unknown price stays unknown (NaN, flagged), never $0.
                priced = usd is not None
                span.cached, span.attempt, span.priced = True, 0, priced
                span.cost_usd = 0.0 if priced else _NAN
                span.saved_usd = usd if priced else _NAN
                op.fill(span, result)
                if op.streams:
                    self._publish_whole(span, span.output or "")
                return result
        result, held = await self._attempts(op, span, held)
        try:
            charge, priced = op.charge(result, False)
        finally:
            self._release(held)  # the answering attempt's reservation, settled to the actual
        if not priced:
            charge.usd = _NAN
        if held is not None:
            self.ledger.book(charge)
        span.cost_usd, span.priced, span.cached = (charge.usd if priced else _NAN), priced, False
        op.fill(span, result)
        if op.kind == "model" and span.output_tokens is not None:
            self.largest_output = max(self.largest_output, span.output_tokens)
        if op.streams and span.ttft_ms is None:
            self._publish_whole(span, span.output or "")
        if key is not None and not op.fell_back:  # a fallback's answer is not the model's
            cache.put_json(key, op.dump(result, charge.usd if priced else None))  # type: ignore[union-attr]
        return result

    def _release(self, held: Charge | None) -> None:
        if held is not None:
            self.ledger.settle(held, None)

    async def _attempts(self, op: Op, span: Span,
                        held: Charge | None) -> tuple[Any, Charge | None]:
        """Call until an attempt answers; returns the answer and the budget it still holds.

        Each attempt is a request, so each reserves its own budget, and everything an attempt
        holds is taken in one order (fan-out slot → budget → provider slot) and given back
        before its wait to retry: a waiting call never holds what another waiter needs.
        """
        policy = self.options.retry
        max_attempts = op.max_attempts or policy.max_attempts
        timeout = op.timeout
        ledger = self.ledger
        capped = ledger.capped
        failures: list[dict[str, Any]] | None = None
        attempt = tries = 0  # attempts of the current model; of the call, fallbacks included
        while True:
            if capped and held is None:  # the first attempt's was taken before the span
                held = await ledger.reserve(op.step, op.need(self))
            attempt += 1
            tries += 1
            span.attempt = tries
            t0 = _perf()
            try:
                result = await self._attempt(op, span, timeout)
            except TimeoutError:
                error: ProviderError | CallTimeoutError = CallTimeoutError(
                    f"did not answer within {timeout:g}s")
                retry_after, retryable, status = None, True, None
            except CallTimeoutError as e:
                error, retry_after, retryable, status = e, None, True, None
            except ProviderError as e:
                error, retry_after, retryable, status = e, e.retry_after, e.retryable, e.status
            except BaseException:
                if held is not None:
                    ledger.settle(held, None)
                raise
            else:
                if failures is not None:
                    _note_attempts(span, failures, op)
                return result, held
            if held is not None:  # a failed request still counts as a call sent
                ledger.settle(held, _FAILED)
                held = None
            give_up = (not retryable or attempt >= max_attempts
                       or policy.gives_up(retry_after))
            wait = None if give_up else policy.delay(attempt, retry_after)
            if failures is None:
                failures = []
            # Every failed attempt is kept (status, error, the wait that followed), so the trace
            # shows what a call went through, not only how many tries it took.
            failures.append({
                "attempt": tries, "model": op.model_id, "status": status,
                "error": f"{type(error).__name__}: {error}"[:300],
                "latency_ms": round((_perf() - t0) * 1000.0, 3),
                "retry_after": retry_after,
                "wait_s": None if wait is None else round(wait, 4),
            })
            span.ttft_ms = None  # a retried stream starts over
            if give_up:
                if op.next_fallback():  # the step's fallback models, in order
                    attempt = 0
                    span.provider, span.model = op.provider_name, op.model_name
                    continue
                _note_attempts(span, failures, op)
                raise _located(error, span, tries, op.tried) from None
            # The wait holds nothing: no fan-out slot, no budget, no provider slot.
            lease = park()
            await asyncio.sleep(wait)  # type: ignore[arg-type]
            if lease is not None:
                await lease.take(first=True)

    async def _attempt(self, op: Op, span: Span, timeout: float | None) -> Any:
        """One request, inside the run's rate limit and the provider's concurrency limit."""
        if self.limiter is not None and op.kind == "model":
            await self.limiter(op)  # the run's own limit, if one is set
        limiter = op.limiter
        epoch = await limiter.acquire() if limiter is not None else 0
        try:
            # Providers that enforce the timeout at their I/O (the SDKs, sim) spare the hot
            # path a timer; for any other provider the engine enforces it.
            if timeout is None or op.enforces_timeout:
                result = await op.attempt(self, span)
            else:
                async with asyncio.timeout(timeout):
                    result = await op.attempt(self, span)
        except ProviderError as e:
            if limiter is not None:
                limiter.release()
                if e.status in OVERLOAD:
                    limiter.overloaded(epoch)
            raise
        except BaseException:
            if limiter is not None:
                limiter.release()
            raise
        if limiter is not None:
            limiter.release()
            limiter.succeeded()
        return result

    # -- what patterns call ------------------------------------------------------------------
    def _boundary(self, kind: str, step: str, name: str, detail: Any) -> Boundary | None:
        if self.gate is None:
            return None
        scope = _SCOPE.get()
        return Boundary(kind, step, name, detail, scope.span.span_id,  # type: ignore[arg-type]
                        scope.iteration, scope.item)

    async def call(
        self,
        model: Model | str,
        messages: Sequence[Message],
        *,
        step: str,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        stream: bool = False,
        fallback: Sequence[Model | str] = (),
        output_schema: dict[str, Any] | None = None,
        output_name: str = "output",
    ) -> ModelResponse:
        """One model call: a step boundary, budgeted, cached, retried, timed out, priced and
        traced. With ``stream`` (or when the run streams) its text is published as it arrives.
        ``output_schema`` asks a provider with structured output for JSON of that schema.
        ``fallback`` models are tried in order once the retries of the one before are spent
        (the span's ``provider``/``model`` say which answered; ``meta`` keeps every attempt).
        """
        if isinstance(model, str):
            model = _resolve(model)
        request = ModelRequest(list(messages), list(tools), temperature, max_tokens,
                               self.options.timeout, output_schema=output_schema,
                               output_name=output_name)
        backups = tuple(_resolve(m) if isinstance(m, str) else m for m in fallback)
        op = ModelOp(model, request, step, stream or self.options.stream,
                     self._boundary("model", step, model.id, request), backups)
        return await self._guarded(op)

    async def embed(self, embedder: Any, texts: list[str], *, step: str) -> list[list[float]]:
        """One embedding call: a "model" span, budgeted, cached and priced like a chat call,
        and a step boundary when the embedder is remote. ``embedder`` has ``provider``,
        ``model``, ``remote``, ``simulated`` and ``async embed(texts) -> (vectors, Usage)``."""
        boundary = None
        if embedder.remote and self.gate is not None:
            request = ModelRequest([Message("user", "\n".join(texts)[-4000:])])
            boundary = self._boundary("model", step, f"{embedder.provider}:{embedder.model}",
                                      request)
        vectors, _ = await self._guarded(EmbedOp(embedder, texts, step, boundary))
        return vectors

    async def tool(self, tool: Tool, arguments: dict[str, Any], *, step: str,
                   call_id: str | None = None) -> ToolResult:
        """Run a tool as a step boundary. Bad arguments, a raising tool or a rejection by the
        user become an observation for the model (``is_error``), never a crash."""
        op = ToolOp(tool, arguments, step, call_id,
                    self._boundary("tool", step, tool.name, dict(arguments)),
                    self.options.tool_timeout)
        return await self._guarded(op)

    async def memory(self, action: str, fn: Callable[[], Awaitable[T]], *, step: str,
                     input: str | None = None, **fields: Any) -> T:
        """A memory read or write (``action`` names it, e.g. ``"search"``), traced as a span of
        kind ``memory`` on the guarded path (a step boundary when stepping). ``fn`` does the
        work; its result is the span's output unless ``fn`` sets one.

        >>> await ctx.memory("search", lambda: mem.asearch(q), step="recall")  # doctest: +SKIP
        """
        op = LocalOp("memory", step, fn, {"tool": action, "input": input, **fields},
                     self._boundary("memory", step, f"memory.{action}", {"input": input}))
        return await self._guarded(op)

    # -- fan-out ---------------------------------------------------------------------------------
    async def gather(
        self,
        thunks: Sequence[Callable[[], Awaitable[T]]],
        *,
        concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: str | None = None,
    ) -> list[T | BaseException]:
        """Run ``thunks`` concurrently (at most ``concurrency`` at once), each tagged with its
        ``item`` index in the trace. Cancelling the run cancels them all. With ``progress`` (a
        label), progress events follow the items as they finish (progress bars listen)."""
        scope = _SCOPE.get()
        n = len(thunks)
        report = progress is not None and bool(self.bus.progress)
        if report:
            self.progress(progress, 0, n)  # type: ignore[arg-type]
        # With a bound, `concurrency` workers pull the next item: no task (and no waiter on a
        # semaphore) per item, which keeps large fan-outs at the floor's speed and memory. An
        # item waiting to retry gives its slot back and a new worker takes the next item.
        workers = min(concurrency or n, n)
        results: list[Any] = [None] * n
        nxt = [0]
        finished = [0]
        failed: list[BaseException] = []
        tasks: list[asyncio.Future[None]] = []
        slots = Slots(workers, lambda: tasks.append(asyncio.ensure_future(work()))
                      if nxt[0] < n else None) if workers < n else None

        async def work() -> None:
            lease = None
            if slots is not None:
                lease = Lease(slots)
                LEASE.set(lease)
            while nxt[0] < n and not failed:  # one shared position: the workers take turns
                i = nxt[0]
                nxt[0] = i + 1
                _SCOPE.set(_Scope(scope.span, scope.pattern, i, scope.iteration))
                try:
                    if lease is not None:
                        await lease.take()
                    results[i] = await thunks[i]()
                except Exception as e:
                    if not return_exceptions:
                        failed.append(e)
                        raise
                    results[i] = e
                finally:
                    if lease is not None:
                        lease.give_back()
                    if report:
                        finished[0] += 1
                        self.progress(progress, finished[0], n)  # type: ignore[arg-type]

        tasks.extend(asyncio.ensure_future(work()) for _ in range(workers))
        try:
            while not failed:  # workers spawned meanwhile are awaited too
                pending = [t for t in tasks if not t.done()]
                if not pending:
                    break
                await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            if failed:
                raise failed[0]
            return results
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


def _note_attempts(span: Span, failures: list[dict[str, Any]], op: Op) -> None:
    meta = dict(span.meta or {})
    meta["attempts"] = failures
    if op.tried and op.tried[0] != op.model_id:
        meta["fallback_from"] = op.tried[0]
    span.meta = meta


def _located(error: Exception, span: Span, attempts: int,
             tried: Sequence[str] = ()) -> Exception:
    tries = f"; gave up after {attempts} attempts" if attempts > 1 else ""
    if len(tried) > 1:
        tries += f" (models tried in order: {', '.join(tried)})"
    error.args = (f"step '{span.step}' ({span.provider}:{span.model}): {error}{tries}",)
    error.step = span.step  # type: ignore[attr-defined]
    return error


def total_cost(spans: Sequence[Span]) -> tuple[float, int]:
    """Sum of priced model-call costs, and how many model calls had no known price."""
    total, unpriced = 0.0, 0
    for s in spans:
        if s.kind == "model":
            if s.cost_usd is None or (isinstance(s.cost_usd, float) and math.isnan(s.cost_usd)):
                unpriced += 1
            else:
                total += s.cost_usd
    return total, unpriced
