"""What the OpenAI and Anthropic providers share: loop-bound SDK clients and error mapping.

Both SDKs (Stainless-generated) raise the same family of exceptions (``APIStatusError``,
``APIConnectionError``, ``APITimeoutError``...), so one mapping to :class:`ProviderError` serves
both. Nothing here imports an SDK: the SDK module is passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Hashable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from ..exceptions import CallTimeoutError, ProviderError
from ._redact import refresh_secrets, remember_client_secrets, scrub_exception, scrub_secrets

C = TypeVar("C")

# 408/409 are transient on both APIs (request timeout, lock contention); 429 and 5xx likewise.
_RETRYABLE = frozenset({408, 409, 429})


class LoopClients(Generic[C]):
    """One SDK client per running event loop, made by ``factory`` on first use in that loop.

    An httpx client's connection pool is bound to the loop it was first used on, and pipelines
    run on several loops (the kernel's, a background thread's, each ``asyncio.run``), so a
    single shared client would fail with "Event loop is closed". Each client is closed when its
    loop shuts down through ``asyncio.run`` (or ``loop.shutdown_asyncgens()``); clients of loops
    closed some other way are dropped. When this object is dropped (its provider replaced), each
    client is closed on its own loop the next time that loop runs, never by the garbage collector.

    >>> clients = LoopClients(lambda: object())
    >>> async def same():
    ...     return await clients.get() is await clients.get()
    >>> asyncio.run(same())
    True

    ``identity()`` (optional) says which configuration a client was made for (base URL and
    key, read from the environment at each call): when it changes, as when a user sets
    ``OPENAI_BASE_URL`` in a running kernel, the next call gets a new client.
    """

    def __init__(self, factory: Callable[[], C],
                 identity: Callable[[], Hashable] | None = None):
        self._factory = factory
        self._identity = identity
        self._lock = threading.Lock()
        self._clients: dict[int, _Entry[C]] = {}
        # A provider and its LoopClients form a cycle (the factory is a bound method), so a
        # dropped provider is freed by the cyclic GC, at any moment and on any thread. Left to
        # it, the GC would finalize the client's pooled transports (closing their sockets, so
        # the fd numbers are reused by new connections) and, in the same pass, schedule the
        # client's close (the SDK's __del__, our closer), whose abort of those transports then
        # unregisters the reused fd numbers from the loop: a newer connection on that loop never
        # sees its answer. The finalizer holds the clients, so they never become garbage, and
        # closes each one on its own loop while its sockets are still open.
        fin = weakref.finalize(self, _close_dropped, self._clients)
        fin.atexit = False

    async def get(self) -> C:
        """The client for the running loop."""
        loop = asyncio.get_running_loop()
        identity = self._identity() if self._identity is not None else None
        entry = self._clients.get(id(loop))
        if entry is not None and entry.loop() is loop:
            if entry.identity == identity:
                return entry.client
            # The configuration changed: the old client is closed once its calls are done
            # (a task on this loop), the next calls use a new one.
            del self._clients[id(loop)]
            _start_close(loop, entry.closer)
        with self._lock:
            self._prune()
            client = self._factory()
        remember_client_secrets(client)  # whatever the wire echoes of this key is scrubbed
        closer = _close_at_shutdown(client)
        # Starting the generator registers it with the loop, whose shutdown_asyncgens() (run by
        # asyncio.run) then closes it, closing the client while the loop can still run it. The
        # generator yields at once, so no other task can slip in before the entry is stored.
        await closer.__anext__()
        self._clients[id(loop)] = _Entry(weakref.ref(loop), client, closer, identity)
        return client

    async def aclose(self) -> None:
        """Close and forget the running loop's client, if any."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(id(loop), None)
        if entry is not None and entry.loop() is loop:
            await entry.closer.aclose()

    def __len__(self) -> int:
        return len(self._clients)

    def _prune(self) -> None:
        for key, entry in list(self._clients.items()):
            loop = entry.loop()
            if loop is None or loop.is_closed():
                del self._clients[key]


@dataclass(slots=True)
class _Entry(Generic[C]):
    loop: weakref.ref[asyncio.AbstractEventLoop]
    client: C
    closer: AsyncGenerator[None, None]
    identity: Hashable = None


def _close_dropped(clients: dict[int, _Entry[Any]]) -> None:
    """Close the clients of a dropped :class:`LoopClients`, each on its own loop (thread-safe:
    this runs wherever the garbage collector or the last reference drop happens)."""
    for entry in list(clients.values()):
        loop = entry.loop()
        if loop is None or loop.is_closed():
            continue  # closed with its loop (asyncio.run), or its transports died with it
        with contextlib.suppress(RuntimeError):  # closed meanwhile by its own thread
            loop.call_soon_threadsafe(_start_close, loop, entry.closer)
    clients.clear()


def _start_close(loop: asyncio.AbstractEventLoop, closer: AsyncGenerator[None, None]) -> None:
    # The task holds the closer (and so the client) until the close is done.
    task = loop.create_task(closer.aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()


async def _close_at_shutdown(client: Any) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            # A failure to close (the peer is gone) must not disturb the loop's shutdown.
            with contextlib.suppress(Exception):
                await close()


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's retry hint in seconds from ``retry-after-ms`` or ``retry-after``.

    ``retry-after`` may be seconds (fractions allowed) or an HTTP date.

    >>> retry_after_seconds({"retry-after": "0.5"})
    0.5
    >>> retry_after_seconds({"retry-after-ms": "250", "retry-after": "1"})
    0.25
    """
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _api_message(body: object) -> str:
    """The human message inside either vendor's error body (``{"error": {"message": ...}}``)."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            msg = inner.get("message")
            kind = inner.get("type")
            if msg:
                return f"{kind}: {msg}" if kind else str(msg)
    if isinstance(body, str) and body:
        return body[:200]
    return ""


def _hint(status: int, key_variable: str) -> str:
    if status == 401:
        return f" Check the key in {key_variable}."
    if status == 404:
        return " Check the model name and the base URL."
    if status == 429:
        return " Rate limited: lower the pipeline's concurrency= or allow more retries."
    if status >= 500:
        return " The provider failed: try again later (the engine already retried)."
    return ""


def map_sdk_error(
    error: Exception,
    sdk: ModuleType,
    *,
    provider: str,
    model: str,
    timeout: float | None,
    key_variable: str,
    url: str | None = None,
) -> Exception:
    """Translate an exception raised by an SDK call into orchnb's error tree.

    Timeouts become :class:`CallTimeoutError`; HTTP errors, connection errors and malformed
    bodies become :class:`ProviderError` with ``status``, ``retryable`` and ``retry_after``.
    Messages are built from the status and the error body only, never from request headers,
    and the body is scrubbed of every known key and key-shaped string first (servers echo
    them), as is ``error`` itself, which stays chained. Anything unrecognised is returned
    unchanged. ``url``, the server's base URL, is named in the message (which server a
    refused connection or a 404 came from).
    """
    if isinstance(error, sdk.APIError):
        refresh_secrets()
        scrub_exception(error)
    where = f"{provider}:{model}" + (f" at {url}" if url else "")
    if isinstance(error, sdk.APITimeoutError):
        within = f" within {timeout:g}s" if timeout is not None else ""
        return CallTimeoutError(f"{where} did not answer{within}; allow more with timeout= "
                                f"on the pipeline or orchnb.configure(timeout=...)")
    if isinstance(error, sdk.APIStatusError):
        return _status_error(error, where, provider, model, key_variable)
    if isinstance(error, sdk.APIConnectionError):
        cause = error.__cause__
        reason = f" ({type(cause).__name__})" if cause is not None else ""
        return ProviderError(
            f"{where}: connection failed{reason}; the server closed or refused the "
            f"connection. Is it running at that URL (base_url=, or the SDK's *_BASE_URL)?",
            provider=provider, model=model, status=None, retryable=True,
        )
    if isinstance(error, UnicodeDecodeError):
        # The SDKs decode a body (or an SSE line) before parsing it and let this escape. A
        # corrupted body is a transport fault, retried like a malformed one.
        return ProviderError(
            f"{where}: the server answered with bytes that are not valid UTF-8 (byte "
            f"{error.object[error.start:error.start + 1]!r} at offset {error.start}): a "
            f"corrupted body (a proxy or the server mangled it)",
            provider=provider, model=model, status=None, retryable=True,
        )
    if isinstance(error, (json.JSONDecodeError, sdk.APIResponseValidationError)):
        # The SDKs let a body that is not JSON escape as a bare JSONDecodeError.
        return ProviderError(
            f"{where}: the server answered with a malformed body ({error})",
            provider=provider, model=model, status=None, retryable=True,
        )
    if isinstance(error, sdk.APIError):
        return ProviderError(f"{where}: {scrub_secrets(str(error))}", provider=provider,
                             model=model)
    return error


def _status_error(error: Any, where: str, provider: str, model: str,
                  key_variable: str) -> ProviderError:
    """An HTTP error status as a ProviderError (retryable for 429/5xx, with Retry-After)."""
    status = int(error.status_code)
    retryable = status in _RETRYABLE or status >= 500
    after = retry_after_seconds(getattr(error.response, "headers", None))
    detail = _api_message(error.body) or error.__class__.__name__
    wait = f" (retry after {after:g}s)" if after is not None else ""
    return ProviderError(
        f"{where}: HTTP {status} {detail}{wait}.{_hint(status, key_variable)}",
        provider=provider, model=model, status=status, retryable=retryable,
        retry_after=after,
    )


def malformed_answer(provider: str, model: str, error: Exception) -> ProviderError:
    """The error for a 2xx answer whose body does not have the API's shape.

    >>> malformed_answer("openai", "m", AttributeError("no attribute 'message'")).retryable
    True
    """
    return ProviderError(
        f"{provider}:{model}: the server answered 200 with a body that is not a valid answer "
        f"({type(error).__name__}: {scrub_secrets(str(error))[:200]}); is base_url an "
        f"OpenAI/Anthropic-compatible endpoint?",
        provider=provider, model=model, status=None, retryable=True)


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict: JSON text is parsed, anything unparsable kept as ``_raw``.

    >>> parse_arguments('{"a": 1}')
    {'a': 1}
    >>> parse_arguments('{"a": ')
    {'_raw': '{"a": '}
    """
    if isinstance(raw, Mapping):
        return dict(raw)
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError, RecursionError):  # RecursionError: hostile nesting
        return {"_raw": str(raw)}
    return value if isinstance(value, dict) else {"_raw": str(raw)}


_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 200  # deeper than any request body an API takes; left as is past it


def wire_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` (request parameters) with every lone surrogate replaced by U+FFFD.

    The SDKs encode a body as UTF-8, which a lone surrogate cannot be: a reply holding one
    (``"\\ud800"`` in its JSON), put into the next prompt, would crash the call with a raw
    ``UnicodeEncodeError``. Dicts and lists are copied, only strings with a surrogate rebuilt.

    >>> wire_safe({"messages": [{"content": "a\\ud800b"}]})
    {'messages': [{'content': 'a\ufffdb'}]}
    """
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode()  # C speed; a regex scan of non-ASCII text is 10x slower
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", value)
        return value
    if _depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {wire_safe(k, _depth): wire_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire_safe(v, _depth + 1) for v in value]
    return value
