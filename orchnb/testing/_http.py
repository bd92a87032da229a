"""A minimal HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked bodies.

Just enough HTTP for the fake model server: no TLS, no pipelining guarantees beyond in-order
answers, no extra dependencies. A handler returning ``None`` drops the connection unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

_MAX_HEAD = 1 << 16
_MAX_BODY = 1 << 26  # 64 MiB: far above any test prompt, low enough to refuse garbage


@dataclass(slots=True)
class HttpRequest:
    """A parsed request: method, path (query string removed), lower-cased headers, body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    """A response to write; ``headers`` are added to Content-Length and Connection."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = None
    """When set, the body instead of ``body``: each item is sent as one chunk (chunked
    transfer encoding) as soon as it is produced."""
    complete: bool = True
    """With ``stream``: False cuts the connection after the last item instead of ending the
    body, as a dropped connection would."""


Handler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Unknown"


def _encode(resp: HttpResponse, keep_alive: bool) -> bytes:
    length = ("Transfer-Encoding: chunked" if resp.stream is not None
              else f"Content-Length: {len(resp.body)}")
    lines = [
        f"HTTP/1.1 {resp.status} {_reason(resp.status)}",
        f"Content-Type: {resp.content_type}",
        length,
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{k}: {v}" for k, v in resp.headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if resp.stream is not None else head + resp.body


async def _write_stream(writer: asyncio.StreamWriter, resp: HttpResponse) -> bool:
    """Send a streamed body chunk by chunk; False when the connection was cut on purpose."""
    assert resp.stream is not None
    async with contextlib.aclosing(resp.stream) as pieces:  # type: ignore[type-var]
        async for piece in pieces:
            if piece:  # an empty chunk would end the body
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
    if not resp.complete:
        writer.transport.abort()
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Trailers (rare) end with an empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > _MAX_BODY:
            raise ValueError("body too large")


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed an idle keep-alive connection
    text = head.decode("latin-1")
    request_line, *header_lines = text.split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        body = await reader.readexactly(length) if length else b""
    return HttpRequest(method.upper(), target.split("?", 1)[0], headers, body)


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0: any free port) until :meth:`close`.

    >>> async def main():
    ...     async def ok(req):
    ...         return HttpResponse(200, b"{}")
    ...     server = await HttpServer(ok).start()
    ...     await server.close()
    >>> asyncio.run(main())
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0):
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> HttpServer:
        """Bind and start accepting; afterwards :attr:`port` is the bound port."""
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=2048, limit=_MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop accepting, cut every open connection and cancel in-flight handlers."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                response = await self.handler(request)
                if response is None:
                    break  # a deliberate drop: close without answering
                keep_alive = request.headers.get("connection", "").lower() != "close"
                writer.write(_encode(response, keep_alive))
                await writer.drain()
                if response.stream is not None and not await _write_stream(writer, response):
                    break
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass  # a broken or hostile client only loses its own connection
        except asyncio.CancelledError:
            # Server shutdown. Swallowed: asyncio's stream callback would log a cancelled task.
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._writers.discard(writer)
            writer.close()
