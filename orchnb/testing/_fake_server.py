"""``FakeProvider``: a loopback server that speaks the OpenAI and Anthropic wire formats.

Tests and benchmarks point the real SDKs at it (``base_url``) instead of mocking them. It answers
from a script, a responder function or a deterministic default, and injects faults (429 with
``Retry-After``, 500, 503, hangs, malformed bodies, dropped connections, streams cut or ended
early) on demand or at seeded random rates. ``stream=true`` requests are answered in each
vendor's server-sent events, chunk by chunk. The server runs on its own event loop in a daemon
thread, so synchronous tests and any number of ``asyncio.run`` calls can share one instance.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import SpecError
from ._batches import BATCH_PATHS, ROUTES, BatchDesk, authorised
from ._hostile import corrupt, corrupt_frames
from ._http import HttpRequest, HttpResponse, HttpServer
from ._prompt_cache import FakePromptCache
from ._wire import (
    Api,
    FakeReply,
    FakeRequest,
    StreamFrames,
    anthropic_message,
    anthropic_stream,
    asked_output,
    error_body,
    openai_completion,
    openai_embeddings,
    openai_models,
    openai_stream,
    parse_anthropic,
    parse_openai,
    stream_error_frame,
    structured,
)

FAULT_KINDS = ("429", "500", "503", "timeout", "malformed", "drop", "cut", "truncate",
               "stream_error", "bad_utf8")
"""Named faults; any other HTTP error status as a string ("400", "401", "529"...) works too.

``cut`` drops the connection after ``cut_after`` chunks of a streamed answer, ``truncate``
ends the stream cleanly there, ``stream_error`` sends the vendor's in-stream error event there
(overloaded) and ends; all stop before the stream's final event (OpenAI's ``finish_reason``
chunk, Anthropic's ``message_stop``). On a plain request ``cut`` drops the connection halfway
through the body, ``truncate`` sends half the body as if complete and ``stream_error`` is a
529. ``"200"`` with ``body=`` answers 200 with that body (a "compatible" server's wrong shape).
``bad_utf8`` is the normal answer with bytes that are not UTF-8 in its body (streamed: in chunk
``cut_after``, the chunks before it intact)."""

Latency = float | tuple[float, float] | Callable[[FakeRequest], float]
Responder = Callable[[FakeRequest], "str | FakeReply | dict[str, Any] | list[Any]"]

_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-haiku-4-5")
_SECRET_HEADERS = ("authorization", "x-api-key", "api-key")
_MALFORMED = b'{"id": "fake", "object": "chat.completion", "choices": [{"message": '


@dataclass(slots=True)
class _Fault:
    kind: str
    retry_after: float | None = None
    hang: float | None = None
    cut_after: int | None = None
    body: str | Mapping[str, Any] | None = None


def _check_seconds(what: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise SpecError(f"FakeProvider({what}=...) must be a number >= 0, not {value!r}")


def _check_kind(kind: str) -> str:
    kind = str(kind)
    if kind in FAULT_KINDS or (kind.isdigit() and (400 <= int(kind) <= 599 or kind == "200")):
        return kind
    raise SpecError(
        f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)} or an HTTP error status"
    )


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode(), headers or {})


class FakeProvider:
    """A fake OpenAI + Anthropic API on ``127.0.0.1`` for tests, notebooks and benchmarks.

    >>> from openai import OpenAI                          # doctest: +SKIP
    >>> with FakeProvider() as fake:                       # doctest: +SKIP
    ...     fake.script(["hello"])
    ...     client = OpenAI(base_url=fake.openai_base_url, api_key="sk-fake")
    ...     client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    ``latency`` is seconds per answer: a number, a ``(low, high)`` range drawn with ``seed``, or a
    function of the :class:`FakeRequest`. ``hang`` is how long a ``"timeout"`` fault stalls before
    answering; ``retry_after`` the default ``Retry-After`` of a 429 or 503. A streamed answer
    (``stream=true``) starts after ``latency`` and waits ``chunk_delay`` seconds between chunks;
    ``cut_after`` is how many chunks a ``"cut"`` or ``"truncate"`` fault lets through.
    ``send_usage=False`` (an attribute too) answers without token usage as llama.cpp's server
    does: no usage field, no usage chunk even when a stream asks for one.
    """

    def __init__(
        self,
        *,
        latency: Latency = 0.0,
        seed: int = 0,
        port: int = 0,
        hang: float = 30.0,
        retry_after: float = 1.0,
        chunk_delay: float = 0.0,
        cut_after: int = 2,
        send_usage: bool = True,
    ):
        for what, value in (("hang", hang), ("retry_after", retry_after),
                            ("chunk_delay", chunk_delay), ("cut_after", cut_after)):
            _check_seconds(what, value)
        if not callable(latency):
            for x in latency if isinstance(latency, tuple) else (latency,):
                _check_seconds("latency", x)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise SpecError(f"FakeProvider(port=...) must be 0 (any free port) to 65535, "
                            f"not {port!r}")
        self.latency = latency
        self.seed = seed
        self.hang = hang
        self.retry_after = retry_after
        self.chunk_delay = chunk_delay
        self.cut_after = cut_after
        self.send_usage = send_usage
        self.responder: Responder | None = None
        """Answers when the script is empty: ``fn(request) -> str | FakeReply``."""
        self.prompt_cache = FakePromptCache()  # cache reads/writes as each provider counts them
        self.port = port
        self._lock = threading.Lock()
        self._script: deque[Any] = deque()
        self._pending: deque[_Fault] = deque()
        self._rates: dict[str, float] = {}
        self._requests: list[FakeRequest] = []
        self._rng = random.Random(seed)
        self._counter = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HttpServer | None = None
        self.batches = BatchDesk(self)
        """The batch APIs (OpenAI Files + Batches, Anthropic Message Batches): ``.delay``,
        ``.fail_when(...)``, ``.creates``; batches outlive any client, as on a real server."""

    def finish_batches(self) -> None:
        """End every running batch now (with ``batches.delay = None`` they wait for this)."""
        self.batches.finish()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeProvider:
        """Start serving in a daemon thread (idempotent); returns self."""
        if self._thread is not None:
            return self
        # The socket is opened on the server's own thread: the caller may already be running an
        # event loop (a Jupyter cell), where run_until_complete is not allowed.
        loop = asyncio.new_event_loop()
        server = HttpServer(self._handle, "127.0.0.1", self.port)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        thread = threading.Thread(target=self._serve, args=(loop, server, started),
                                  name="orchnb-fake-server", daemon=True)
        thread.start()
        try:
            started.result(30)
        except BaseException:
            thread.join(5)
            raise
        self._loop, self._server, self.port, self._thread = loop, server, server.port, thread
        return self

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, server: HttpServer,
               started: concurrent.futures.Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as e:
            loop.close()
            started.set_exception(e)
            return
        started.set_result(None)
        loop.run_forever()

    def stop(self) -> None:
        """Stop serving, cutting open connections (idempotent)."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()
            self._loop = self._server = self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self._thread else "stopped"
        return f"FakeProvider({state}, requests={len(self._requests)})"

    # -- addresses ------------------------------------------------------------------------------
    @property
    def openai_base_url(self) -> str:
        """Base URL for ``OpenAI(base_url=...)``, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for ``Anthropic(base_url=...)``, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point both SDKs here with dummy keys.

        >>> sorted(FakeProvider().env())
        ['ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'OPENAI_API_KEY', 'OPENAI_BASE_URL']
        """
        return {"OPENAI_BASE_URL": self.openai_base_url, "OPENAI_API_KEY": "sk-fake",
                "ANTHROPIC_BASE_URL": self.anthropic_base_url,
                "ANTHROPIC_API_KEY": "sk-ant-fake"}

    # -- behaviour ------------------------------------------------------------------------------
    def script(self, replies: Iterable[str | FakeReply | dict[str, Any] | list[Any]]
               ) -> FakeProvider:
        """Queue replies, used first-in first-out by chat calls: text, a :class:`FakeReply`,
        or a dict / list: a structured answer (``FakeReply(data=...)``), sent as the JSON
        content or, to Anthropic's forced ``tool_choice``, as the answer tool's input.

        >>> fake = FakeProvider().script(["hi", {"amount": 12.5}])
        """
        with self._lock:
            self._script.extend(replies)
        return self

    def fail_next(
        self,
        n: int,
        kind: str,
        *,
        retry_after: float | None = None,
        hang: float | None = None,
        cut_after: int | None = None,
        body: str | Mapping[str, Any] | None = None,
    ) -> FakeProvider:
        """Answer the next ``n`` requests with fault ``kind`` (see :data:`FAULT_KINDS`).

        ``body`` replaces an HTTP error's vendor JSON: a mapping is sent as JSON, a string as
        ``text/plain`` (what proxies and gateways answer).

        >>> fake = FakeProvider().fail_next(2, "429", retry_after=0.01)
        >>> fake = FakeProvider().fail_next(1, "cut", cut_after=3)   # drop after 3 chunks
        >>> fake = FakeProvider().fail_next(1, "502", body="Bad gateway")
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SpecError(f"fail_next(n=...) must be a whole number >= 1, not {n!r}")
        if cut_after is not None and cut_after < 0:
            raise SpecError(f"cut_after must be ≥ 0 chunks, got {cut_after}")
        for what, value in (("retry_after", retry_after), ("hang", hang)):
            if value is not None:
                _check_seconds(what, value)
        fault = _Fault(_check_kind(kind), retry_after, hang, cut_after, body)
        with self._lock:
            self._pending.extend(fault for _ in range(n))
        return self

    def fault_rates(
        self,
        *,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_503: float = 0.0,
        rate_timeout: float = 0.0,
        rate_malformed: float = 0.0,
        rate_drop: float = 0.0,
        rate_cut: float = 0.0,
        rate_truncate: float = 0.0,
        rate_stream_error: float = 0.0,
        rate_bad_utf8: float = 0.0,
    ) -> FakeProvider:
        """Inject faults at random (seeded) with these probabilities per request."""
        rates = {"429": rate_429, "500": rate_500, "503": rate_503, "timeout": rate_timeout,
                 "malformed": rate_malformed, "drop": rate_drop, "cut": rate_cut,
                 "truncate": rate_truncate, "stream_error": rate_stream_error,
                 "bad_utf8": rate_bad_utf8}
        for kind, rate in rates.items():
            if (not isinstance(rate, (int, float)) or isinstance(rate, bool)
                    or not 0.0 <= rate <= 1.0):
                raise SpecError(f"fault_rates(rate_{kind}=...) must be a probability from 0 "
                                f"to 1, not {rate!r}")
        if sum(rates.values()) > 1.0:
            raise SpecError("fault rates add up to more than 1")
        with self._lock:
            self._rates = {k: v for k, v in rates.items() if v > 0}
        return self

    @property
    def requests(self) -> list[FakeRequest]:
        """Every authorised request received so far (a copy), faulted ones included."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests, script, pending faults, rates, the responder and batches; reseed."""
        with self._lock:
            self._script.clear()
            self._pending.clear()
            self._rates = {}
            self._requests.clear()
            self._rng = random.Random(self.seed)
            self._counter = 0
            self.responder = None
        self.batches.reset()
        self.prompt_cache.clear()

    # -- serving --------------------------------------------------------------------------------
    def _draw_fault(self) -> _Fault | None:
        if self._pending:
            return self._pending.popleft()
        if self._rates:
            x = self._rng.random()
            for kind, rate in self._rates.items():
                if x < rate:
                    return _Fault(kind)
                x -= rate
        return None

    def _delay(self, req: FakeRequest) -> float:
        lat = self.latency
        if callable(lat):
            return float(lat(req))
        if isinstance(lat, tuple):
            with self._lock:
                return self._rng.uniform(*lat)
        return float(lat)

    def _reply_for(self, req: FakeRequest) -> FakeReply:
        with self._lock:
            reply: Any = self._script.popleft() if self._script else None
        if reply is None and self.responder is not None:
            reply = self.responder(req)
        if reply is None:
            reply = f"fake reply to: {req.last_user[:60]}"
        if isinstance(reply, (str, dict, list)):
            reply = FakeReply(text=reply) if isinstance(reply, str) else FakeReply(data=reply)
        return self.prompt_cache.answer(req, structured(req, reply))

    async def _handle(self, http: HttpRequest) -> HttpResponse | None:
        api: Api = "anthropic" if http.path.startswith("/v1/messages") else "openai"
        route = (http.method, http.path.rstrip("/"))
        if http.path.startswith(BATCH_PATHS):
            return (self.batches.handle(api, http) if authorised(api, http.headers)
                    else _json(401, error_body(api, 401)))
        if route not in ROUTES:
            return _json(404, error_body(api, 404, f"no route {http.method} {http.path}"))
        try:
            body = json.loads(http.body) if http.body else {}
        except ValueError:
            return _json(400, error_body(api, 400, "request body is not valid JSON"))
        if not isinstance(body, dict):
            return _json(400, error_body(api, 400, "request body must be a JSON object"))
        if not authorised(api, http.headers):
            return _json(401, error_body(api, 401))

        messages, tools = parse_anthropic(body) if api == "anthropic" else parse_openai(body)
        req = FakeRequest(
            api=api,
            model=str(body.get("model", "")),
            messages=messages,
            tools=tools,
            body=body,
            path=http.path,
            headers={k: ("<redacted>" if k in _SECRET_HEADERS else v)
                     for k, v in http.headers.items()},
            received=time.perf_counter(),
        )
        req.output_schema, req.output_name, req.output_via = asked_output(body, api)
        with self._lock:
            fault = self._draw_fault()
            req.fault = fault.kind if fault else None
            self._requests.append(req)
            self._counter += 1
            n = self._counter

        try:
            if fault is not None and fault.kind == "timeout":
                await asyncio.sleep(self.hang if fault.hang is None else fault.hang)
            else:
                delay = self._delay(req)
                if delay > 0:
                    await asyncio.sleep(delay)
            if fault is not None and fault.kind in ("cut", "truncate", "stream_error"):
                return self._cut(api, route[1], req, n, fault)
            if fault is not None and fault.kind == "bad_utf8":
                return self._answer(api, route[1], req, n, fault)
            if fault is not None and fault.kind != "timeout":
                if fault.kind in ("429", "503", "529"):
                    req.retry_after = (self.retry_after if fault.retry_after is None
                                       else fault.retry_after)
                return self._fault_response(api, fault)
            return self._answer(api, route[1], req, n)
        except Exception as e:  # a broken responder or latency function must show, not hang
            return _json(500, error_body(api, 500, f"fake server: {type(e).__name__}: {e}"))

    def _answer(self, api: Api, path: str, req: FakeRequest, n: int,
                fault: _Fault | None = None) -> HttpResponse:
        """The normal answer; a ``bad_utf8`` ``fault`` corrupts its bytes."""
        if path == "/v1/models":
            answer = _json(200, openai_models(_MODELS))
        elif path == "/v1/embeddings":
            answer = _json(200, openai_embeddings(req.body, self.seed))
        elif req.body.get("stream"):
            frames = self._frames(api, req, self._reply_for(req), n).frames
            if fault is not None:
                at = self.cut_after if fault.cut_after is None else fault.cut_after
                frames = corrupt_frames(frames, at)
            return self._streamed(req, frames)
        else:
            make = anthropic_message if api == "anthropic" else openai_completion
            answer = _json(200, make(req, self._reply_for(req), n, usage=self.send_usage))
        if fault is not None:
            answer.body = corrupt(answer.body)
        return answer

    def _frames(self, api: Api, req: FakeRequest, reply: FakeReply, n: int) -> StreamFrames:
        make = anthropic_stream if api == "anthropic" else openai_stream
        return make(req, reply, n, usage=self.send_usage)

    def _streamed(self, req: FakeRequest, frames: list[bytes],
                  complete: bool = True) -> HttpResponse:
        return HttpResponse(200, stream=self._paced(req, frames), complete=complete,
                            content_type="text/event-stream")

    async def _paced(self, req: FakeRequest, frames: list[bytes]) -> AsyncIterator[bytes]:
        for i, frame in enumerate(frames):
            if i and self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            req.chunk_times.append(time.perf_counter())
            yield frame

    def _cut(self, api: Api, path: str, req: FakeRequest, n: int,
             fault: _Fault) -> HttpResponse | None:
        """A ``cut``, ``truncate`` or ``stream_error`` fault: the answer stops short of its end."""
        complete = fault.kind != "cut"
        if path != "/v1/models" and path != "/v1/embeddings" and req.body.get("stream"):
            frames = self._frames(api, req, self._reply_for(req), n)
            after = self.cut_after if fault.cut_after is None else fault.cut_after
            sent = frames.frames[:min(after, frames.final)]
            if fault.kind == "stream_error":
                sent.append(stream_error_frame(api))
            return self._streamed(req, sent, complete)
        if fault.kind == "stream_error":
            return self._fault_response(api, _Fault("529"))
        full = self._answer(api, path, req, n).body
        half = full[:len(full) // 2]
        if complete:
            return HttpResponse(200, half)
        return self._streamed(req, [half], complete=False)

    def _fault_response(self, api: Api, fault: _Fault) -> HttpResponse | None:
        if fault.kind == "drop":
            return None
        if fault.kind == "malformed":
            return HttpResponse(200, _MALFORMED)
        status = int(fault.kind)
        headers: dict[str, str] = {}
        if status in (429, 503, 529):
            after = self.retry_after if fault.retry_after is None else fault.retry_after
            headers["retry-after"] = f"{after:g}"
            if api == "openai":
                headers["retry-after-ms"] = f"{after * 1000:g}"
        if isinstance(fault.body, str):
            return HttpResponse(status, fault.body.encode(), headers, "text/plain")
        return _json(status, error_body(api, status) if fault.body is None else fault.body,
                     headers)

