"""The two wire formats the fake server speaks: OpenAI chat completions and Anthropic messages.

Pure functions from parsed JSON bodies to :class:`FakeRequest` and from a :class:`FakeReply` to
vendor-shaped JSON, plus each vendor's error shape. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..models import estimate_tokens
from ._wire_usage import anthropic_usage, tier_field

Api = Literal["openai", "anthropic"]

EMBEDDING_DIM = 64

# Status → (OpenAI error type, Anthropic error type, message).
_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "Bad request."),
    401: ("invalid_request_error", "authentication_error", "Missing or invalid API key."),
    403: ("permission_error", "permission_error", "Permission denied."),
    404: ("invalid_request_error", "not_found_error", "Not found."),
    408: ("timeout", "timeout_error", "Request timed out."),
    409: ("conflict", "api_error", "Conflict."),
    422: ("invalid_request_error", "invalid_request_error", "Unprocessable entity."),
    429: ("rate_limit_exceeded", "rate_limit_error", "Rate limit reached; retry later."),
    500: ("server_error", "api_error", "Internal server error."),
    503: ("server_error", "overloaded_error", "The server is overloaded; retry later."),
    529: ("server_error", "overloaded_error", "Overloaded."),
}


@dataclass(slots=True)
class FakeRequest:
    """One request the fake server received, for assertions in tests.

    >>> r = FakeRequest(api="openai", model="m", messages=[{"role": "user", "content": "hi"}])
    >>> r.last_user
    'hi'
    """

    api: Api
    """Which wire format it came in: ``"openai"`` or ``"anthropic"``."""
    model: str = ""
    """The ``model`` field of the body."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Normalised messages: ``role`` (system/user/assistant/tool) and text ``content``; assistant
    messages carry ``tool_calls`` ([{id, name, arguments}]), tool results ``tool_call_id``.
    Anthropic's ``system=`` parameter becomes a leading system message and each ``tool_result``
    block one ``tool`` message, so both formats normalise alike."""
    tools: list[str] = field(default_factory=list)
    """Names of the tools offered."""
    body: dict[str, Any] = field(default_factory=dict)
    """The raw JSON body."""
    path: str = ""
    """The request path, e.g. ``/v1/chat/completions``."""
    headers: dict[str, str] = field(default_factory=dict)
    """Request headers, lower-cased names; credentials are redacted."""
    fault: str | None = None
    """The fault injected into the answer (``"429"``, ``"drop"``...), None for a normal one."""
    chunk_times: list[float] = field(default_factory=list)
    """For a streamed answer: ``time.perf_counter()`` just before each chunk was sent."""
    output_schema: dict[str, Any] | None = None
    """The JSON schema the answer was asked to fit (structured output), None if none."""
    output_name: str | None = None
    """The schema's name: OpenAI's ``json_schema.name`` or the forced Anthropic tool's."""
    output_via: str | None = None
    """How it was asked: ``"response_format"`` (OpenAI), ``"tool_choice"`` (Anthropic forced
    tool use) or ``"output_config"`` (Anthropic structured outputs)."""
    received: float = 0.0
    """``time.perf_counter()`` when the request arrived (soaks check retry spacing with it)."""
    retry_after: float | None = None
    """The Retry-After the server answered with (429/503 faults), None otherwise."""

    @property
    def last_user(self) -> str:
        """The text of the last user message ('' if none)."""
        for m in reversed(self.messages):
            if m["role"] == "user":
                return m["content"]
        return ""


@dataclass(slots=True)
class FakeReply:
    """A scripted answer: text and/or tool calls, with optional token counts.

    Token counts are normalised like :class:`orchnb.models.Usage`: ``input_tokens`` includes
    ``cached_tokens`` (on the Anthropic wire the cached part goes to
    ``cache_read_input_tokens``). Left as None they are estimated from the text.

    >>> FakeReply(tool_calls=[("add", {"a": 1, "b": 2})]).finish_reason is None
    True
    """

    text: str = ""
    data: Any = None
    """A structured answer (a dict, list...): sent as the JSON content (OpenAI
    ``response_format``, Anthropic ``output_config``) or as the input of the answer tool
    (Anthropic forced ``tool_choice``); as JSON text when no schema was asked for."""
    tool_calls: Sequence[tuple[str, dict[str, Any] | str]] = ()
    """``(name, arguments)`` pairs; a ``str`` is sent verbatim as OpenAI's arguments string
    (to test malformed JSON)."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache (Anthropic), part of ``input_tokens`` like cached."""
    cache_write_1h_tokens: int = 0
    service_tier: str | None = None
    """OpenAI: the ``service_tier`` to report having served at."""
    finish_reason: str | None = None
    """Overrides the default (``stop``/``end_turn``, or ``tool_calls``/``tool_use``)."""
    model: str | None = None
    """Model id to report (default: the requested one)."""


def _text_of(content: Any) -> str:
    """Text of a content field that is a string or a list of typed blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, str):
                parts.append(block)
        return "".join(parts)
    return str(content)


def _loads_or_raw(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def parse_openai(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Normalise an OpenAI chat completions body to (messages, tool names)."""
    messages: list[dict[str, Any]] = []
    for m in body.get("messages") or []:
        role = m.get("role", "user")
        out: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text_of(m.get("content")),
        }
        if m.get("tool_calls"):
            out["tool_calls"] = [
                {
                    "id": c.get("id"),
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": _loads_or_raw((c.get("function") or {}).get("arguments")),
                }
                for c in m["tool_calls"]
            ]
        if m.get("tool_call_id"):
            out["tool_call_id"] = m["tool_call_id"]
        messages.append(out)
    tools = [(t.get("function") or {}).get("name", "") for t in body.get("tools") or []]
    return messages, tools


def parse_anthropic(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Normalise an Anthropic messages body to (messages, tool names)."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text_of(body["system"])})
    for m in body.get("messages") or []:
        content = m.get("content")
        blocks = content if isinstance(content, list) else []
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        uses = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        for b in results:
            messages.append(
                {
                    "role": "tool",
                    "content": _text_of(b.get("content")),
                    "tool_call_id": b.get("tool_use_id"),
                }
            )
        text = _text_of(content)
        if results and not text:
            continue
        out: dict[str, Any] = {"role": m.get("role", "user"), "content": text}
        if uses:
            out["tool_calls"] = [
                {"id": b.get("id"), "name": b.get("name"), "arguments": b.get("input") or {}}
                for b in uses
            ]
        messages.append(out)
    tools = [t.get("name", "") for t in body.get("tools") or []]
    return messages, tools


def asked_output(body: dict[str, Any], api: Api) -> tuple[dict[str, Any] | None, str | None,
                                                          str | None]:
    """(schema, name, how) of the structured output a request body asks for."""
    if api == "openai":
        fmt = body.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            return spec.get("schema"), spec.get("name"), "response_format"
        return None, None, None
    config = (body.get("output_config") or {}).get("format") or {}
    if isinstance(config, dict) and config.get("type") == "json_schema":
        return config.get("schema"), None, "output_config"
    choice = body.get("tool_choice") or {}
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    name = choice.get("name") if choice.get("type") == "tool" else (
        tools[-1].get("name") if choice.get("type") == "any" and tools else None)
    for t in tools:
        if name is not None and t.get("name") == name:
            return t.get("input_schema"), name, "tool_choice"
    return None, None, None


def structured(req: FakeRequest, reply: FakeReply) -> FakeReply:
    """``reply`` with its ``data`` put where ``req`` asked for it: JSON text, or the input of
    the forced Anthropic tool (with ``tool_choice: any``, the last tool offered)."""
    if reply.data is None:
        return reply
    if req.output_via == "tool_choice" and req.output_name:
        schema = req.output_schema or {}
        wrapped = (set(schema.get("properties") or {}) == {"value"}
                   and not isinstance(reply.data, dict))
        data = {"value": reply.data} if wrapped else reply.data
        return replace(reply, text="", data=None, tool_calls=[(req.output_name, data)])
    return replace(reply, text=json.dumps(reply.data), data=None)


def _usage(req: FakeRequest, reply: FakeReply) -> tuple[int, int, int]:
    if reply.input_tokens is not None:
        inp = reply.input_tokens
    else:  # at least what the cache read and wrote (its estimate counts the tools too)
        inp = max(sum(estimate_tokens(m["content"]) + 4 for m in req.messages) + 3,
                  reply.cached_tokens + reply.cache_write_tokens)
    if reply.output_tokens is not None:
        out = reply.output_tokens
    else:
        args = "".join(a if isinstance(a, str) else json.dumps(a) for _, a in reply.tool_calls)
        out = estimate_tokens(reply.text) + estimate_tokens(args) + 1
    return inp, out, min(reply.cached_tokens, inp)


def openai_completion(req: FakeRequest, reply: FakeReply, n: int, *,
                      usage: bool = True) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object answering ``req`` with ``reply``; ``n`` numbers ids.
    ``usage=False`` leaves the ``usage`` field out (as some compatible servers do)."""
    calls = [
        {
            "id": f"call_fake_{n}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": a if isinstance(a, str) else json.dumps(a)},
        }
        for i, (name, a) in enumerate(reply.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if calls:
        message["tool_calls"] = calls
    inp, out, cached = _usage(req, reply)
    answer: dict[str, Any] = {**tier_field(reply.service_tier),
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": reply.model or req.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason":
                     reply.finish_reason or ("tool_calls" if calls else "stop")}],
    }
    if usage:
        answer["usage"] = {"prompt_tokens": inp, "completion_tokens": out,
                           "total_tokens": inp + out,
                           "prompt_tokens_details": {"cached_tokens": cached}}
    return answer


def anthropic_message(req: FakeRequest, reply: FakeReply, n: int, *,
                      usage: bool = True) -> dict[str, Any]:
    """An Anthropic ``message`` object answering ``req`` with ``reply``; ``n`` numbers ids.
    ``usage=False`` leaves the ``usage`` field out."""
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, (name, a) in enumerate(reply.tool_calls):
        tool_input = _loads_or_raw(a)
        content.append({"type": "tool_use", "id": f"toolu_fake_{n}_{i}", "name": name,
                        "input": tool_input})
    inp, out, cached = _usage(req, reply)
    stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
    message: dict[str, Any] = {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": reply.model or req.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
    }
    if usage:  # Anthropic reports cache reads apart from (not inside) input_tokens
        message["usage"] = {**anthropic_usage(inp, cached, reply), "output_tokens": out}
    return message



@dataclass(slots=True)
class StreamFrames:
    """A streamed answer as SSE frames, and where its ending starts.

    ``frames[final:]`` are the frames a complete stream needs at its end (OpenAI: the chunk
    with ``finish_reason``, the usage chunk, ``[DONE]``; Anthropic: ``message_stop``); a
    stream cut or truncated before ``final`` lacks its final event.
    """

    frames: list[bytes]
    final: int


def _pieces(text: str) -> list[str]:
    """Word-sized pieces that concatenate back to ``text``."""
    return re.findall(r"^\s+|\S+\s*", text)


def _fragments(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i:i + size] for i in range(0, len(arguments), size)] or [""]


def _arguments(a: dict[str, Any] | str) -> str:
    return a if isinstance(a, str) else json.dumps(a)


def _sse(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"{head}data: {data}\n\n".encode()


def openai_stream(req: FakeRequest, reply: FakeReply, n: int, *,
                  usage: bool = True) -> StreamFrames:
    """``chat.completion.chunk`` SSE frames answering ``req`` with ``reply``.

    Text comes word by word, each tool call as a first chunk (id, name) and then its
    arguments in fragments; then the ``finish_reason`` chunk, the usage chunk when the body
    asked for ``stream_options.include_usage`` (and ``usage`` is True: llama.cpp's server
    sends none even when asked), and ``data: [DONE]``.
    """
    include_usage = usage and bool(
        (req.body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {"id": f"chatcmpl-fake-{n}", "object": "chat.completion.chunk",
                            "created": 1_700_000_000, "model": reply.model or req.model,
                            **tier_field(reply.service_tier)}
    if include_usage:
        base["usage"] = None  # as the API does: null on every chunk but the last

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                          "logprobs": None}]})

    frames = [chunk({"role": "assistant", "content": ""})]
    frames += [chunk({"content": piece}) for piece in _pieces(reply.text)]
    for i, (name, a) in enumerate(reply.tool_calls):
        frames.append(chunk({"tool_calls": [{"index": i, "id": f"call_fake_{n}_{i}",
                                             "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        frames += [chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
                   for frag in _fragments(_arguments(a))]
    final = len(frames)
    frames.append(chunk({}, reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")))
    if include_usage:
        inp, out, cached = _usage(req, reply)
        frames.append(_sse({**base, "choices": [], "usage": {
            "prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out,
            "prompt_tokens_details": {"cached_tokens": cached}}}))
    frames.append(_sse("[DONE]"))
    return StreamFrames(frames, final)


def anthropic_stream(req: FakeRequest, reply: FakeReply, n: int, *,
                     usage: bool = True) -> StreamFrames:
    """Messages SSE events answering ``req`` with ``reply``: ``message_start`` (input usage),
    a text block of ``text_delta``s, a ``tool_use`` block of ``input_json_delta``s per tool call,
    ``message_delta`` (stop reason, output usage), ``message_stop``. ``usage=False`` leaves
    both usages out."""
    inp, out, cached = _usage(req, reply)
    start: dict[str, Any] = {
        "id": f"msg_fake_{n}", "type": "message", "role": "assistant",
        "model": reply.model or req.model, "content": [], "stop_reason": None,
        "stop_sequence": None}
    if usage:
        start["usage"] = {**anthropic_usage(inp, cached, reply), "output_tokens": 1}
    frames = [_sse({"type": "message_start", "message": start}, "message_start")]
    index = 0
    if reply.text:
        frames.append(_sse({"type": "content_block_start", "index": index,
                            "content_block": {"type": "text", "text": ""}}, "content_block_start"))
        frames += [_sse({"type": "content_block_delta", "index": index,
                         "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
                   for piece in _pieces(reply.text)]
        frames.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1
    for i, (name, a) in enumerate(reply.tool_calls):
        frames.append(_sse({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": f"toolu_fake_{n}_{i}", "name": name, "input": {}}},
            "content_block_start"))
        frames += [_sse({"type": "content_block_delta", "index": index,
                         "delta": {"type": "input_json_delta", "partial_json": frag}},
                        "content_block_delta")
                   for frag in _fragments(_arguments(a))]
        frames.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1
    stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
    delta: dict[str, Any] = {"type": "message_delta",
                             "delta": {"stop_reason": stop, "stop_sequence": None}}
    if usage:
        delta["usage"] = {"output_tokens": out}
    frames.append(_sse(delta, "message_delta"))
    final = len(frames)
    frames.append(_sse({"type": "message_stop"}, "message_stop"))
    return StreamFrames(frames, final)


def stream_error_frame(api: Api, status: int = 529) -> bytes:
    """The error event a vendor sends inside a 200 stream (Anthropic: ``event: error``)."""
    body = error_body(api, status)
    if api == "anthropic":
        return _sse(body, "error")
    return _sse(body)


def embedding_vector(text: str, seed: int = 0) -> list[float]:
    """A deterministic unit vector of :data:`EMBEDDING_DIM` floats derived from a hash of ``text``.

    >>> len(embedding_vector("hi")) == EMBEDDING_DIM
    True
    """
    raw = b""
    counter = 0
    while len(raw) < EMBEDDING_DIM * 4:
        raw += hashlib.sha256(f"{seed}:{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{EMBEDDING_DIM}I", raw[: EMBEDDING_DIM * 4])
    vec = [i / 2**31 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 6) for v in vec]


def openai_embeddings(body: dict[str, Any], seed: int) -> dict[str, Any]:
    """An OpenAI embeddings list for the ``input`` of ``body``."""
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
    tokens = sum(estimate_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": embedding_vector(t, seed)}
            for i, t in enumerate(texts)
        ],
        "model": body.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def openai_models(names: Sequence[str]) -> dict[str, Any]:
    """An OpenAI models list."""
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": 1_700_000_000, "owned_by": "orchnb-fake"}
            for n in names
        ],
    }


def error_body(api: Api, status: int, message: str | None = None) -> dict[str, Any]:
    """The vendor's error JSON for an HTTP ``status``.

    >>> error_body("anthropic", 429)["error"]["type"]
    'rate_limit_error'
    """
    fallback = ("server_error" if status >= 500 else "invalid_request_error", "api_error", "Error.")
    oa_type, an_type, default = _ERRORS.get(status, fallback)
    msg = message or default
    if api == "anthropic":
        return {"type": "error", "error": {"type": an_type, "message": msg}}
    return {"error": {"message": msg, "type": oa_type, "param": None, "code": oa_type}}
