"""Counting a request's input tokens before sending it (previews, cost estimates).

OpenAI models are counted with ``tiktoken`` (``pip install 'orchnb[tokens]'``) when its BPE
file can be had: tiktoken downloads it on first use and caches it (``TIKTOKEN_CACHE_DIR``), so
an offline machine without that cache gets the estimate instead. Loading is tried once per
encoding and process, in a worker thread given :data:`TIKTOKEN_LOAD_SECONDS`: a network that
swallows packets cannot hang a preview. Every other model, and sim models (whose reported usage
*is* this estimate), get :func:`estimate_tokens`'s four characters a token.
Counting never raises.

The same estimate stands in for the usage a provider did not report (:func:`complete_usage`):
llama.cpp's server and other OpenAI-compatible ones send none, and unknown is not zero.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._types import Message, ModelRequest, ToolCall, ToolSpec, Usage

if TYPE_CHECKING:  # _provider imports the sim provider, which imports this module
    from ._provider import Model

TIKTOKEN_LOAD_SECONDS = 5.0
"""How long loading one tiktoken encoding (perhaps downloading it) may take before the count
falls back to the estimate for the rest of the process."""

ESTIMATE = "estimate"
"""The ``method`` of a count made with four characters a token (plus 3 a message)."""

_PER_MESSAGE = 3  # OpenAI's chat format: each message adds about 3 tokens of framing
_encodings: dict[str, Any] = {}  # name -> Encoding, or the str reason it could not load
_lock = threading.Lock()


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate: about four characters a token.

    >>> estimate_tokens("abcdefgh")
    2
    """
    return (len(text) + 3) // 4


def _estimate(texts: Sequence[str], tool_text: Sequence[str]) -> int:
    chars = sum(len(t) for t in texts) + sum(len(t) for t in tool_text)
    return (chars + 3) // 4 + _PER_MESSAGE * len(texts)


def _tool_text(tools: Sequence[ToolSpec]) -> list[str]:
    return [json.dumps({"name": t.name, "description": t.description,
                        "parameters": t.parameters}) for t in tools]


def complete_usage(reported: Usage | None, request: ModelRequest | None, text: str,
                   tool_calls: Sequence[ToolCall] = ()) -> Usage:
    """``reported`` when it has the counts, else with the missing ones estimated (flagged).

    A count is missing when the provider sent no usage, or sent 0 where a call cannot cost 0
    (input always; output when there is a reply). Input is estimated from ``request``'s
    messages and tool definitions, output from ``text`` and ``tool_calls``.

    >>> u = complete_usage(None, ModelRequest([Message("user", "abcdefgh")]), "abcd")
    >>> u.input_tokens, u.output_tokens, u.estimated
    (5, 1, True)
    >>> u = complete_usage(Usage(7, 2), None, "abcd")
    >>> u.input_tokens, u.output_tokens, u.estimated
    (7, 2, False)
    """
    usage = reported if reported is not None else Usage()
    missing_in = usage.input_tokens <= 0
    missing_out = usage.output_tokens <= 0 and bool(text or tool_calls)
    if not (missing_in or missing_out):
        return usage
    if missing_in:
        inp = 0 if request is None else _estimate(
            [_message_text(m) for m in request.messages], _tool_text(request.tools))
        usage = replace(usage, input_tokens=inp)
    if missing_out:
        calls = "".join(c.name + json.dumps(c.arguments, default=str) for c in tool_calls)
        usage = replace(usage, output_tokens=estimate_tokens(text + calls))
    return replace(usage, estimated=True)


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Input tokens of one request and how they were counted.

    >>> from orchnb.models import Message, count_tokens, resolve_model
    >>> count_tokens(resolve_model("sim:echo"), [Message("user", "abcdefgh")])
    TokenCount(tokens=5, method='estimate', note='')
    """

    tokens: int
    method: str
    """``"tiktoken:<encoding>"`` (exact for OpenAI models) or ``"estimate"``."""
    note: str = ""
    """Why the estimate was used where tiktoken was wanted (e.g. its encodings are offline)."""

    @property
    def exact(self) -> bool:
        return self.method != ESTIMATE


def count_tokens(model: Model, messages: Sequence[Message],
                 tools: Sequence[ToolSpec] = ()) -> TokenCount:
    """The input tokens ``messages`` (and ``tools`` definitions) would cost on ``model``.

    The estimate is the sim provider's own rule, so a preview of a sim pipeline matches the
    usage its runs report.
    """
    texts = [_message_text(m) for m in messages]
    if model.simulated:  # the sim provider's usage leaves tool definitions out
        tools = ()
    tool_text = _tool_text(tools)
    encoding, note = _encoding_for(model)
    if encoding is not None:
        try:
            n = sum(len(encoding.encode(t, disallowed_special=())) + _PER_MESSAGE
                    for t in texts)
            n += sum(len(encoding.encode(t, disallowed_special=())) for t in tool_text)
            return TokenCount(n + _PER_MESSAGE, f"tiktoken:{encoding.name}")
        except Exception as e:  # a tokenizer bug must not break a preview
            note = f"tiktoken failed ({type(e).__name__}); estimated instead"
    return TokenCount(_estimate(texts, tool_text), ESTIMATE, note)


def _message_text(m: Message) -> str:
    text = m.content or ""
    for call in m.tool_calls:
        text += f"{call.name}{json.dumps(call.arguments, default=str)}"
    return text


def _encoding_for(model: Model) -> tuple[Any, str]:
    """(tiktoken encoding or None, why not) for a model."""
    if model.simulated or model.provider_name != "openai":
        return None, ""
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None, "tiktoken is not installed (pip install 'orchnb[tokens]'); estimated"
    try:
        name = encoding_name_for_model(model.name)
    except KeyError:
        return None, f"tiktoken does not know '{model.name}'; estimated"
    loaded = _load(tiktoken, name)
    if isinstance(loaded, str):
        return None, loaded
    return loaded, ""


def _load(tiktoken: Any, name: str) -> Any:
    with _lock:
        if name in _encodings:
            return _encodings[name]
    box: dict[str, Any] = {}

    def load() -> None:
        try:
            box["enc"] = tiktoken.get_encoding(name)
        except Exception as e:
            box["err"] = e

    worker = threading.Thread(target=load, name=f"orchnb-tiktoken-{name}", daemon=True)
    worker.start()
    worker.join(TIKTOKEN_LOAD_SECONDS)
    if "enc" in box:
        result: Any = box["enc"]
    elif "err" in box:
        result = (f"tiktoken's '{name}' file could not be loaded (offline? it is downloaded "
                  f"on first use and cached in TIKTOKEN_CACHE_DIR); estimated")
    else:
        result = (f"loading tiktoken's '{name}' took over {TIKTOKEN_LOAD_SECONDS:g} s "
                  f"(offline?); estimated")
    with _lock:
        _encodings[name] = result
    return result
