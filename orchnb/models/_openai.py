"""``openai:`` models through the official ``openai`` SDK (chat completions with tools).

Any OpenAI-compatible server (Ollama, vLLM, llama.cpp) works through ``base_url`` or the SDK's
own ``OPENAI_BASE_URL``. The SDK is imported on first use, never when orchnb is imported.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..exceptions import MissingAPIKeyError, ProviderError
from ._prompt_cache import prefix_key, system_first
from ._redact import remember_secret
from ._sdk_support import (
    LoopClients,
    malformed_answer,
    map_sdk_error,
    parse_arguments,
    wire_safe,
)
from ._streaming import ToolCallBuffer, consume, idle_limit, incomplete
from ._tokens import complete_usage, estimate_tokens
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

_KEY_VAR = "OPENAI_API_KEY"
_URL_VAR = "OPENAI_BASE_URL"
_DEFAULT_URL = "https://api.openai.com/v1"
NO_KEY = "orchnb-no-key"
"""What a server that needs no key is sent as one (the SDK refuses to send none)."""


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content}
    if m.role == "assistant" and m.tool_calls:
        return {
            "role": "assistant",
            # OpenAI wants null, not "", when an assistant turn is only tool calls.
            "content": m.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in m.tool_calls
            ],
        }
    return {"role": m.role, "content": m.content}


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
    }


def _strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object, or None when it cannot
    be strict (OpenAI's strict mode wants every property required, no open objects)."""
    if isinstance(schema, list):
        items = [_strict(s) for s in schema]
        return None if any(i is None for i in items) else items
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            inner = {k: _strict(v) for k, v in value.items()}
            if any(v is None for v in inner.values()):
                return None
            out[key] = inner
        elif key in ("items", "anyOf", "allOf", "oneOf", "additionalProperties") and \
                isinstance(value, (dict, list)):
            inner_value = _strict(value)
            if inner_value is None:
                return None
            out[key] = inner_value
        else:
            out[key] = value
    if out.get("type") == "object" or "properties" in out:
        props = out.get("properties", {})
        if set(out.get("required", [])) != set(props) or out.get("additionalProperties") not in (
                None, False):
            return None
        out["additionalProperties"] = False
    return out


def response_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a JSON schema: strict when the schema allows it.

    >>> response_format("Pet", {"type": "object", "properties": {"name": {"type": "string"}},
    ...                         "required": ["name"]})["json_schema"]["strict"]
    True
    """
    strict = _strict(schema)
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "output"
    return {"type": "json_schema", "json_schema": {
        "name": safe, "schema": strict if strict is not None else schema,
        "strict": strict is not None}}


def to_openai(request: ModelRequest) -> dict[str, Any]:
    """The chat completions parameters (without ``model``) for ``request``.

    >>> to_openai(ModelRequest([Message("user", "hi")]))
    {'messages': [{'role': 'user', 'content': 'hi'}]}
    """
    messages = request.messages
    if request.cache_prompt is not None:  # the shared prefix first, where OpenAI's cache looks
        messages = system_first(messages)
    params: dict[str, Any] = {"messages": [_message(m) for m in messages]}
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    if request.output_schema is not None:
        params["response_format"] = response_format(request.output_name, request.output_schema)
    if request.service_tier is not None:
        params["service_tier"] = request.service_tier
    if request.cache_prompt is not None:
        # OpenAI caches prefixes of 1024+ tokens by itself; the key routes prompts that share
        # the stable prefix (system + tools, which open the messages) to the same cache.
        params["prompt_cache_key"] = prefix_key(request)
    return wire_safe(params)


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    details = u.prompt_tokens_details
    return Usage(
        input_tokens=u.prompt_tokens or 0,
        output_tokens=u.completion_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def _tier(value: Any) -> str | None:
    """The reported service tier, bounded (a hostile server's string is not kept whole)."""
    return value[:32] if isinstance(value, str) and value else None


class _StreamState:
    """A streamed chat completion put back together, chunk by chunk."""

    def __init__(self, model: str, on_delta: OnDelta, request: ModelRequest | None = None):
        self.model, self.reported = model, ""
        self.on_delta = on_delta
        self.request = request
        self.texts: list[str] = []
        self.tools = ToolCallBuffer()
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.tier: str | None = None

    def add(self, chunk: Any) -> None:
        self.reported = chunk.model or self.reported
        self.tier = _tier(getattr(chunk, "service_tier", None)) or self.tier
        if chunk.usage is not None:  # the include_usage chunk, after the finish_reason one
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                self.texts.append(delta.content)
                self.on_delta(StreamDelta(delta.content))
            for tc in delta.tool_calls or []:
                fn = tc.function
                self.tools.start(tc.index, id=tc.id, name=fn.name if fn else None)
                if fn is not None and fn.arguments:
                    self.tools.add(tc.index, fn.arguments)
                    self.on_delta(StreamDelta(fn.arguments, "tool_call",
                                              self.tools.name(tc.index)))
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason

    def response(self) -> ModelResponse:
        text, calls = "".join(self.texts), self.tools.calls()
        return ModelResponse(
            text=text,
            tool_calls=calls,
            # llama.cpp's server (and others) send no usage chunk even when asked
            usage=complete_usage(self.usage, self.request, text, calls),
            model=self.reported or self.model,
            finish_reason=self.finish_reason,
            service_tier=self.tier,
        )


def from_openai(completion: Any, model: str, request: ModelRequest | None = None
                ) -> ModelResponse:
    """A :class:`ModelResponse` from an SDK ``ChatCompletion``; usage the server left out is
    estimated from ``request`` and the reply (see :func:`complete_usage`)."""
    if not completion.choices:
        raise ProviderError(f"openai:{model}: the answer has no choices", provider="openai",
                            model=model, retryable=True)
    choice = completion.choices[0]
    message = choice.message
    calls = [
        ToolCall(id=c.id, name=c.function.name, arguments=parse_arguments(c.function.arguments))
        for c in (message.tool_calls or [])
        if getattr(c, "function", None) is not None  # skip non-function (custom) tool calls
    ]
    # A refusal of a structured answer is text, so validation shows it (and keeps it).
    text = message.content or getattr(message, "refusal", None) or ""
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=complete_usage(_usage(getattr(completion, "usage", None)), request, text, calls),
        model=completion.model or model,
        finish_reason=choice.finish_reason,
        service_tier=_tier(getattr(completion, "service_tier", None)),
    )


class OpenAIProvider:
    """The ``openai`` provider: chat completions and embeddings through ``openai.AsyncOpenAI``.

    ``api_key`` and ``base_url`` default to the SDK's ``OPENAI_API_KEY`` and
    ``OPENAI_BASE_URL``. A missing key raises :class:`MissingAPIKeyError` at the first request,
    not here, so pipelines can be defined offline. The SDK's own retries are off: the engine
    retries. ``capabilities`` overrides what the provider declares (an OpenAI-compatible server
    may lack tool calling, see :func:`openai_compatible`).

    >>> p = OpenAIProvider(base_url="http://127.0.0.1:8000/v1")
    >>> p.name, p.simulated, p.capabilities.streaming
    ('openai', False, True)
    """

    name = "openai"
    simulated = False
    # The SDK applies request.timeout, and streams are bounded here: the engine adds no timer.
    capabilities = Capabilities(tools=True, streaming=True, structured_output=True,
                                embeddings=True, enforces_timeout=True, service_tiers=True,
                                prompt_cache=True)

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        capabilities: Capabilities | None = None,
        *,
        name: str = "openai",
        key_variable: str | None = _KEY_VAR,
    ):
        if capabilities is not None:
            self.capabilities = capabilities
        self.name = name  # what errors call it: 'local:m' for an openai_compatible('local')
        self._api_key = api_key
        self._key_variable = key_variable
        self.base_url = base_url
        self.organization = organization
        remember_secret(api_key)  # scrubbed from errors and traces
        self._clients: LoopClients[Any] = LoopClients(self._make_client, self._identity)

    @property
    def url(self) -> str:
        """The base URL calls go to now (``OPENAI_BASE_URL`` is read at each call)."""
        return self.base_url or os.environ.get(_URL_VAR) or _DEFAULT_URL

    def _key(self) -> str | None:
        if self._api_key:
            return self._api_key
        if self._key_variable is None:
            return NO_KEY  # a server that needs no key (openai_compatible without one)
        return os.environ.get(self._key_variable) or None

    def _identity(self) -> tuple[str, int]:
        # A key or URL set in a running kernel takes effect at the next call: a new client.
        return self.url, hash(self._key())

    def __repr__(self) -> str:
        return f"OpenAIProvider(base_url={self.url!r})"

    def check(self, model: str) -> None:
        """Before a run: raise :class:`MissingAPIKeyError` when no key is configured."""
        if not self._key():
            raise MissingAPIKeyError(self.name, self._key_variable or _KEY_VAR)

    def _make_client(self) -> Any:
        self.check("")
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self._key(),
            base_url=self.url,
            organization=self.organization,
            max_retries=0,
        )

    def _error(self, error: Exception, model: str, timeout: float | None) -> Exception:
        # Mapped by type here rather than by an ``except openai.X`` clause, which would need
        # the SDK imported before the call; anything that is not an SDK error re-raises as is.
        import openai

        mapped = map_sdk_error(error, openai, provider=self.name, model=model, timeout=timeout,
                               key_variable=self._key_variable or _KEY_VAR, url=self.url)
        if mapped is error:
            raise error
        return mapped

    def _options(self, request: ModelRequest) -> dict[str, Any]:
        return {} if request.timeout is None else {"timeout": request.timeout}

    async def request(
        self, model: str, request: ModelRequest, on_delta: OnDelta | None = None
    ) -> ModelResponse:
        """Send one chat completion (streamed when ``on_delta`` is given); errors come back
        as orchnb errors.

        >>> await OpenAIProvider().request("gpt-4o-mini", ModelRequest([Message("user", "hi")]))
        ... # doctest: +SKIP
        """
        client = await self._clients.get()
        if on_delta is not None:
            return await self._stream(client, model, request, on_delta)
        try:
            completion = await client.chat.completions.create(
                model=model, **to_openai(request), **self._options(request)
            )
        except Exception as e:
            raise self._error(e, model, request.timeout) from e
        try:
            return from_openai(completion, model, request)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as e:
            # A 200 whose body the SDK accepted but that is no openai answer (an
            # "compatible" server's own shape): a malformed answer, retried like one.
            raise malformed_answer(self.name, model, e) from None

    async def _stream(self, client: Any, model: str, request: ModelRequest,
                      on_delta: OnDelta) -> ModelResponse:
        import openai

        state = _StreamState(model, on_delta, request)
        idle = idle_limit(request)

        def opened() -> Any:
            return client.chat.completions.create(
                model=model, stream=True, stream_options={"include_usage": True},
                **to_openai(request), **({} if idle is None else {"timeout": idle}))

        chunks = await consume(opened, state.add, sdk=openai, provider=self.name, model=model,
                               request=request, key_variable=self._key_variable or _KEY_VAR,
                               url=self.url)
        if state.finish_reason is None:
            raise incomplete(f"{self.name}:{model}", chunks, provider=self.name, model=model)
        return state.response()

    async def embed(
        self, model: str, texts: list[str], *, timeout: float | None = None
    ) -> tuple[list[list[float]], Usage]:
        """Embed ``texts`` with the embeddings endpoint; returns (vectors in order, usage).

        >>> vectors, usage = await provider.embed("text-embedding-3-small", ["hi"])
        ... # doctest: +SKIP
        """
        client = await self._clients.get()
        try:
            result = await client.embeddings.create(
                model=model, input=texts, **({} if timeout is None else {"timeout": timeout})
            )
        except Exception as e:
            raise self._error(e, model, timeout) from e
        vectors = [list(d.embedding) for d in sorted(result.data, key=lambda d: d.index)]
        u = getattr(result, "usage", None)
        tokens = (u.prompt_tokens or 0) if u is not None else 0
        if tokens <= 0 < len(texts):  # no usage reported: estimated, not 0 (budgets count it)
            return vectors, Usage(sum(estimate_tokens(t) for t in texts), 0, estimated=True)
        return vectors, Usage(input_tokens=tokens)

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop (a later call makes a new one)."""
        await self._clients.aclose()
