"""``openai:`` models through the official ``openai`` SDK (chat completions with tools).

Any OpenAI-compatible server (Ollama, vLLM, llama.cpp) works through ``base_url`` or the SDK's
own ``OPENAI_BASE_URL``. The SDK is imported on first use, never when orchnb is imported.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..exceptions import MissingAPIKeyError, ProviderError
from ._redact import remember_secret
from ._sdk_support import LoopClients, map_sdk_error, parse_arguments
from ._types import Message, ModelRequest, ModelResponse, ToolCall, ToolSpec, Usage

_KEY_VAR = "OPENAI_API_KEY"


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


def to_openai(request: ModelRequest) -> dict[str, Any]:
    """The chat completions parameters (without ``model``) for ``request``.

    >>> to_openai(ModelRequest([Message("user", "hi")]))
    {'messages': [{'role': 'user', 'content': 'hi'}]}
    """
    params: dict[str, Any] = {"messages": [_message(m) for m in request.messages]}
    if request.tools:
        params["tools"] = [_tool(t) for t in request.tools]
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    return params


def from_openai(completion: Any, model: str) -> ModelResponse:
    """A :class:`ModelResponse` from an SDK ``ChatCompletion``."""
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
    usage = Usage()
    u = completion.usage
    if u is not None:
        details = u.prompt_tokens_details
        usage = Usage(
            input_tokens=u.prompt_tokens or 0,
            output_tokens=u.completion_tokens or 0,
            cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
        )
    return ModelResponse(
        text=message.content or "",
        tool_calls=calls,
        usage=usage,
        model=completion.model or model,
        finish_reason=choice.finish_reason,
    )


class OpenAIProvider:
    """The ``openai`` provider: chat completions and embeddings through ``openai.AsyncOpenAI``.

    ``api_key`` and ``base_url`` default to the SDK's ``OPENAI_API_KEY`` and
    ``OPENAI_BASE_URL``. A missing key raises :class:`MissingAPIKeyError` at the first request,
    not here, so pipelines can be defined offline. The SDK's own retries are off: the engine
    retries.

    >>> p = OpenAIProvider(base_url="http://127.0.0.1:8000/v1")
    >>> p.name, p.simulated
    ('openai', False)
    """

    name = "openai"
    simulated = False
    enforces_timeout = True  # the SDK applies request.timeout; the engine adds no timer

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
    ):
        self._api_key = api_key
        self.base_url = base_url
        self.organization = organization
        remember_secret(api_key)  # scrubbed from errors and traces
        self._clients: LoopClients[Any] = LoopClients(self._make_client)

    def __repr__(self) -> str:
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return f"OpenAIProvider(base_url={url!r})"

    def _make_client(self) -> Any:
        if not (self._api_key or os.environ.get(_KEY_VAR)):
            raise MissingAPIKeyError("openai", _KEY_VAR)
        from openai import AsyncOpenAI

        # None lets the SDK read OPENAI_API_KEY / OPENAI_BASE_URL itself.
        return AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            organization=self.organization,
            max_retries=0,
        )

    def _error(self, error: Exception, model: str, timeout: float | None) -> Exception:
        # Mapped by type here rather than by an ``except openai.X`` clause, which would need
        # the SDK imported before the call; anything that is not an SDK error re-raises as is.
        import openai

        mapped = map_sdk_error(error, openai, provider="openai", model=model, timeout=timeout,
                               key_variable=_KEY_VAR)
        if mapped is error:
            raise error
        return mapped

    def _options(self, request: ModelRequest) -> dict[str, Any]:
        return {} if request.timeout is None else {"timeout": request.timeout}

    async def request(self, model: str, request: ModelRequest) -> ModelResponse:
        """Send one chat completion; errors come back as orchnb errors.

        >>> await OpenAIProvider().request("gpt-4o-mini", ModelRequest([Message("user", "hi")]))
        ... # doctest: +SKIP
        """
        client = await self._clients.get()
        try:
            completion = await client.chat.completions.create(
                model=model, **to_openai(request), **self._options(request)
            )
        except Exception as e:
            raise self._error(e, model, request.timeout) from e
        return from_openai(completion, model)

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
        u = result.usage
        return vectors, Usage(input_tokens=(u.prompt_tokens or 0) if u is not None else 0)

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop (a later call makes a new one)."""
        await self._clients.aclose()
