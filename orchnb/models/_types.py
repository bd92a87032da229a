"""Typed messages, requests and responses exchanged between the engine and providers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, declared on the provider (``provider.capabilities``).

    The engine and the patterns read these instead of probing the provider. A provider
    registered without a ``capabilities`` attribute gets ``Capabilities()``: everything False,
    the safe reading (the engine enforces timeouts itself, never streams to it, agents use
    text-mode tools, it cannot embed).

    >>> Capabilities(tools=True, streaming=True).embeddings
    False
    """

    tools: bool = False
    """Native tool calling (``ModelRequest.tools`` are sent to the model as tools)."""
    streaming: bool = False
    """``request(..., on_delta=fn)`` streams: ``fn`` gets each chunk of text as it arrives."""
    structured_output: bool = False
    """The vendor constrains the answer to ``ModelRequest.output_schema`` (OpenAI
    ``response_format``, Anthropic forced tool use); without it the answer is asked for in the
    prompt and parsed."""
    embeddings: bool = False
    """``async embed(model, texts, *, timeout=None) -> (vectors, Usage)`` exists."""
    enforces_timeout: bool = False
    """``request`` honours ``ModelRequest.timeout`` itself, so the engine adds no timer."""
    service_tiers: bool = False
    """``ModelRequest.service_tier`` is sent to the vendor (OpenAI's ``service_tier``)."""
    prompt_cache: bool = False
    """``ModelRequest.cache_prompt`` is acted on (Anthropic ``cache_control``, OpenAI
    ``prompt_cache_key``); elsewhere it is a no-op."""


@dataclass(slots=True)
class ToolCall:
    """A model's request to call a tool.

    >>> ToolCall(id="call_1", name="add", arguments={"a": 1, "b": 2}).name
    'add'
    """

    id: str
    """Provider-assigned id, echoed back in the tool result message."""
    name: str
    """Tool name as registered."""
    arguments: dict[str, Any]
    """Parsed JSON arguments (not yet validated against the tool's schema)."""


@dataclass(slots=True)
class Message:
    """One chat message in provider-neutral form.

    >>> Message("user", "hi").content
    'hi'
    """

    role: Role
    """system, user, assistant (may carry tool_calls) or tool (a tool's result)."""
    content: str = ""
    """Text content."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Tool calls requested by an assistant message."""
    tool_call_id: str | None = None
    """For role='tool': the id of the call this message answers."""
    name: str | None = None
    """For role='tool': the tool's name."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (used for the cache key and the trace)."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ]
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.name:
            d["name"] = self.name
        return d


@dataclass(slots=True)
class ToolSpec:
    """What a model is told about a tool: name, description and JSON schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class Usage:
    """Token usage of one call, normalised across providers.

    >>> Usage(10, 2).total_tokens
    12
    """

    input_tokens: int = 0
    """Prompt tokens, cached ones included."""
    output_tokens: int = 0
    """Completion tokens."""
    cached_tokens: int = 0
    """Prompt tokens served from the provider's prompt cache."""
    estimated: bool = False
    """True when the counts are estimates, not the provider's figures: simulated models, and
    calls whose provider reported no usage (estimated from the text)."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's prompt cache (5-minute and 1-hour writes);
    part of ``input_tokens``."""
    cache_write_1h_tokens: int = 0
    """The part of ``cache_write_tokens`` written with the 1-hour lifetime."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ModelRequest:
    """Everything a provider needs for one call."""

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    """Per-attempt timeout in seconds: the whole call, a streamed one included."""
    idle_timeout: float | None = None
    """Streamed calls only: the longest wait for the next chunk (None: ``timeout``)."""
    output_schema: dict[str, Any] | None = None
    """A JSON schema the answer must fit: a provider with ``capabilities.structured_output``
    constrains the answer to it and returns it as JSON text in ``ModelResponse.text``."""
    output_name: str = "output"
    """The schema's name (OpenAI's ``json_schema.name``, Anthropic's answer tool)."""
    cache_prompt: str | None = None
    """Prompt caching asked for (``"5m"`` or ``"1h"``; None: off): Anthropic marks the stable
    prefix (system prompt, tools, earlier turns) with ``cache_control``; OpenAI caches
    prefixes by itself and gets a ``prompt_cache_key`` to route alike prompts together."""
    service_tier: str | None = None
    """The provider's service tier to ask for (OpenAI ``flex``, ``priority``, ``auto``,
    ``default``); None: the provider's default."""


@dataclass(slots=True)
class ModelResponse:
    """A provider's answer in provider-neutral form."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    """The model id the provider reports having used."""
    finish_reason: str | None = None
    simulated: bool = False
    """True for sim: models; shown wherever the response shows up."""
    service_tier: str | None = None
    """The service tier the provider reports having served the call at (priced at its rate)."""


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """One piece of a streamed answer, passed to ``on_delta`` as it arrives.

    ``kind="text"`` pieces concatenate to the response's text; ``kind="tool_call"`` pieces
    are fragments of the JSON arguments of tool call ``tool`` (useful to show progress, not
    to parse: the final :class:`ModelResponse` carries the assembled calls).

    >>> StreamDelta("Hel").kind
    'text'
    """

    text: str
    """The new text (or, for ``kind="tool_call"``, the new fragment of JSON arguments)."""
    kind: Literal["text", "tool_call"] = "text"
    tool: str | None = None
    """For ``kind="tool_call"``: the name of the tool being called."""


OnDelta = Callable[[StreamDelta], None]
"""The callback a streaming ``Provider.request`` calls once per chunk, in order."""
