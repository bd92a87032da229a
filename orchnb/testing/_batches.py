"""The two batch APIs the fake server speaks: OpenAI's Files + Batches and Anthropic's Message
Batches, as the real SDKs call them.

A batch is answered when it is created (the fake is the server: its script and responder answer
each request) but shows its results only once it has run ``delay`` seconds (None: until
:meth:`BatchDesk.finish`); meanwhile its request counts grow with the elapsed time, so progress
bars move. ``fail_when`` scripts per-request outcomes (errored, expired, canceled). Batches live
in the :class:`FakeProvider`, so a new client (a restarted kernel) finds them again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._http import HttpRequest, HttpResponse
from ._wire import (
    Api,
    FakeRequest,
    anthropic_message,
    error_body,
    openai_completion,
    parse_anthropic,
    parse_openai,
)

if TYPE_CHECKING:
    from ._fake_server import FakeProvider

BATCH_PATHS = ("/v1/files", "/v1/batches", "/v1/messages/batches")
"""Paths the batch desk answers (before the chat routes)."""
ROUTES = {
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/v1/models"),
    ("POST", "/v1/messages"),
}
"""The fake's chat, embeddings and models routes."""
_MAX_LINES = 100_000
_OUTCOMES = ("errored", "expired", "canceled")
_Rule = tuple[Callable[[FakeRequest], bool], str, int, str]


def authorised(api: Api, headers: Mapping[str, str]) -> bool:
    """Whether the request carries a credential the vendor would look at."""
    bearer = headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bool(bearer[7:].strip())
    if api == "anthropic":
        # Anthropic takes x-api-key, or a bearer token from the SDK's auth_token option.
        return bool(headers.get("x-api-key", "").strip()) or has_bearer
    return has_bearer


def _json(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(payload).encode())


@dataclass(slots=True)
class FakeBatch:
    """One submitted batch: its requests and the outcome of each (hidden until it ends)."""

    id: str
    api: Api
    created: float
    requests: list[tuple[str, FakeRequest]]
    outcomes: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """custom_id → (``succeeded``/``errored``/``expired``/``canceled``, body)."""
    input_file_id: str | None = None
    ended_at: float | None = None
    cancelled: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchDesk:
    """The batch endpoints of one :class:`FakeProvider` (``fake.batches``).

    >>> desk = BatchDesk(None)
    >>> desk.delay, desk.creates
    (0.0, 0)
    """

    def __init__(self, fake: FakeProvider | None):
        self.fake = fake
        self.delay: float | None = 0.0
        """Seconds a batch runs before it ends; None: until :meth:`finish`."""
        self.creates = 0
        """Batches created so far (both APIs)."""
        self.batches: dict[str, FakeBatch] = {}
        self.files: dict[str, bytes] = {}
        self.polls = 0
        """Batch retrievals so far (both APIs)."""
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._n = 0

    # -- behaviour ----------------------------------------------------------------------------
    def fail_when(self, match: Callable[[FakeRequest], bool], outcome: str = "errored", *,
                  status: int = 500, message: str = "fake batch failure") -> BatchDesk:
        """Requests for which ``match(request)`` is true end ``outcome`` (``errored``,
        ``expired`` or ``canceled``; an error with ``status`` and ``message``)."""
        if outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(_OUTCOMES)}, not {outcome!r}")
        self._rules.append((match, outcome, status, message))
        return self

    def finish(self) -> None:
        """End every running batch now."""
        now = time.time()
        with self._lock:
            for b in self.batches.values():
                if b.ended_at is None:
                    self._end(b, now)

    def reset(self) -> None:
        """Forget batches, files, rules and counts."""
        with self._lock:
            self.batches.clear()
            self.files.clear()
            self._rules.clear()
            self.creates = self.polls = 0

    # -- serving --------------------------------------------------------------------------------
    def handle(self, api: Api, http: HttpRequest) -> HttpResponse:
        """Answer one request to a batch or file endpoint."""
        parts = http.path.rstrip("/").split("/")[2:]  # after /v1
        try:
            if parts[0] == "files":
                return self._files(http, parts[1:])
            if parts[0] == "messages":
                return self._anthropic(http, parts[2:])
            return self._openai(http, parts[1:])
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return _json(400, error_body(api, 400, f"bad batch request: {e}"))

    def _next_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:06d}"

    def _files(self, http: HttpRequest, rest: list[str]) -> HttpResponse:
        if http.method == "POST" and not rest:
            data, name = _multipart_file(http)
            with self._lock:
                fid = self._next_id("file-fake")
                self.files[fid] = data
            return _json(200, _file_object(fid, name, len(data)))
        fid = rest[0]
        if fid not in self.files:
            return _json(404, error_body("openai", 404, f"no file {fid}"))
        if rest[1:] == ["content"]:
            return HttpResponse(200, self.files[fid], content_type="application/octet-stream")
        return _json(200, _file_object(fid, "batch.jsonl", len(self.files[fid])))

    def _openai(self, http: HttpRequest, rest: list[str]) -> HttpResponse:
        if http.method == "POST" and not rest:
            body = json.loads(http.body)
            lines = self.files[body["input_file_id"]].decode().splitlines()[:_MAX_LINES]
            requests = []
            for line in filter(None, lines):
                item = json.loads(line)
                requests.append((str(item["custom_id"]), _request("openai", item["body"])))
            b = self._create("openai", requests, "batch_fake")
            b.input_file_id = body["input_file_id"]
            return _json(200, self._openai_view(b))
        b = self.batches.get(rest[0]) if rest else None
        if b is None or b.api != "openai":
            return _json(404, error_body("openai", 404, "no such batch"))
        if rest[1:] == ["cancel"]:
            self._cancel(b)
        return _json(200, self._openai_view(b))

    def _anthropic(self, http: HttpRequest, rest: list[str]) -> HttpResponse:
        if http.method == "POST" and not rest:
            body = json.loads(http.body)
            requests = [(str(r["custom_id"]), _request("anthropic", r["params"]))
                        for r in body["requests"][:_MAX_LINES]]
            return _json(200, self._anthropic_view(self._create("anthropic", requests,
                                                                "msgbatch_fake")))
        b = self.batches.get(rest[0]) if rest else None
        if b is None or b.api != "anthropic":
            return _json(404, error_body("anthropic", 404, "no such batch"))
        if rest[1:] == ["cancel"]:
            self._cancel(b)
        elif rest[1:] == ["results"]:
            if self._state(b) is None:
                return _json(400, error_body("anthropic", 400, "batch has not ended"))
            lines = [json.dumps({"custom_id": cid, "result": _anthropic_result(*b.outcomes[cid])})
                     for cid, _ in b.requests]
            return HttpResponse(200, "\n".join(lines).encode() + b"\n",
                                content_type="application/binary")
        return _json(200, self._anthropic_view(b))

    def _create(self, api: Api, requests: list[tuple[str, FakeRequest]], prefix: str
                ) -> FakeBatch:
        fake = self.fake
        assert fake is not None
        with self._lock:
            b = FakeBatch(self._next_id(prefix), api, time.time(), requests)
            self.creates += 1
        for i, (cid, req) in enumerate(requests):  # answered now, shown when the batch ends
            b.outcomes[cid] = self._outcome(api, req, i)
        with self._lock:
            self.batches[b.id] = b
        return b

    def _outcome(self, api: Api, req: FakeRequest, i: int) -> tuple[str, Any]:
        for match, outcome, status, message in self._rules:
            if match(req):
                return outcome, (status, message)
        fake = self.fake
        assert fake is not None
        make = anthropic_message if api == "anthropic" else openai_completion
        return "succeeded", make(req, fake._reply_for(req), i, usage=fake.send_usage)

    def _state(self, b: FakeBatch) -> float | None:
        """When ``b`` ended (ending it if its time has come), None while it runs."""
        with self._lock:
            self.polls += 1
            if (b.ended_at is None and self.delay is not None
                    and time.time() - b.created >= self.delay):
                self._end(b, b.created + self.delay)
            return b.ended_at

    def _end(self, b: FakeBatch, at: float) -> None:
        b.ended_at = at
        if b.api != "openai":
            return
        ok, bad = [], []
        for n, (cid, _) in enumerate(b.requests):
            kind, body = b.outcomes[cid]
            line = _openai_line(b.id, n, cid, kind, body)
            (ok if kind == "succeeded" else bad).append(json.dumps(line))
        for lines, attr in ((ok, "output_file_id"), (bad, "error_file_id")):
            if lines:
                fid = self._next_id("file-fake")
                self.files[fid] = ("\n".join(lines) + "\n").encode()
                setattr(b, attr, fid)

    def _cancel(self, b: FakeBatch) -> None:
        if self._state(b) is not None:
            return
        done = self._done(b, time.time())
        with self._lock:
            for cid, _ in b.requests[done:]:
                b.outcomes[cid] = ("canceled", (0, "batch cancelled"))
            b.cancelled = True
            self._end(b, time.time())

    def _done(self, b: FakeBatch, now: float) -> int:
        """How many of ``b``'s requests have been processed by ``now``."""
        if b.ended_at is not None:
            return len(b.requests)
        if not self.delay:
            return 0
        return min(len(b.requests), int(len(b.requests) * (now - b.created) / self.delay))

    def _counts(self, b: FakeBatch) -> dict[str, int]:
        done = self._done(b, time.time())
        counts = dict.fromkeys(("succeeded", *_OUTCOMES), 0)
        for cid, _ in b.requests[:done]:
            counts[b.outcomes[cid][0]] += 1
        counts["processing"] = len(b.requests) - done
        return counts

    def _openai_view(self, b: FakeBatch) -> dict[str, Any]:
        ended = self._state(b)
        c = self._counts(b)
        status = ("in_progress" if ended is None else "cancelled" if b.cancelled
                  else "completed")
        return {
            "id": b.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
            "input_file_id": b.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": b.output_file_id, "error_file_id": b.error_file_id,
            "created_at": int(b.created), "completed_at": None if ended is None else int(ended),
            "request_counts": {"total": len(b.requests), "completed": c["succeeded"],
                               "failed": len(b.requests) - c["processing"] - c["succeeded"]},
            "metadata": None,
        }

    def _anthropic_view(self, b: FakeBatch) -> dict[str, Any]:
        ended = self._state(b)
        fake = self.fake
        base = fake.anthropic_base_url if fake is not None else ""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.created))
        return {
            "id": b.id, "type": "message_batch",
            "processing_status": "in_progress" if ended is None else "ended",
            "request_counts": {k: v for k, v in self._counts(b).items()},
            "created_at": stamp, "expires_at": stamp, "archived_at": None,
            "cancel_initiated_at": stamp if b.cancelled else None,
            "ended_at": None if ended is None else stamp,
            "results_url": None if ended is None else
            f"{base}/v1/messages/batches/{b.id}/results",
        }


def _request(api: Api, body: dict[str, Any]) -> FakeRequest:
    messages, tools = parse_anthropic(body) if api == "anthropic" else parse_openai(body)
    return FakeRequest(api=api, model=str(body.get("model", "")), messages=messages,
                       tools=tools, body=body, received=time.perf_counter())


def _file_object(fid: str, name: str, size: int) -> dict[str, Any]:
    return {"id": fid, "object": "file", "bytes": size, "created_at": int(time.time()),
            "filename": name, "purpose": "batch", "status": "processed"}


def _openai_line(batch_id: str, n: int, cid: str, kind: str, body: Any) -> dict[str, Any]:
    rid = f"{batch_id}_req_{n}"
    if kind == "succeeded":
        return {"id": rid, "custom_id": cid, "error": None,
                "response": {"status_code": 200, "request_id": rid, "body": body}}
    if kind == "errored":
        status, message = body
        return {"id": rid, "custom_id": cid, "error": None,
                "response": {"status_code": status, "request_id": rid,
                             "body": error_body("openai", status, message)}}
    code = "batch_expired" if kind == "expired" else "batch_cancelled"
    return {"id": rid, "custom_id": cid, "response": None,
            "error": {"code": code, "message": f"request {kind}"}}


def _anthropic_result(kind: str, body: Any) -> dict[str, Any]:
    if kind == "succeeded":
        return {"type": "succeeded", "message": body}
    if kind == "errored":
        return {"type": "errored", "error": error_body("anthropic", body[0], body[1])}
    return {"type": kind}


def _multipart_file(http: HttpRequest) -> tuple[bytes, str]:
    """The ``file`` part of a multipart/form-data body and its file name (one linear split)."""
    ctype = http.headers.get("content-type", "")
    boundary = ctype.partition("boundary=")[2].strip('"')
    if not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    for part in http.body.split(b"--" + boundary.encode()):
        head, sep, data = part.partition(b"\r\n\r\n")
        if sep and b'name="file"' in head:
            name = head.partition(b'filename="')[2].partition(b'"')[0].decode() or "file"
            return data[:-2] if data.endswith(b"\r\n") else data, name
    raise ValueError("no file part in the upload")
