"""What the OpenAI and Anthropic providers share when they stream.

A stream is complete only when its final event arrives (OpenAI: a chunk with a
``finish_reason``; Anthropic: ``message_stop``). One that ends early, or whose connection
drops, raises a retryable :class:`ProviderError`, never a partial answer. Timeouts: the SDK's
read timeout bounds the wait for each chunk (``idle_timeout``), an ``asyncio.timeout`` the
whole call (``timeout``). Nothing here imports an SDK at module level.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..exceptions import CallTimeoutError, ProviderError
from ._sdk_support import map_sdk_error, parse_arguments
from ._types import ModelRequest, ToolCall


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    given: Any = None
    """Arguments that came whole (Anthropic's ``content_block_start`` input) rather than as
    fragments."""


class ToolCallBuffer:
    """Tool calls assembled from streamed fragments, keyed by their position in the answer.

    >>> buf = ToolCallBuffer()
    >>> buf.start(0, id="c1", name="add")
    >>> buf.add(0, '{"a": ')
    >>> buf.add(0, '1}')
    >>> buf.calls()
    [ToolCall(id='c1', name='add', arguments={'a': 1})]
    """

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def start(self, index: int, *, id: str | None = None, name: str | None = None,
              given: Any = None) -> None:
        call = self._calls.setdefault(index, _PartialCall())
        if id:
            call.id = id
        if name:
            call.name = name
        if given:
            call.given = given

    def add(self, index: int, fragment: str | None) -> None:
        if fragment:
            self._calls.setdefault(index, _PartialCall()).arguments.append(fragment)

    def name(self, index: int) -> str | None:
        call = self._calls.get(index)
        return call.name if call else None

    def calls(self) -> list[ToolCall]:
        out = []
        for _, c in sorted(self._calls.items()):
            raw = "".join(c.arguments)
            out.append(ToolCall(id=c.id, name=c.name,
                                arguments=parse_arguments(raw if raw else c.given)))
        return out


def idle_limit(request: ModelRequest) -> float | None:
    """The longest wait for a stream's next chunk: ``idle_timeout``, else ``timeout``."""
    return request.idle_timeout if request.idle_timeout is not None else request.timeout


def incomplete(where: str, chunks: int, *, provider: str, model: str) -> ProviderError:
    """The error for a stream that ended cleanly but before its final event."""
    return ProviderError(
        f"{where}: stream ended before its final event after {chunks} chunks; the answer is "
        f"incomplete (retry, or call without streaming)",
        provider=provider, model=model, status=None, retryable=True,
    )


async def consume(
    opened: Callable[[], Awaitable[Any]],
    handle: Callable[[Any], None],
    *,
    sdk: ModuleType,
    provider: str,
    model: str,
    request: ModelRequest,
    key_variable: str,
    url: str | None = None,
) -> int:
    """Open the stream with ``opened()`` and feed each chunk to ``handle``; returns the count.

    ``opened`` is the SDK's ``create(..., stream=True)`` coroutine factory; errors before the
    first chunk (HTTP statuses, refused connections) map as for a plain call, errors after it
    say how far the stream got. The whole call is bounded by ``request.timeout``.
    """
    where = f"{provider}:{model}"
    count = 0
    idle = idle_limit(request)
    deadline = asyncio.timeout(request.timeout)
    try:
        async with deadline:
            try:
                stream = await opened()
            except Exception as e:
                mapped = map_sdk_error(e, sdk, provider=provider, model=model, timeout=idle,
                                       key_variable=key_variable, url=url)
                if mapped is e:
                    raise
                raise mapped from e
            async with stream:
                try:
                    async for chunk in stream:
                        count += 1
                        handle(chunk)
                except Exception as e:
                    mapped = _mid_stream(e, sdk, where, count, idle, provider=provider,
                                         model=model, key_variable=key_variable)
                    if mapped is e:
                        raise
                    raise mapped from e
    except TimeoutError as e:
        if not deadline.expired():
            raise
        raise CallTimeoutError(
            f"{where} did not finish streaming within {request.timeout:g}s "
            f"(after {count} chunks)") from e
    return count


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout errors, other transport errors) of the HTTP library both SDKs use.

    The anthropic SDK lets these escape a stream's iteration unwrapped (the openai SDK
    wraps them as ``APITimeoutError`` / ``APIConnectionError``).
    """
    try:
        import httpx2
    except ImportError:  # pragma: no cover - both SDKs depend on it
        return (), ()
    return (httpx2.TimeoutException,), (httpx2.TransportError, httpx2.DecodingError)


def _mid_stream(error: Exception, sdk: ModuleType, where: str, count: int,
                idle: float | None, *, provider: str, model: str,
                key_variable: str) -> Exception:
    timeouts, transport = _transport_errors()
    if isinstance(error, (sdk.APITimeoutError, *timeouts)):
        within = f"within {idle:g}s " if idle is not None else ""
        return CallTimeoutError(f"{where} sent no further chunk {within}(after {count} chunks)")
    if isinstance(error, (sdk.APIConnectionError, *transport)):
        cause = error.__cause__ if isinstance(error, sdk.APIConnectionError) else error
        reason = f" ({type(cause).__name__})" if cause is not None else ""
        return ProviderError(
            f"{where}: the connection dropped mid-stream after {count} chunks{reason}; "
            f"the answer is incomplete",
            provider=provider, model=model, status=None, retryable=True,
        )
    in_band = isinstance(error, sdk.APIError) and not (
        isinstance(error, sdk.APIStatusError) and error.status_code >= 400)
    if in_band:
        # An error event inside a 200 stream (Anthropic's ``event: error``, OpenAI's
        # ``data: {"error": ...}``): the SDKs raise it with the stream's status, 200.
        kind, message = _error_event(error.body)
        return ProviderError(
            f"{where}: the server reported an error mid-stream after {count} chunks: "
            f"{kind or 'error'}: {message or type(error).__name__}",
            provider=provider, model=model, status=None, retryable=kind not in _FINAL_ERRORS,
        )
    return map_sdk_error(error, sdk, provider=provider, model=model, timeout=idle,
                         key_variable=key_variable)


_FINAL_ERRORS = frozenset({"invalid_request_error", "authentication_error", "permission_error",
                           "not_found_error"})
"""Error types a retry cannot fix; any other error event (overloaded, server error) can be."""


def _error_event(body: object) -> tuple[str, str]:
    """(type, message) of an error event's body, in either vendor's shape."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            return str(inner.get("type") or ""), str(inner.get("message") or "")[:200]
    return "", ""
