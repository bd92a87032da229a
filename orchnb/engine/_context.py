"""The run context: every model call, tool call and fan-out of every pattern goes through here.

One guarded path per call (step boundary → budget reservation → span → cache → attempts → price
→ settle), and one event stream that everything following a run subscribes to.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import RunCancelled
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
from ._batch import BATCHING, BatchRounds
from ._budget import Ledger
from ._cache import get_cache
from ._display import stopped_message
from ._events import EventBus
from ._fanout import FanOut
from ._gate import Boundary, Gate
from ._guarded import GuardedPath
from ._levers import _LEVERS
from ._ops import EmbedOp, LocalOp, ModelOp, Op, ToolOp, ToolResult
from ._scope import _SCOPE, SpanHandle, SpanScope, span_of, status_of
from ._text import as_text

if TYPE_CHECKING:
    from ._config import RunOptions
    from ._run import Run

__all__ = ["RunContext", "status_of", "total_cost"]

T = TypeVar("T")
_perf = time.perf_counter
_now = time.time


class RunContext(GuardedPath):
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
        self._clean: str | None = None  # the last span output found free of keys
        # Spans are timed on one clock: perf_counter() at open and close, the wall-clock
        # start derived from it (one time.time() a run, not one a span).
        self._epoch = _now() - _perf()
        self.limiter: Callable[[Op], Awaitable[None]] | None = None
        """Waits for a shared rate limit before each model-call attempt (remote executors)."""
        self.batch_rounds: BatchRounds | None = None
        """Batch mode's rounds, made by the run's first batch fan-out."""

    # -- the run ---------------------------------------------------------------------------
    async def execute(self, body: Callable[[RunContext, Any], Awaitable[Any]]) -> Any:
        """Run ``body`` under the run span; the root span's whole life is here.

        Returns the output; an exception is recorded on the run (``run.error``), not raised.
        """
        run = self.run
        root = self._new_span("run", run.pipeline, run.pattern)
        root.input = as_text(run.input)
        for f in self.bus.run_start:
            f(run=run)
        t0 = _perf()
        root.start = self._epoch + t0
        self._start(root)
        token = _SCOPE.set(root)  # a span is its own scope
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
                e = RunCancelled(stopped_message(run, "cancelled"))
            scrub_exception(e)  # run.error, its str and repr never carry a key
            root.status = status  # type: ignore[assignment]
            root.error = f"{type(e).__name__}: {e}"
            run.finish(status, None, e)
        finally:
            _SCOPE.reset(token)
            if self.batch_rounds is not None:  # an interrupted run cancels its provider batches
                await self.batch_rounds.close()
            root.latency_ms = (_perf() - t0) * 1000.0
            root.end = root.start + root.latency_ms / 1000.0
            self._end(root)
            for f in self.bus.run_end:
                f(run=run)
        return run.output

    # -- spans ---------------------------------------------------------------------------
    def new_span(self, kind: str, step: str, pattern: str | None = None, **fields: Any) -> Span:
        span = self._new_span(kind, step, pattern)
        span.start = self._epoch + _perf()
        for name, value in fields.items():  # the few columns known as it opens
            setattr(span, name, value)
        return span

    def _new_span(self, kind: str, step: str, pattern: str | None) -> Span:
        run = self.run
        if pattern is None:
            scope = _SCOPE.get(None)
            pattern = scope.pattern if scope is not None else run.pattern
        # Positional: the class's keyword binding searches 45 parameter names per keyword.
        # (``start`` is set as the span opens.)
        return Span(run.id, f"{run.id}.{next(self._seq)}", None, run.pipeline, pattern, step,
                    kind)  # type: ignore[arg-type]

    def span(self, kind: str, step: str, *, pattern: str | None = None, input: Any = None,
             model: str | None = None, provider: str | None = None,
             **fields: Any) -> SpanScope:
        """Open a child span of the current one. ``input`` is recorded as it opens (as text);
        the block says the rest through the scope's setters (``set_output``, ``set_route``,
        ``set_iteration``, ``note``, ``fail``); the engine times it, ends it and sets its status.

        >>> with ctx.span("step", "summarize", input=x) as scope:   # doctest: +SKIP
        ...     scope.set_output(await summarize(x))
        """
        span = self._new_span(kind, step, pattern)
        if input is not None:
            span.input = input if input.__class__ is str else as_text(input)
        if model is not None:
            span.model = model
        if provider is not None:
            span.provider = provider
        for name, value in fields.items():
            setattr(span, name, value)
        return SpanScope(self, span)

    def enter_span(self, kind: str, step: str, input: Any = None, model: str | None = None,
                   provider: str | None = None, fill: Callable[[Span], None] | None = None
                   ) -> tuple[Span, Any, float]:
        """``span()`` without its scope object, for the hottest leaves (a ``Step``, every
        call): opens a child span of the current scope and returns ``(span, token, t0)``, which
        the caller hands to :meth:`exit_span` (or ``_end``) once, on every way out. ``fill``
        writes the columns known before the span opens (a call's op); if it raises, nothing
        was opened.

        >>> span, token, t0 = ctx.enter_span("step", "s", input=x)   # doctest: +SKIP
        >>> ctx.exit_span(span, token, t0, output)                    # doctest: +SKIP
        """
        scope = _SCOPE.get()
        run = self.run
        span = Span(run.id, f"{run.id}.{next(self._seq)}", scope.span_id, run.pipeline,
                    scope.pattern, step, kind)  # type: ignore[arg-type]
        span.iteration, span.item = scope.iteration, scope.item
        if input is not None:
            span.input = input if input.__class__ is str else as_text(input)
        span.model, span.provider = model, provider
        if fill is not None:
            fill(span)
        token = _SCOPE.set(span)
        t0 = _perf()
        span.start = self._epoch + t0
        for f in self.bus.span_start:
            f(span=span, run=run)
        return span, token, t0

    def exit_span(self, span: Span, token: Any, t0: float, output: Any = None,
                  exc: BaseException | None = None) -> None:
        """Close a span opened with :meth:`enter_span`: with ``output`` (shown as text) when
        it answered, with ``exc`` when it failed."""
        if exc is None:
            span.output = output if output.__class__ is str else as_text(output)
        self._end(span, token, t0, exc)

    def current_span(self) -> Span:
        """The span of the code now running (to read): inside a pattern's ``_run``, the
        pattern's own span (the run span at top level)."""
        return span_of(_SCOPE.get())

    def current_scope(self) -> SpanHandle:
        """The setters of the span of the code now running, so a pattern can say what its own
        span holds (``ctx.current_scope().set_route(...)``, ``.note(...)``)."""
        return SpanHandle(span_of(_SCOPE.get()))

    def _start(self, span: Span) -> None:
        run = self.run
        for f in self.bus.span_start:
            f(span=span, run=run)

    def _end(self, span: Span, token: Any = None, t0: float | None = None,
             exc: BaseException | None = None) -> None:
        """End ``span``: with ``t0`` (a span opened with ``SpanScope`` or on the guarded path,
        its scope ``token``), time it, leave its scope and set its status from ``exc``; then
        bound and scrub its text and publish its end. One call a span, on the hot path."""
        if t0 is not None:
            latency = (_perf() - t0) * 1000.0
            _SCOPE.reset(token)
            span.latency_ms = latency
            span.end = span.start + latency / 1000.0
            if exc is not None:
                span.status = status_of(exc)  # type: ignore[assignment]
                span.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            elif span.status == "running":
                span.status = "ok"
        # The one place span text is bounded and scrubbed of keys (a model or a tool may echo
        # one): what listeners get is what the store keeps.
        # (length tests inline: clip() is a call per span for the rare long text)
        inp = span.input
        if inp is not None and len(inp) > MAX_TEXT:
            span.input = clip(inp)
        out = span.output
        if out is not None:
            # A step's output is most often its call's, and the run's its last step's: the
            # very text found clean a moment ago (a str is immutable) is not searched again.
            if out is not self._clean:
                if needs_scrub(out):
                    out = span.output = scrub_secrets(out)
                else:
                    self._clean = out
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

    def progress(self, label: str, done: int, total: int, *, failed: int = 0) -> None:
        """Publish how far a long piece of work is (progress bars listen); ``failed`` of the
        ``done`` items failed (a provider batch's own count)."""
        run = self.run
        for f in self.bus.progress:
            f(run=run, label=label, done=done, total=total, failed=failed)

    # -- what patterns call ------------------------------------------------------------------
    def _boundary(self, kind: str, step: str, name: str, detail: Any) -> Boundary | None:
        if self.gate is None:
            return None
        scope = _SCOPE.get()
        return Boundary(kind, step, name, detail, scope.span_id,  # type: ignore[arg-type]
                        scope.iteration, scope.item)

    def call(
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
    ) -> Awaitable[ModelResponse]:
        """One model call (``await ctx.call(...)``): a step boundary, budgeted, cached, retried,
        timed out, priced and traced. With ``stream`` (or when the run streams) its text is
        published as it arrives. ``output_schema`` asks a provider with structured output for
        JSON of that schema. ``fallback`` models are tried in order once the retries of the one
        before are spent (the span's ``provider``/``model`` say which answered; ``meta`` keeps
        every attempt). It builds the call and returns the guarded path's coroutine (a frame
        fewer on every call)."""
        if model.__class__ is not Model:
            model = _resolve(model)
        options = self.options
        cache_prompt, tier = _LEVERS.get()
        if cache_prompt is not None and not model.traits.caps.prompt_cache:
            cache_prompt = None  # e.g. an OpenAI-compatible local server
        if tier is None and options.service_tier is not None and model.traits.caps.service_tiers:
            # The run's tier: only providers that have tiers get it (a run-wide tier does not
            # refuse the sim or Anthropic steps of a pipeline).
            tier = options.service_tier
        request = ModelRequest(list(messages), list(tools) if tools else [], temperature,
                               max_tokens, options.timeout, None, output_schema, output_name,
                               cache_prompt, tier)
        backups = tuple(_resolve(m) if isinstance(m, str) else m for m in fallback
                        ) if fallback else ()
        boundary = (self._boundary("model", step, model.id, request) if self.gate is not None
                    else None)
        op = ModelOp(model, request, step, stream or options.stream, boundary, backups)
        return self._guarded(op)

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
        batch: bool = False,
    ) -> list[T | BaseException]:
        """Run ``thunks`` concurrently (at most ``concurrency`` at once), each tagged with its
        ``item`` index in the trace. Cancelling the run cancels them all. With ``progress`` (a
        label), progress events follow the items as they finish (progress bars listen).

        ``batch=True`` (and any fan-out inside one) is batch mode: every item starts at once
        and their model calls go through the providers' batch APIs in rounds (see
        ``orchnb.engine._batch``); ``concurrency`` no longer applies."""
        report = None
        if progress is not None and self.bus.progress:
            self.progress(progress, 0, len(thunks))

            def report(done: int, total: int) -> None:
                self.progress(progress, done, total)  # type: ignore[arg-type]

        rounds = BATCHING.get()
        if rounds is None and batch:
            rounds = self.batch_rounds = self.batch_rounds or BatchRounds(self)
        if rounds is not None:
            return await rounds.fan_out(thunks, return_exceptions, report)
        return await FanOut(thunks, concurrency, return_exceptions, report).run()


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
