"""``anthropic:`` models through the official ``anthropic`` SDK (messages with tool use).

The SDK is imported on first use, never when orchnb is imported.
"""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import MissingAPIKeyError
from ._redact import remember_secret
from ._sdk_support import LoopClients, map_sdk_error, parse_arguments
from ._types import Message, ModelRequest, ModelResponse, ToolCall, ToolSpec, Usage

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
    if request.temperature is not None:
        # anthropic>=1.0 dropped the ``temperature`` keyword (deprecated for newer models); the
        # API still takes it where a model supports sampling options, so it rides in the body.
        params["extra_body"] = {"temperature": request.temperature}
    return params


def from_anthropic(message: Any, model: str) -> ModelResponse:
    """A :class:`ModelResponse` from an SDK ``Message``.

    Anthropic counts cache reads and writes apart from ``input_tokens``; ours includes them,
    with the reads reported as ``cached_tokens``.
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content or []:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name,
                                  arguments=parse_arguments(block.input)))
    u = message.usage
    usage = Usage()
    if u is not None:
        read = u.cache_read_input_tokens or 0
        written = u.cache_creation_input_tokens or 0
        usage = Usage(
            input_tokens=(u.input_tokens or 0) + read + written,
            output_tokens=u.output_tokens or 0,
            cached_tokens=read,
        )
    return ModelResponse(
        text="".join(texts),
        tool_calls=calls,
        usage=usage,
        model=message.model or model,
        finish_reason=message.stop_reason,
    )


class AnthropicProvider:
    """The ``anthropic`` provider: messages with tool use through ``anthropic.AsyncAnthropic``.

    ``api_key`` and ``base_url`` default to the SDK's ``ANTHROPIC_API_KEY`` (or
    ``ANTHROPIC_AUTH_TOKEN``) and ``ANTHROPIC_BASE_URL``. A missing key raises
    :class:`MissingAPIKeyError` at the first request. The SDK's own retries are off.

    >>> p = AnthropicProvider(base_url="http://127.0.0.1:8000")
    >>> p.name, p.simulated
    ('anthropic', False)
    """

    name = "anthropic"
    simulated = False
    enforces_timeout = True  # the SDK applies request.timeout; the engine adds no timer

    def __init__(self, api_key: str | None = None, base_url: str | None = None):
        self._api_key = api_key
        remember_secret(api_key)  # scrubbed from errors and traces
        self.base_url = base_url
        self._clients: LoopClients[Any] = LoopClients(self._make_client)

    def __repr__(self) -> str:
        url = self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        return f"AnthropicProvider(base_url={url!r})"

    def _make_client(self) -> Any:
        if not (
            self._api_key or os.environ.get(_KEY_VAR) or os.environ.get("ANTHROPIC_AUTH_TOKEN")
        ):
            raise MissingAPIKeyError("anthropic", _KEY_VAR)
        from anthropic import AsyncAnthropic

        # None lets the SDK read ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL itself.
        return AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, max_retries=0)

    def _error(self, error: Exception, model: str, timeout: float | None) -> Exception:
        import anthropic

        mapped = map_sdk_error(error, anthropic, provider="anthropic", model=model,
                               timeout=timeout, key_variable=_KEY_VAR)
        if mapped is error:
            raise error  # not an SDK error: a bug to see as is, not a provider failure
        return mapped

    async def request(self, model: str, request: ModelRequest) -> ModelResponse:
        """Send one messages request; errors come back as orchnb errors.

        >>> await AnthropicProvider().request("claude-haiku-4-5",
        ...                                   ModelRequest([Message("user", "hi")]))
        ... # doctest: +SKIP
        """
        client = await self._clients.get()
        options = {} if request.timeout is None else {"timeout": request.timeout}
        try:
            message = await client.messages.create(model=model, **to_anthropic(request), **options)
        except Exception as e:
            raise self._error(e, model, request.timeout) from e
        return from_anthropic(message, model)

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop (a later call makes a new one)."""
        await self._clients.aclose()
