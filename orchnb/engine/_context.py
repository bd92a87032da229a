"""The run context: every model call, tool call and fan-out of every pattern goes through here.

One place for spans, retries, timeouts, caching, budgets, cancellation and step boundaries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any, TypeVar

from ..exceptions import (
    BudgetExceeded,
    CallTimeoutError,
    MaxIterationsExceeded,
    ProviderError,
    RunCancelled,
    ToolError,
)
from ..models import Message, Model, ModelRequest, ModelResponse, ToolSpec, cost_usd, resolve_model
from ..tools import Tool
from ..trace import Span, get_store
from ._cache import cache_key, get_cache
from ._gate import Boundary, Gate

if TYPE_CHECKING:
    from ._config import RunOptions
    from ._run import Run

T = TypeVar("T")
_MAX_TEXT = 20_000
_PROGRESS_MIN_ITEMS = 20
_perf = time.perf_counter
_now = time.time


class _Scope:
    """Where the code now running sits: its span, pattern, and loop/item position."""

    __slots__ = ("item", "iteration", "pattern", "span")

    def __init__(self, span: Span, pattern: str, item: int | None, iteration: int | None):
        self.span = span
        self.pattern = pattern
        self.item = item
        self.iteration = iteration


_SCOPE: ContextVar[_Scope] = ContextVar("orchnb_scope")


@dataclass(slots=True)
class ToolResult:
    """The outcome of a tool call, ready to hand back to the model as an observation."""

    call_id: str | None
    name: str
    value: Any
    text: str
    """What the model sees: the value as text, or the error / rejection message."""
    is_error: bool = False
    rejected: bool = False


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + f"… [{len(text)} chars]"


def _messages_text(messages: Sequence[Message]) -> str:
    if len(messages) == 1 and not messages[0].tool_calls:
        return _clip(messages[0].content)
    return _clip(json.dumps([m.to_dict() for m in messages], ensure_ascii=False, default=str))


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, MaxIterationsExceeded):
        return "max_iterations"
    if isinstance(exc, (asyncio.CancelledError, RunCancelled, KeyboardInterrupt)):
        return "cancelled"
    return "error"


def as_text(value: Any) -> str:
    """How a step's input or output is shown in the trace and in prompts."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


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
            span.status = _status_of(exc)  # type: ignore[assignment]
            span.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        elif span.status == "running":
            span.status = "ok"
        self._ctx._end(span)


class RunContext:
    """The engine's face to patterns: ``call``, ``tool``, ``gather`` and ``span``.

    Patterns describe control flow only; everything else (spans, retries, timeouts, caching,
    budgets, stepping, cancellation) happens here.
    """

    def __init__(self, run: Run, options: RunOptions, gate: Gate | None, hooks: Sequence[Any]):
        self.run = run
        self.options = options
        self.gate = gate
        self.hooks = list(hooks)
        self.calls = 0
        self.tokens = 0
        self.usd = 0.0
        self._seq = count(1)
        self._store = get_store() if options.persist else None
        self._cache = get_cache() if options.cache else None
        self._spans = run.trace.spans

    # -- spans ---------------------------------------------------------------------------
    def new_span(self, kind: str, step: str, pattern: str | None = None, **fields: Any) -> Span:
        scope = _SCOPE.get(None)
        return Span(
            self.run.id, f"{self.run.id}.{next(self._seq)}", None, self.run.pipeline,
            pattern or (scope.pattern if scope else self.run.pattern), step, kind,  # type: ignore[arg-type]
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

    def enter_root(self, span: Span) -> Any:
        """Make ``span`` (the run span) the current scope; returns the reset token."""
        self._start(span)
        return _SCOPE.set(_Scope(span, span.pattern, None, None))

    def _start(self, span: Span) -> None:
        if span.kind == "run" and self._store is not None:
            self._store.write(span)  # the run shows up (as running) even if the kernel dies
        for hook in self.hooks:
            hook.on_span_start(span=span)

    def _end(self, span: Span) -> None:
        self._spans.append(span)
        if self._store is not None:
            self._store.write(span)
        for hook in self.hooks:
            hook.on_span_end(span=span)

    # -- budget ----------------------------------------------------------------------------
    def _check_budget(self, step: str, before: bool) -> None:
        # Before a call: is there room for one more? After: did that call go over?
        b = self.options.budget
        if before and b.max_calls is not None and self.calls >= b.max_calls:
            raise BudgetExceeded(
                f"step '{step}': the call budget of {b.max_calls} model calls is used up; raise "
                f"Budget(max_calls=...) or simplify the pipeline", limit="calls")
        if b.max_tokens is not None and (self.tokens >= b.max_tokens if before
                                         else self.tokens > b.max_tokens):
            raise BudgetExceeded(
                f"step '{step}': token budget of {b.max_tokens} exceeded ({self.tokens} used); "
                f"raise Budget(max_tokens=...)", limit="tokens")
        if b.max_usd is not None and (self.usd >= b.max_usd if before else self.usd > b.max_usd):
            raise BudgetExceeded(
                f"step '{step}': cost budget of ${b.max_usd:.4f} exceeded (${self.usd:.6f} "
                f"spent); raise Budget(max_usd=...)", limit="usd")

    # -- model calls -------------------------------------------------------------------------
    async def call(
        self,
        model: Model | str,
        messages: Sequence[Message],
        *,
        step: str,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ModelResponse:
        """One model call: a step boundary, cached, retried, timed out, budgeted and traced."""
        if isinstance(model, str):
            model = resolve_model(model)
        request = ModelRequest(list(messages), list(tools), temperature, max_tokens,
                               self.options.timeout)
        gate = self.gate
        if gate is not None:
            scope = _SCOPE.get()
            await gate.wait(Boundary("model", step, model.id, request, scope.span.span_id,
                                     scope.iteration, scope.item))
        try:
            self._check_budget(step, before=True)
            with self.span("model", step, provider=model.provider_name, model=model.name,
                           simulated=model.simulated, input=_messages_text(messages)) as span:
                response = await self._model_call(model, request, span)
            self._check_budget(step, before=False)
            return response
        finally:
            if gate is not None:
                gate.call_done()

    async def _model_call(self, model: Model, request: ModelRequest, span: Span) -> ModelResponse:
        key = None
        if self._cache is not None:
            key = cache_key(model.provider_name, model.name, request)
            hit = self._cache.get(key)
            if hit is not None:
                response, saved = hit
                span.cached, span.cost_usd, span.saved_usd, span.priced = True, 0.0, saved, True
                span.attempt = 0
                self._fill(span, response)
                return response
        response = await self._attempts(model, request, span)
        priced_as = getattr(model.provider, "priced_as", None)
        ref = priced_as(model.name) if priced_as else None
        if ref:
            provider, _, name = ref.partition(":")
            cost, priced = cost_usd(provider, name, response.usage)
        elif model.simulated:
            cost, priced = 0.0, True
        else:
            cost, priced = cost_usd(model.provider_name, response.model or model.name,
                                    response.usage)
        span.cost_usd, span.priced, span.cached = cost, priced, False
        self.calls += 1
        if priced:
            self.usd += cost
        self._fill(span, response)
        if key is not None:
            self._cache.put(key, response, cost if priced else None)  # type: ignore[union-attr]
        return response

    def _fill(self, span: Span, response: ModelResponse) -> None:
        u = response.usage
        span.input_tokens, span.output_tokens, span.cached_tokens = (
            u.input_tokens, u.output_tokens, u.cached_tokens)
        if not span.cached:
            self.tokens += u.input_tokens + u.output_tokens
        out = response.text
        if response.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in response.tool_calls]
            span.meta = json.dumps({"tool_calls": calls}, default=str)
            out = out or json.dumps(calls, default=str)
        span.output = _clip(out)

    async def _attempts(self, model: Model, request: ModelRequest, span: Span) -> ModelResponse:
        policy = self.options.retry
        timeout = request.timeout
        attempt = 0
        while True:
            attempt += 1
            span.attempt = attempt
            try:
                # Providers that enforce request.timeout at their I/O (the SDKs, sim) spare the
                # hot path a timer; for any other provider the engine enforces it.
                if timeout is None or getattr(model.provider, "enforces_timeout", False):
                    return await model.provider.request(model.name, request)
                async with asyncio.timeout(timeout):
                    return await model.provider.request(model.name, request)
            except TimeoutError:
                error: ProviderError | CallTimeoutError = CallTimeoutError(
                    f"{model.id} did not answer within {timeout:g}s")
                retry_after = None
            except CallTimeoutError as e:
                error, retry_after = e, None
            except ProviderError as e:
                if not e.retryable:
                    raise self._located(e, span, attempt) from None
                error, retry_after = e, e.retry_after
            if attempt >= policy.max_attempts:
                raise self._located(error, span, attempt) from None
            await asyncio.sleep(policy.delay(attempt, retry_after))

    @staticmethod
    def _located(error: Exception, span: Span, attempts: int) -> Exception:
        tries = f"; gave up after {attempts} attempts" if attempts > 1 else ""
        error.args = (f"step '{span.step}' ({span.provider}:{span.model}): {error}{tries}",)
        error.step = span.step  # type: ignore[attr-defined]
        return error

    async def embed(self, embedder: Any, texts: list[str], *, step: str) -> list[list[float]]:
        """One embedding call: a "model" span, budgeted and priced like a chat call, and a step
        boundary when the embedder is remote. ``embedder`` has ``provider``, ``model``,
        ``remote``, ``simulated`` and ``async embed(texts) -> (vectors, Usage)``."""
        gate = self.gate if embedder.remote else None
        if gate is not None:
            request = ModelRequest([Message("user", "\n".join(texts)[-4000:])])
            await gate.wait(Boundary("model", step, f"{embedder.provider}:{embedder.model}",
                                     request))
        try:
            self._check_budget(step, before=True)
            with self.span("model", step, provider=embedder.provider, model=embedder.model,
                           simulated=embedder.simulated,
                           input=_clip(json.dumps(texts[-20:], ensure_ascii=False))) as span:
                key = hit = None
                if self._cache is not None and embedder.remote:  # local ones are free anyway
                    raw = json.dumps([embedder.provider, embedder.model, texts])
                    key = "embed:" + hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()
                    hit = self._cache.get_json(key)
                if hit is not None:
                    vectors, tokens, saved = hit
                    span.input_tokens, span.output_tokens, span.cached_tokens = tokens, 0, 0
                    span.cached, span.cost_usd, span.saved_usd, span.priced = True, 0.0, saved, True
                else:
                    vectors, usage = await embedder.embed(texts)
                    span.input_tokens, span.output_tokens, span.cached_tokens = (
                        usage.input_tokens, 0, 0)
                    if embedder.remote:
                        span.cost_usd, span.priced = cost_usd(embedder.provider, embedder.model,
                                                              usage)
                    else:
                        span.cost_usd, span.priced = 0.0, True  # local and sim are free
                    self.calls += embedder.remote
                    self.tokens += usage.input_tokens
                    if span.priced:
                        self.usd += span.cost_usd
                    if key is not None:
                        self._cache.put_json(key, [vectors, usage.input_tokens,  # type: ignore[union-attr]
                                                   span.cost_usd if span.priced else None])
                dims = len(vectors[0]) if vectors else 0
                span.output = f"{len(vectors)} vectors of {dims} dims"
                span.meta = json.dumps({"embedding": True, "texts": len(texts)})
            self._check_budget(step, before=False)
            return vectors
        finally:
            if gate is not None:
                gate.call_done()

    # -- tool calls ----------------------------------------------------------------------------
    async def tool(self, tool: Tool, arguments: dict[str, Any], *, step: str,
                   call_id: str | None = None) -> ToolResult:
        """Run a tool as a step boundary. Bad arguments, a raising tool or a rejection by the
        user become an observation for the model (``is_error``), never a crash."""
        gate = self.gate
        if gate is not None:
            scope = _SCOPE.get()
            decision = await gate.wait(Boundary("tool", step, tool.name, dict(arguments),
                                                scope.span.span_id, scope.iteration, scope.item))
        try:
            with self.span("tool", step, tool=tool.name,
                           input=_clip(as_text(arguments))) as span:
                if gate is not None and decision.action == "reject":
                    text = f"The user rejected this call to {tool.name}" + (
                        f": {decision.reason}" if decision.reason else ".")
                    span.status, span.output = "error", text
                    span.error = "rejected by user"
                    return ToolResult(call_id, tool.name, None, text, True, True)
                if gate is not None and decision.arguments is not None:
                    arguments = decision.arguments
                    span.input = _clip(as_text(arguments))
                try:
                    if self.options.tool_timeout is None:
                        value = await tool.invoke(arguments)
                    else:
                        async with asyncio.timeout(self.options.tool_timeout):
                            value = await tool.invoke(arguments)
                except (ToolError, Exception) as e:
                    if isinstance(e, TimeoutError):
                        e = ToolError(f"tool '{tool.name}' timed out after "
                                      f"{self.options.tool_timeout:g}s")
                    text = f"Error: {e}" if isinstance(e, ToolError) else (
                        f"Error: {tool.name} raised {type(e).__name__}: {e}")
                    span.status, span.error, span.output = "error", text[7:], text
                    return ToolResult(call_id, tool.name, None, text, True)
                text = as_text(value)
                span.output = _clip(text)
                return ToolResult(call_id, tool.name, value, text)
        finally:
            if gate is not None:
                gate.call_done()

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
        label) and enough items, a progress bar (tqdm.auto) follows the items as they finish."""
        scope = _SCOPE.get()
        bar = _progress_bar(progress, len(thunks), self.options.progress)
        n = len(thunks)
        # With a bound, `concurrency` workers pull the next item: no task (and no waiter on a
        # semaphore) per item, which keeps large fan-outs at the floor's speed and memory.
        workers = min(concurrency or n, n)
        results: list[Any] = [None] * n
        items = iter(range(n))

        async def work() -> None:
            for i in items:  # one shared iterator: the workers take turns, in item order
                _SCOPE.set(_Scope(scope.span, scope.pattern, i, scope.iteration))
                try:
                    results[i] = await thunks[i]()
                except Exception as e:
                    if not return_exceptions:
                        raise
                    results[i] = e
                finally:
                    if bar is not None:
                        bar.update(1)

        tasks = [asyncio.ensure_future(work()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
            return results
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            if bar is not None:
                bar.close()


def _progress_bar(label: str | None, total: int, enabled: bool) -> Any:
    if not label or not enabled or total < _PROGRESS_MIN_ITEMS:
        return None
    from tqdm.auto import tqdm  # only when there is long work to show

    return tqdm(total=total, desc=label, unit="item", mininterval=0.2, leave=False)


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
