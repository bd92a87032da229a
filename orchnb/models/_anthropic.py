"""``anthropic:`` models through the official ``anthropic`` SDK (messages with tool use).

The SDK is imported on first use, never when orchnb is imported.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..exceptions import MissingAPIKeyError
from ._prompt_cache import mark_anthropic
from ._redact import remember_secret
from ._sdk_support import (
    LoopClients,
    malformed_answer,
    map_sdk_error,
    parse_arguments,
    wire_safe,
)
from ._streaming import ToolCallBuffer, consume, idle_limit, incomplete
from ._tokens import complete_usage
from ._types import (
    Capabilities,
    Message,
    ModelRequest,
    ModelResponse,
    OnDelta,
    StreamDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

_KEY_VAR = "ANTHROPIC_API_KEY"
DEFAULT_MAX_TOKENS = 1024
"""Anthropic requires ``max_tokens``; used when the request leaves it unset."""


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}]
    blocks: list[dict[str, Any]] = []
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    for c in m.tool_calls:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
    return blocks


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "input_schema": t.parameters}


_WRAP = "value"
"""The one property a non-object output schema is wrapped in (tool input must be an object)."""


def answer_tool(request: ModelRequest) -> dict[str, Any] | None:
    """The tool a structured answer is given through (forced tool use), or None.

    Anthropic's tool input must be an object: any other schema is wrapped as ``{"value": ...}``
    and unwrapped on the way back.

    >>> answer_tool(ModelRequest([], output_schema={"type": "array"}, output_name="Tags"))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'name': 'Tags', 'description': 'Give your final answer with this tool, in this shape.',
     'input_schema': {'type': 'object', 'properties': {'value': {'type': 'array'}},
                      'required': ['value']}}
    """
    schema = request.output_schema
    if schema is None:
        return None
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {_WRAP: schema}, "required": [_WRAP]}
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in request.output_name)[:64]
    return {"name": name or "output",
            "description": "Give your final answer with this tool, in this shape.",
            "input_schema": schema}


def _answer_of(request: ModelRequest | None, text: str, calls: list[ToolCall],
               finish: str | None) -> tuple[str, list[ToolCall], str | None]:
    """A call of the answer tool becomes the response's JSON text (and no longer a call)."""
    tool = answer_tool(request) if request is not None else None
    if tool is None:
        return text, calls, finish
    for c in calls:
        if c.name == tool["name"]:
            args = c.arguments
            wrapped = request.output_schema.get("type") != "object"  # type: ignore[union-attr]
            if set(args) == {"_raw"}:
                answer = str(args["_raw"])
            else:
                answer = json.dumps(args.get(_WRAP) if wrapped else args, ensure_ascii=False)
            return answer, [k for k in calls if k is not c], "end_turn"
    return text, calls, finish


def to_anthropic(request: ModelRequest) -> dict[str, Any]:
    """The ``messages.create`` keyword arguments (without ``model``) for ``request``.

    System messages go to ``system``; tool results become ``tool_result`` blocks of a user
    message; consecutive messages of one role merge, since the API wants roles to alternate.

    >>> to_anthropic(ModelRequest([Message("system", "be brief"), Message("user", "hi")]))
    {'messages': [{'role': 'user', 'content': 'hi'}], 'max_tokens': 1024, 'system': 'be brief'}
    """
    system = [m.content for m in request.messages if m.role == "system"]
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "system":
            continue
        role = "assistant" if m.role == "assistant" else "user"
        simple = m.role != "tool" and not m.tool_calls
        if messages and messages[-1]["role"] == role:
            last = messages[-1]
            if isinstance(last["content"], str):
                text = last["content"]
                last["content"] = [{"type": "text", "text": text}] if text else []
            last["content"].extend(_blocks(m))
        elif simple:
            messages.append({"role": role, "content": m.content})
        else:
            messages.append({"role": role, "content": _blocks(m)})
    params: dict[str, Any] = {
        "messages": messages,
        "max_tokens": request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS,
    }
    if system:
        params["system"] = "\n\n".join(system)
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
    answer = answer_tool(request)
    if answer is not None:
        # Forced tool use works on every Claude model; with other tools offered the model must
        # call one of them, the answer tool when it is done.
        params["tools"] = [*params.get("tools", []), answer]
        params["tool_choice"] = ({"type": "any"} if request.tools
                                 else {"type": "tool", "name": answer["name"]})
    if request.temperature is not None:
        # anthropic>=1.0 dropped the ``temperature`` keyword (deprecated for newer models); the
        # API still takes it where a model supports sampling options, so it rides in the body.
        params["extra_body"] = {"temperature": request.temperature}
    if request.cache_prompt is not None:
        mark_anthropic(params, request.cache_prompt)
    return wire_safe(params)


def _usage(u: Any) -> Usage:
    """Ours from Anthropic's counts, where cache reads and writes are apart from input_tokens
    (ours include them; the writes are kept apart too, priced at the cache-write rates)."""
    if u is None:
        return Usage()
    read = u.cache_read_input_tokens or 0
    written = u.cache_creation_input_tokens or 0
    split = getattr(u, "cache_creation", None)  # 5-minute and 1-hour writes, when reported
    w1h = (getattr(split, "ephemeral_1h_input_tokens", 0) or 0) if split is not None else 0
    w5m = (getattr(split, "ephemeral_5m_input_tokens", 0) or 0) if split is not None else 0
    written = max(written, w5m + w1h)
    return Usage(
        input_tokens=(u.input_tokens or 0) + read + written,
        output_tokens=u.output_tokens or 0,
        cached_tokens=read,
        cache_write_tokens=written,
        cache_write_1h_tokens=min(w1h, written),
    )


class _StreamState:
    """A streamed message put back together, event by event."""

    def __init__(self, model: str, on_delta: OnDelta, request: ModelRequest | None = None):
        self.model, self.reported = model, ""
        self.on_delta = on_delta
        self.request = request
        tool = answer_tool(request) if request is not None else None
        self.answer_name = tool["name"] if tool is not None else None
        self.texts: list[str] = []
        self.tools = ToolCallBuffer()
        self.usage: Any = None
        """The SDK usage object of message_start, updated by message_delta's totals."""
        self.stop_reason: str | None = None
        self.stopped = False

    def add(self, event: Any) -> None:
        kind = event.type
        if kind == "message_start":
            self.reported = event.message.model or ""
            self.usage = getattr(event.message, "usage", None)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                self.tools.start(event.index, id=block.id, name=block.name, given=block.input)
            elif block.type == "text" and block.text:
                self._text(block.text)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                self._text(delta.text)
            elif delta.type == "input_json_delta" and delta.partial_json:
                self.tools.add(event.index, delta.partial_json)
                name = self.tools.name(event.index)
                if name is not None and name == self.answer_name:  # the answer, as it forms
                    self.on_delta(StreamDelta(delta.partial_json))
                else:
                    self.on_delta(StreamDelta(delta.partial_json, "tool_call", name))
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            u = getattr(event, "usage", None)
            if self.usage is None:  # message_start had none: the totals are all there is
                self.usage = u
            elif u is not None:
                # message_delta counts are running totals: they replace, and the optional
                # ones keep message_start's value when omitted.
                self.usage.output_tokens = u.output_tokens
                if u.input_tokens is not None:
                    self.usage.input_tokens = u.input_tokens
                if u.cache_read_input_tokens is not None:
                    self.usage.cache_read_input_tokens = u.cache_read_input_tokens
                if u.cache_creation_input_tokens is not None:
                    self.usage.cache_creation_input_tokens = u.cache_creation_input_tokens
        elif kind == "message_stop":
            self.stopped = True

    def _text(self, text: str) -> None:
        self.texts.append(text)
        self.on_delta(StreamDelta(text))

    def response(self) -> ModelResponse:
        text, calls, finish = _answer_of(self.request, "".join(self.texts), self.tools.calls(),
                                         self.stop_reason)
        return ModelResponse(
            text=text,
            tool_calls=calls,
            usage=complete_usage(_usage(self.usage), self.request, text, calls),
            model=self.reported or self.model,
            finish_reason=finish,
        )


def from_anthropic(message: Any, model: str, request: ModelRequest | None = None
                   ) -> ModelResponse:
    """A :class:`ModelResponse` from an SDK ``Message``.

    Anthropic counts cache reads and writes apart from ``input_tokens``; ours includes them,
    with the reads reported as ``cached_tokens``. A call of ``request``'s answer tool (a
    structured answer) becomes the response's JSON text.
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content or []:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name,
                                  arguments=parse_arguments(block.input)))
    text, calls, finish = _answer_of(request, "".join(texts), calls, message.stop_reason)
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=complete_usage(_usage(getattr(message, "usage", None)), request, text, calls),
        model=message.model or model,
        finish_reason=finish,
    )


class AnthropicProvider:
    """The ``anthropic`` provider: messages with tool use through ``anthropic.AsyncAnthropic``.

    ``api_key`` and ``base_url`` default to the SDK's ``ANTHROPIC_API_KEY`` (or
    ``ANTHROPIC_AUTH_TOKEN``) and ``ANTHROPIC_BASE_URL``. A missing key raises
    :class:`MissingAPIKeyError` at the first request. The SDK's own retries are off.

    >>> p = AnthropicProvider(base_url="http://127.0.0.1:8000")
    >>> p.name, p.simulated, p.capabilities.tools
    ('anthropic', False, True)
    """

    name = "anthropic"
    simulated = False
    # The SDK applies request.timeout, and streams are bounded here: the engine adds no timer.
    capabilities = Capabilities(tools=True, streaming=True, structured_output=True,
                                embeddings=False, enforces_timeout=True, prompt_cache=True)

    def __init__(self, api_key: str | None = None, base_url: str | None = None):
        self._api_key = api_key
        remember_secret(api_key)  # scrubbed from errors and traces
        self.base_url = base_url
        self._clients: LoopClients[Any] = LoopClients(self._make_client, self._identity)

    @property
    def url(self) -> str:
        """The base URL calls go to now (``ANTHROPIC_BASE_URL`` is read at each call)."""
        return self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"

    def _identity(self) -> tuple[str, int]:
        # A key or URL set in a running kernel takes effect at the next call: a new client.
        key = (self._api_key or os.environ.get(_KEY_VAR)
               or os.environ.get("ANTHROPIC_AUTH_TOKEN"))
        return self.url, hash(key)

    def __repr__(self) -> str:
        return f"AnthropicProvider(base_url={self.url!r})"

    def check(self, model: str) -> None:
        """Before a run: raise :class:`MissingAPIKeyError` when no key is configured."""
        if not (
            self._api_key or os.environ.get(_KEY_VAR) or os.environ.get("ANTHROPIC_AUTH_TOKEN")
        ):
            raise MissingAPIKeyError("anthropic", _KEY_VAR)

    def _make_client(self) -> Any:
        self.check("")
        from anthropic import AsyncAnthropic

        # None lets the SDK read ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL itself.
        return AsyncAnthropic(api_key=self._api_key, base_url=self.url, max_retries=0)

    def _error(self, error: Exception, model: str, timeout: float | None) -> Exception:
        import anthropic

        mapped = map_sdk_error(error, anthropic, provider="anthropic", model=model,
                               timeout=timeout, key_variable=_KEY_VAR, url=self.url)
        if mapped is error:
            raise error  # not an SDK error: a bug to see as is, not a provider failure
        return mapped

    async def request(
        self, model: str, request: ModelRequest, on_delta: OnDelta | None = None
    ) -> ModelResponse:
        """Send one messages request (streamed when ``on_delta`` is given); errors come back
        as orchnb errors.

        >>> await AnthropicProvider().request("claude-haiku-4-5",
        ...                                   ModelRequest([Message("user", "hi")]))
        ... # doctest: +SKIP
        """
        client = await self._clients.get()
        if on_delta is not None:
            return await self._stream(client, model, request, on_delta)
        options = {} if request.timeout is None else {"timeout": request.timeout}
        try:
            message = await client.messages.create(model=model, **to_anthropic(request), **options)
        except Exception as e:
            raise self._error(e, model, request.timeout) from e
        try:
            return from_anthropic(message, model, request)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:
            # A 200 whose body the SDK accepted but that is no anthropic answer (an
            # "compatible" server's own shape): a malformed answer, retried like one.
            raise malformed_answer("anthropic", model, e) from None

    async def _stream(self, client: Any, model: str, request: ModelRequest,
                      on_delta: OnDelta) -> ModelResponse:
        import anthropic

        state = _StreamState(model, on_delta, request)
        idle = idle_limit(request)

        def opened() -> Any:
            return client.messages.create(model=model, stream=True, **to_anthropic(request),
                                          **({} if idle is None else {"timeout": idle}))

        chunks = await consume(opened, state.add, sdk=anthropic, provider="anthropic",
                               model=model, request=request, key_variable=_KEY_VAR,
                               url=self.url)
        if not state.stopped:
            raise incomplete(f"anthropic:{model}", chunks, provider="anthropic", model=model)
        return state.response()

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop (a later call makes a new one)."""
        await self._clients.aclose()
