"""Preview: which part of a prompt a provider can cache, and its size against the minimum.

The stable prefix is what calls repeat: the system prompt, the tool list and the turns before
the newest user turn (:func:`orchnb.models.stable_count`). Anthropic caches it only when asked
(``cache_prompt``) and only from its model's minimum (1024, 2048 or 4096 tokens); OpenAI caches
any prefix of 1024 tokens or more by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Message, Model, ToolSpec, count_tokens, min_cacheable, stable_count


@dataclass(frozen=True)
class CacheView:
    """The cacheable prefix of one call as the preview shows it."""

    part: str
    """What the prefix holds, e.g. ``system + 3 tools + 2 earlier turns``; empty: nothing."""
    tokens: int
    minimum: int
    """The provider's shortest cached prefix for the model."""
    note: str


def cache_view(model: Model, messages: Sequence[Message], tools: Sequence[ToolSpec],
               cache_prompt: str | None) -> CacheView | None:
    """The cacheable prefix of a call to ``model``; None for a provider with no prompt cache."""
    minimum = min_cacheable(model.provider_name, model.name)
    if minimum is None:
        return None
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    earlier = rest[:stable_count(list(messages))]
    parts = (["system"] if system else []) + ([_n(len(tools), "tool")] if tools else []) + (
        [_n(len(earlier), "earlier turn")] if earlier else [])
    tokens = count_tokens(model, [*system, *earlier], tools).tokens if parts else 0
    return CacheView(" + ".join(parts), tokens, minimum,
                     _note(model.provider_name, tokens, minimum, bool(parts), cache_prompt))


def _n(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _note(provider: str, tokens: int, minimum: int, any_part: bool,
          cache_prompt: str | None) -> str:
    if not any_part:
        return "cache: no stable prefix (system prompt, tools or earlier turns) to cache"
    size = f"cacheable prefix {tokens:,} tokens, {provider} minimum {minimum:,}"
    if tokens < minimum:
        return f"cache: {size}: too short, not cached"
    if provider == "anthropic" and cache_prompt is None:
        return f"cache: {size}: set cache_prompt=True to cache it"
    ttl = " for 1 h" if cache_prompt == "1h" else ""
    return f"cache: {size}: cached{ttl} from the second call"
