"""What the guarded call path calls: a model call, an embedding call or a tool call.

Each operation says what its step boundary is, what it may cost (the budget reservation), how it
is cached, how one attempt is made and what it cost. The path itself (boundary → reservation →
span → cache → attempts → price → settle) is written once, in ``RunContext._guarded``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ToolError
from ..models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    StreamDelta,
    Usage,
    call_cost,
    estimate_tokens,
    resolve_model,
)
from ..tools import Tool
from ..trace import MAX_TEXT
from ._budget import Charge
from ._cache import cache_key, dump_response, load_response
from ._gate import Boundary
from ._limiter import AIMDLimiter, limiter_for
from ._text import as_text

if TYPE_CHECKING:
    from ..trace import Span

_MSG_OVERHEAD = 4
"""Tokens a chat message costs beyond its text (role, separators), as providers count them."""
_OUTPUT_GUESS = 512
"""Output tokens reserved for a call without ``max_tokens`` before any output was seen."""


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


class Op:
    """One guarded operation (subclasses fill in the parts)."""

    kind: ClassVar[str] = "model"
    step: str
    boundary: Boundary | None = None
    max_attempts: int | None = None
    """None: the run's retry policy; 1 for calls that are never retried (tools)."""
    enforces_timeout = False
    timeout: float | None = None
    streams = False
    decision: Any = None
    salted: ClassVar[bool] = False
    """Whether the run's ``cache_salt`` keys this op's cached answer (chat calls, whose answers
    vary between tries; an embedding does not)."""
    """The user's decision at the step boundary (tool approval), once it was passed."""
    limiter: AIMDLimiter | None = None
    """The provider's adaptive concurrency limit (model calls to remote providers)."""
    model_id: str | None = None
    tried: tuple[str, ...] = ()
    """Models tried so far, in order (fallbacks)."""
    fell_back = False

    def next_fallback(self) -> bool:
        """Switch to the next fallback model; False when there is none."""
        return False

    def fields(self) -> dict[str, Any]:
        """Span columns known before the call."""
        return {}

    def open(self, span: Span) -> None:
        """Write the span columns known before the call (:meth:`fields`) as its span opens."""
        for name, value in self.fields().items():
            setattr(span, name, value)

    def need(self, largest_output: int) -> Charge:
        """The budget reservation: what this call may cost at most (or a fair estimate), given
        the most output tokens one call of the run gave so far."""
        return Charge()

    def cache_key(self) -> str | None:
        return None

    def load(self, cached: Any) -> tuple[Any, float | None]:
        """A cached value and the cost the original call had (None: unknown price)."""
        raise NotImplementedError

    def dump(self, result: Any, usd: float | None) -> Any:
        raise NotImplementedError

    async def attempt(self, span: Span, on_delta: Callable[[StreamDelta], None] | None) -> Any:
        """One request; ``on_delta`` publishes a streaming call's text as it arrives."""
        raise NotImplementedError

    def ready(self) -> Any:
        """The first attempt's answer when the provider has it without waiting (a sim with
        no latency), else None: the guarded path then takes it without awaiting a request."""
        return None

    def charge(self, result: Any, cached: bool) -> tuple[Charge, bool]:
        """What the call cost and whether its price is known."""
        return Charge(), True

    def fill(self, span: Span, result: Any) -> None:
        """Span columns known after the call."""


class ModelOp(Op):
    """A chat call."""

    kind = "model"
    batch = False
    """Sent through a provider's batch API (priced at the batch rate; see ``_batch``)."""
    list_usd: float | None = None
    """For a batch call: what it would have cost outside the batch (same tier)."""
    salted = True

    def __init__(self, model: Model, request: ModelRequest, step: str, stream: bool,
                 boundary: Boundary | None, fallback: tuple[Model, ...] = ()):
        self.request = request
        self.step = step
        self.boundary = boundary
        self.timeout = request.timeout
        self.streams = stream
        self._fallback = list(fallback)
        self._key: str | None = None
        self._use(model)
        self.tried = (self.model_id,)  # type: ignore[assignment]

    def _use(self, model: Model) -> None:
        traits = model._traits or model.traits  # (the slot first: no property call)
        self.model = model
        self.model_id = traits.id
        self.provider_name, self.model_name = model.provider_name, model.name
        self._simulated = traits.simulated
        caps = self._caps = traits.caps
        self.enforces_timeout = caps.enforces_timeout
        self._native_stream = self.streams and caps.streaming
        # Simulated models never push back; remote ones get an adaptive limit of their own.
        self.limiter = None if traits.simulated else limiter_for(model.provider, model.name)
        self._now = (getattr(model.provider, "answer_now", None) if traits.simulated
                     and not self.streams else None)

    def next_fallback(self) -> bool:
        if not self._fallback:
            return False
        model = self._fallback.pop(0)
        self._use(model)
        self.tried = (*self.tried, self.model_id)  # type: ignore[assignment]
        self.fell_back = True
        return True

    def fields(self) -> dict[str, Any]:
        m = self.model
        return {"provider": m.provider_name, "model": m.name, "simulated": self._simulated,
                "input": messages_text(self.request.messages)}

    def open(self, span: Span) -> None:
        span.provider, span.model, span.simulated = (self.provider_name, self.model_name,
                                                     self._simulated)
        messages = self.request.messages
        span.input = (messages[0].content if len(messages) == 1 and not messages[0].tool_calls
                      else messages_text(messages))

    def need(self, largest_output: int) -> Charge:
        r = self.request
        inp = sum(estimate_tokens(m.content) + _MSG_OVERHEAD for m in r.messages) + 3
        inp += sum(estimate_tokens(json.dumps(t.parameters)) + 8 for t in r.tools)
        inp = int(inp * 1.2) + 1  # tokenizers differ; reserve a margin
        out = r.max_tokens if r.max_tokens is not None else max(_OUTPUT_GUESS,
                                                                largest_output)
        usd, priced = call_cost(self.model, Usage(inp, out), batch=self.batch,
                                service_tier=self._tier(None))
        if not priced:  # a tier the table does not price: reserve at the list price
            usd, priced = call_cost(self.model, Usage(inp, out))
        return Charge(1, inp + out, usd if priced else 0.0, exact=r.max_tokens is not None)

    def _tier(self, result: ModelResponse | None) -> str | None:
        """The tier a call is priced at: the one the provider reports, else the one asked
        for, for providers that have tiers (a fallback to one without ignores it)."""
        if not self._caps.service_tiers:
            return None
        reported = result.service_tier if result is not None else None
        return reported or self.request.service_tier

    def cache_key(self) -> str:
        self._key = cache_key(self.model.provider_name, self.model.name, self.request)
        return self._key

    def load(self, cached: Any) -> tuple[Any, float | None]:
        return load_response(cached)

    def dump(self, result: Any, usd: float | None) -> Any:
        return dump_response(result, usd)

    def attempt(self, span: Span, on_delta: Callable[[StreamDelta], None] | None
                ) -> Awaitable[ModelResponse]:  # type: ignore[override]
        # Not a coroutine of its own: the provider's request is what the path awaits.
        if self._native_stream and on_delta is not None:
            return self.model.provider.request(self.model_name, self.request,
                                               on_delta=on_delta)
        return self.model.provider.request(self.model_name, self.request)

    def ready(self) -> ModelResponse | None:
        now = self._now
        return now(self.model_name, self.request) if now is not None else None

    def charge(self, result: ModelResponse, cached: bool) -> tuple[Charge, bool]:
        u = result.usage
        if self._simulated and not self.batch and self.model.priced_as is None:
            return Charge(1, u.input_tokens + u.output_tokens, 0.0), True  # a free sim model
        tier = self._tier(result)
        usd, priced = call_cost(self.model, u, result.model or None, batch=self.batch,
                                service_tier=tier)
        if self.batch:  # what batching saved: the same call (same tier) outside the batch
            self.list_usd = call_cost(self.model, u, result.model or None,
                                      service_tier=tier)[0]
        return Charge(1, u.input_tokens + u.output_tokens, usd), priced

    def fill(self, span: Span, result: ModelResponse) -> None:
        u = result.usage
        span.input_tokens, span.output_tokens, span.cached_tokens = (
            u.input_tokens, u.output_tokens, u.cached_tokens)
        span.cache_write_tokens, span.cache_write_1h_tokens = (
            u.cache_write_tokens, u.cache_write_1h_tokens)
        if self._caps.service_tiers:
            span.service_tier = self._tier(result)
        if u.estimated and not result.simulated:  # a sim's counts are its rule, not a guess
            span.usage_estimated = True
        if self.batch:
            span.batch = True
            if self.list_usd is not None and span.priced:
                span.saved_usd = self.list_usd - (span.cost_usd or 0.0)
        out = result.text
        # What a fork or a replay needs to answer this call again from the trace alone: the
        # tool calls' ids, the text when the output column cannot hold it, and the request's
        # address when the cache computed it (else replays compare the prompt and the model).
        meta: dict[str, Any] = {"request": self._key} if self._key is not None else {}
        if result.tool_calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls]
            meta["tool_calls"] = calls
            meta["tool_call_ids"] = [c.id for c in result.tool_calls]
            if not out:
                meta["text"] = ""
            out = out or json.dumps(calls, default=str)
        if len(result.text) > MAX_TEXT:
            meta["text"] = result.text
        if meta:  # kept beside what the engine noted (failed attempts, fallback)
            span.meta = {**(span.meta or {}), **meta}
        span.output = out


class EmbedOp(Op):
    """An embedding call. ``embedder`` has ``provider``, ``model``, ``remote``, ``simulated``,
    and ``async embed(texts) -> (vectors, Usage)``."""

    kind = "model"

    def __init__(self, embedder: Any, texts: list[str], step: str, boundary: Boundary | None):
        self.embedder = embedder
        self.texts = texts
        self.step = step
        self.boundary = boundary
        self.model_id = f"{embedder.provider}:{embedder.model}"
        self.enforces_timeout = True  # embedders run under the SDK's or no timeout
        self._model: Model | None = None

    def fields(self) -> dict[str, Any]:
        e = self.embedder
        return {"provider": e.provider, "model": e.model, "simulated": e.simulated,
                "input": json.dumps(self.texts[-20:], ensure_ascii=False)}

    def need(self, largest_output: int) -> Charge:
        if not self.embedder.remote:
            return Charge()
        tokens = int(sum(estimate_tokens(t) for t in self.texts) * 1.2) + 1
        usd, priced = self._cost(tokens)
        return Charge(1, tokens, usd if priced else 0.0, exact=False)

    def _cost(self, tokens: int) -> tuple[float, bool]:
        e = self.embedder
        if not e.remote:
            return 0.0, True  # local and sim embedders are free
        if self._model is None:
            self._model = resolve_model(f"{e.provider}:{e.model}")
        return call_cost(self._model, Usage(tokens, 0))

    def cache_key(self) -> str | None:
        if not self.embedder.remote:  # local ones are free anyway
            return None
        raw = json.dumps([self.embedder.provider, self.embedder.model, self.texts])
        return "embed:" + hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    def load(self, cached: Any) -> tuple[Any, float | None]:
        vectors, tokens, usd = cached
        return (vectors, tokens), usd

    def dump(self, result: Any, usd: float | None) -> Any:
        vectors, tokens = result
        return [vectors, tokens, usd]

    async def attempt(self, span: Span, on_delta: Callable[[StreamDelta], None] | None
                      ) -> tuple[list[list[float]], int]:
        vectors, usage = await self.embedder.embed(self.texts)
        return vectors, usage.input_tokens

    def charge(self, result: Any, cached: bool) -> tuple[Charge, bool]:
        tokens = result[1]
        usd, priced = self._cost(tokens)
        return Charge(int(self.embedder.remote), tokens, usd), priced

    def fill(self, span: Span, result: Any) -> None:
        vectors, tokens = result
        span.input_tokens, span.output_tokens, span.cached_tokens = tokens, 0, 0
        dims = len(vectors[0]) if vectors else 0
        span.output = f"{len(vectors)} vectors of {dims} dims"
        span.meta = {**(span.meta or {}), "embedding": True, "texts": len(self.texts)}


class ToolOp(Op):
    """A tool call: never cached, never retried; failures become observations."""

    kind = "tool"
    max_attempts = 1
    enforces_timeout = True  # the tool's own timeout is applied in ``attempt``

    def __init__(self, tool: Tool, arguments: dict[str, Any], step: str, call_id: str | None,
                 boundary: Boundary | None, timeout: float | None):
        self.tool = tool
        self.arguments = arguments
        self.step = step
        self.call_id = call_id
        self.boundary = boundary
        self.tool_timeout = timeout

    def fields(self) -> dict[str, Any]:
        return {"tool": self.tool.name, "input": as_text(self.arguments)}

    async def attempt(self, span: Span, on_delta: Callable[[StreamDelta], None] | None
                      ) -> ToolResult:
        tool, d = self.tool, self.decision
        if d is not None and d.action == "reject":
            text = f"The user rejected this call to {tool.name}" + (
                f": {d.reason}" if d.reason else ".")
            span.status, span.error = "error", "rejected by user"
            return ToolResult(self.call_id, tool.name, None, text, True, True)
        arguments = self.arguments
        if d is not None and d.arguments is not None:
            arguments = d.arguments
            span.input = as_text(arguments)
        try:
            if self.tool_timeout is None:
                value = await tool.invoke(arguments)
            else:
                async with asyncio.timeout(self.tool_timeout):
                    value = await tool.invoke(arguments)
        except Exception as e:
            if isinstance(e, TimeoutError):
                e = ToolError(f"tool '{tool.name}' timed out after {self.tool_timeout:g}s")
            text = f"Error: {e}" if isinstance(e, ToolError) else (
                f"Error: {tool.name} raised {type(e).__name__}: {e}")
            span.status, span.error = "error", text[7:]
            return ToolResult(self.call_id, tool.name, None, text, True)
        return ToolResult(self.call_id, tool.name, value, as_text(value))

    def fill(self, span: Span, result: ToolResult) -> None:
        span.output = result.text


def messages_text(messages: list[Message]) -> str:
    """The messages of a call as the trace shows them."""
    if len(messages) == 1 and not messages[0].tool_calls:
        return messages[0].content
    return json.dumps([m.to_dict() for m in messages], ensure_ascii=False, default=str)


class LocalOp(Op):
    """Work on this machine that belongs in the trace (memory reads and writes): a span and
    a step boundary like any call, never cached, budgeted or retried."""

    max_attempts = 1
    enforces_timeout = True

    def __init__(self, kind: str, step: str, fn: Callable[[], Awaitable[Any]],
                 fields: dict[str, Any], boundary: Boundary | None):
        self.kind = kind  # type: ignore[misc]
        self.step = step
        self._fn = fn
        self._fields = fields
        self.boundary = boundary

    def fields(self) -> dict[str, Any]:
        return self._fields

    async def attempt(self, span: Span, on_delta: Callable[[StreamDelta], None] | None) -> Any:
        return await self._fn()

    def fill(self, span: Span, result: Any) -> None:
        if span.output is None and result is not None:
            span.output = as_text(result)
