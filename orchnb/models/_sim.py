"""``sim:`` models: offline, deterministic stand-ins for playgrounds, tests and benchmarks.

A sim model answers from (in order) a Python function, a script of replies, keyword/regex rules,
then a default. Unregistered ``sim:NAME`` models echo the gist of the last user message. Token
counts are estimated (about 4 characters a token) and every response is marked simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from ..exceptions import CallTimeoutError, SpecError, UnknownModelError
from ._types import Capabilities, ModelRequest, ModelResponse, OnDelta, StreamDelta, ToolCall, Usage

Reply = str | ModelResponse | Mapping[str, Any]
"""A sim reply: text, a full ModelResponse, ``{"tool": name, "args": {...}}`` for a tool call,
or ``{"json": value}`` for an answer that is ``value`` as JSON text (structured output)."""

_REGISTRY: dict[str, SimModel] = {}
_BUILTIN = frozenset({"echo", "gist"})
"""Sim models that need no registering: echo answers the last message, gist its first sentence."""
_call_ids = count(1)


@dataclass
class SimModel:
    """An offline model answering by rules, a script or a function, registered as ``sim:NAME``.

    >>> triage = SimModel("triage", rules={"refund|money back": "billing"}, default="technical")
    >>> _ = triage.register()      # now usable as model "sim:triage"

    ``latency`` is seconds (a number, or ``(low, high)`` for a deterministic spread);
    ``priced_as`` (e.g. ``"openai:gpt-4o-mini"``) reports cost as if that model had answered,
    labelled simulated, so cost charts mean something offline.
    """

    name: str
    rules: Mapping[str, Reply] | Sequence[tuple[str, Reply]] | None = None
    """Regex (case-insensitive) → reply, tried in order against the last user message."""
    replies: Sequence[Reply] | None = None
    """Scripted replies used in order, one per call; afterwards rules/default apply."""
    fn: Callable[[ModelRequest], Reply] | None = None
    """Called with the request; its return value is the reply."""
    default: Reply | None = None
    """Reply when nothing else matched (None: echo the gist of the last user message)."""
    latency: float | tuple[float, float] = 0.0
    priced_as: str | None = None
    _script_pos: int = field(default=0, init=False, repr=False)
    _compiled: list[tuple[re.Pattern[str], Reply]] = field(
        default_factory=list, init=False, repr=False
    )

    def __post_init__(self) -> None:
        where = f"sim model {self.name!r}"
        if not isinstance(self.name, str) or not re.fullmatch(r"[\w.\-]+", self.name):
            raise SpecError(f"{where}: the name must be letters, digits, '_', '.' or '-' "
                            "(it is used as 'sim:NAME')", key="name")
        lat = self.latency
        lows = lat if isinstance(lat, tuple) else (lat,)
        if (not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0
                    for x in lows) or len(lows) not in (1, 2)
                or (len(lows) == 2 and lows[0] > lows[1])):
            raise SpecError(f"{where}: latency must be seconds >= 0, or (low, high) with "
                            f"0 <= low <= high, not {lat!r}", key="latency")
        if self.fn is not None and not callable(self.fn):
            raise SpecError(f"{where}: fn must be a function of the request, not {self.fn!r}",
                            key="fn")
        if self.replies is not None and isinstance(self.replies, (str, bytes)):
            raise SpecError(f"{where}: replies must be a list of replies, not one string",
                            key="replies")
        if self.priced_as is not None and not re.match(r"^[a-z][a-z0-9_\-]*:\S+$",
                                                       str(self.priced_as)):
            raise SpecError(f"sim model '{self.name}': priced_as must be a 'provider:model' "
                            f"string such as 'openai:gpt-4o-mini', got {self.priced_as!r}",
                            key="priced_as")
        items = self.rules.items() if isinstance(self.rules, Mapping) else (self.rules or [])
        self._compiled = []
        for pat, reply in items:
            try:
                self._compiled.append((re.compile(pat, re.IGNORECASE), reply))
            except (re.error, TypeError) as e:
                raise SpecError(f"{where}: rule {pat!r} is not a valid regular expression "
                                f"({e})", key="rules") from None

    def register(self) -> SimModel:
        """Make this model available as ``sim:NAME`` (replacing an earlier one)."""
        _REGISTRY[self.name] = self
        return self

    def reset(self) -> None:
        """Restart the script from its first reply."""
        self._script_pos = 0

    def delay(self, request: ModelRequest) -> float:
        if isinstance(self.latency, (int, float)):
            return float(self.latency)
        low, high = self.latency
        digest = hashlib.blake2b(_last_user(request).encode(), digest_size=2).digest()
        return low + (high - low) * int.from_bytes(digest, "big") / 65535

    def answer(self, request: ModelRequest) -> Reply:
        if self.fn is not None:
            return self.fn(request)
        if self.replies is not None and self._script_pos < len(self.replies):
            self._script_pos += 1
            return self.replies[self._script_pos - 1]
        text = _last_user(request)
        for pattern, reply in self._compiled:
            if pattern.search(text):
                return reply
        if self.default is not None:
            return self.default
        return _gist(self.name, text)


def sim_model(name: str, **options: Any) -> SimModel:
    """Define and register a sim model in one call; returns it.

    >>> m = sim_model("yes", default="yes")
    >>> m.name
    'yes'
    """
    return SimModel(name, **options).register()


def get_sim_model(name: str) -> SimModel | None:
    """The registered sim model called ``name``, if any."""
    return _REGISTRY.get(name)


def _last_user(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.role in ("user", "tool"):
            return message.content
    return ""


def _gist(name: str, text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    words = first.split()
    gist = " ".join(words[:30]) + (" …" if len(words) > 30 else "")
    return f"[sim:{name}] {gist}"


def _to_response(reply: Reply, request: ModelRequest, model: str) -> ModelResponse:
    if reply.__class__ is str:  # the common reply, tested first (Mapping is an ABC check)
        return _text_response(reply, request, model)  # type: ignore[arg-type]
    if isinstance(reply, ModelResponse):
        reply.simulated = True
        return reply
    tool_calls: list[ToolCall] = []
    if isinstance(reply, Mapping):
        text = (json.dumps(reply["json"], ensure_ascii=False) if "json" in reply
                else str(reply.get("text", "")))
        if "tool" in reply:
            tool_calls.append(
                ToolCall(f"sim_call_{next(_call_ids)}", str(reply["tool"]),
                         dict(reply.get("args", {})))
            )
    else:
        text = str(reply)
    prompt_chars = 0
    for m in request.messages:
        prompt_chars += len(m.content)
    out_chars = len(text)
    for c in tool_calls:
        out_chars += len(str(c.arguments)) + len(c.name)
    usage = Usage((prompt_chars + 3) // 4 + 3 * len(request.messages), (out_chars + 3) // 4,
                  estimated=True)
    return ModelResponse(
        text=text,
        tool_calls=tool_calls,
        usage=usage,
        model=model,
        finish_reason="tool_calls" if tool_calls else "stop",
        simulated=True,
    )


def _text_response(text: str, request: ModelRequest, model: str) -> ModelResponse:
    """``_to_response`` of a plain text reply (the same counts, without the checks)."""
    prompt_chars = 0
    for m in request.messages:
        prompt_chars += len(m.content)
    usage = Usage((prompt_chars + 3) // 4 + 3 * len(request.messages), (len(text) + 3) // 4,
                  0, True)
    return ModelResponse(text, [], usage, model, "stop", True)


def _pieces(response: ModelResponse) -> list[StreamDelta]:
    """The deltas a sim answer streams as: its text word by word, then each tool call whole."""
    deltas = [StreamDelta(w) for w in re.findall(r"^\s+|\S+\s*", response.text)]
    deltas += [StreamDelta(json.dumps(c.arguments), "tool_call", c.name)
               for c in response.tool_calls]
    return deltas


class SimProvider:
    """The ``sim`` provider: resolves ``sim:NAME`` to a registered :class:`SimModel`.

    With ``on_delta`` it streams its text in word-sized deltas, its configured latency
    spread over them, so offline pipelines stream like real ones.

    >>> import asyncio
    >>> from orchnb.models import Message, ModelRequest
    >>> r = asyncio.run(SimProvider().request("echo", ModelRequest([Message("user", "hi")])))
    >>> r.text, r.simulated
    ('hi', True)
    """

    name = "sim"
    simulated = True
    capabilities = Capabilities(tools=True, streaming=True, structured_output=False,
                                embeddings=False, enforces_timeout=True)

    def check(self, model: str) -> None:
        """Raise :class:`UnknownModelError` for a sim name nobody registered (a typo)."""
        if model not in _BUILTIN and model not in _REGISTRY:
            known = ", ".join(sorted({*_BUILTIN, *_REGISTRY}))
            raise UnknownModelError(
                f"sim:{model} is not a registered sim model; registered: {known}. Define it "
                f"with orchnb.sim_model({model!r}, rules=..., default=...) or fix the name")

    async def request(
        self, model: str, request: ModelRequest, on_delta: OnDelta | None = None
    ) -> ModelResponse:
        sim = _REGISTRY.get(model)
        delay = 0.0
        if sim is not None and sim.latency != 0:
            delay = sim.delay(request)
            if request.timeout is not None and delay > request.timeout:
                # Known before answering, so a timed-out call leaves a script where it was.
                await asyncio.sleep(request.timeout)
                raise CallTimeoutError(f"sim:{model} did not answer within {request.timeout:g}s")
        response = self._respond(model, request, sim)
        deltas = _pieces(response) if on_delta is not None else []
        if on_delta is None or not deltas:
            if delay > 0:
                await asyncio.sleep(delay)
            return response
        step = delay / len(deltas)  # the latency, spread over the stream
        for delta in deltas:
            if step > 0:
                await asyncio.sleep(step)
            on_delta(delta)
        return response

    def answer_now(self, model: str, request: ModelRequest) -> ModelResponse | None:
        """The answer, when it takes no time (no latency; not streamed): the engine takes it
        without awaiting a request. None: ``request`` it (it waits)."""
        sim = _REGISTRY.get(model)
        if sim is not None and sim.latency != 0:
            return None
        return self._respond(model, request, sim)

    def _respond(self, model: str, request: ModelRequest, sim: SimModel | None
                 ) -> ModelResponse:
        if sim is None:
            self.check(model)
            text = _last_user(request)
            reply: Reply = text if model == "echo" else _gist(model, text)
        else:
            reply = sim.fn(request) if sim.fn is not None else sim.answer(request)
        if reply.__class__ is str:  # the common reply: _text_response, written out
            prompt_chars = 0
            for m in request.messages:
                prompt_chars += len(m.content)
            usage = Usage((prompt_chars + 3) // 4 + 3 * len(request.messages),
                          (len(reply) + 3) // 4, 0, True)  # type: ignore[arg-type]
            return ModelResponse(reply, [], usage, model, "stop", True)  # type: ignore[arg-type]
        return _to_response(reply, request, model)

    def priced_as(self, model: str) -> str | None:
        """The real model whose price a sim model borrows, if any."""
        sim = _REGISTRY.get(model)
        return sim.priced_as if sim else None

    def __repr__(self) -> str:
        return "SimProvider(simulated)"
