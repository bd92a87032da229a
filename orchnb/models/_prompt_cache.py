"""Prompt caching: which part of a request is its stable prefix, and how each provider is told.

A step or agent with ``cache_prompt`` asks the provider to cache the prefix its calls share:
the system prompt, the tool list and the turns before the newest one (few-shot examples, an
agent's conversation so far). Anthropic caches only what ``cache_control`` marks (5 minutes,
or 1 hour at a higher write rate); OpenAI caches any prefix of 1024+ tokens by itself, so the
request only needs the stable part first and a ``prompt_cache_key``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..exceptions import SpecError
from ._types import Message, ModelRequest

SERVICE_TIERS = ("auto", "default", "flex", "priority")
"""OpenAI's service tiers a step or run may ask for."""
CACHE_TTLS = ("5m", "1h")
"""Cache lifetimes a ``cache_prompt`` may ask for (``True`` means ``"5m"``)."""
OPENAI_MIN_TOKENS = 1024
"""The shortest prefix OpenAI caches."""
# Anthropic's documented minimum cacheable prompt by model (shorter prefixes are not cached,
# silently): 4096 for Opus 4.5 and Haiku 4.5, 2048 for the Claude 3 Haikus, 1024 otherwise.
_ANTHROPIC_MIN = (("claude-opus-4-5", 4096), ("claude-haiku-4-5", 4096),
                  ("claude-3-5-haiku", 2048), ("claude-3-haiku", 2048))


def cache_ttl(value: Any, where: str = "cache_prompt") -> str | None:
    """``cache_prompt`` as a lifetime: ``True``/``"5m"`` → ``"5m"``, ``"1h"``, off → None.

    >>> cache_ttl(True), cache_ttl("1h"), cache_ttl(False)
    ('5m', '1h', None)
    """
    if value is None or value is False:
        return None
    if value is True:
        return "5m"
    if isinstance(value, str) and value in CACHE_TTLS:
        return value
    raise SpecError(f"{where}: {value!r} is not a cache lifetime; use true (5 minutes), "
                    f"\"5m\" or \"1h\" (or false to turn caching off)")


def check_service_tier(tier: Any, model: Any = None, where: str = "service_tier") -> None:
    """Refuse a tier that is not one of :data:`SERVICE_TIERS`, or ``model`` (a
    :class:`~orchnb.models.Model`) whose provider has no service tiers."""
    if tier is None:
        return
    if not isinstance(tier, str) or tier not in SERVICE_TIERS:
        raise SpecError(f"{where}: {tier!r} is not a service tier; use one of "
                        f"{', '.join(SERVICE_TIERS)} (OpenAI), or leave it out")
    if model is not None and not model.capabilities.service_tiers:
        raise SpecError(f"{where}: {model.id} has no service tiers (only OpenAI models take "
                        f"service_tier={tier!r}); remove it, or use an openai: model",
                        key="service_tier")


def min_cacheable(provider: str, model: str) -> int | None:
    """The shortest prefix ``provider`` caches for ``model``; None when it has no prompt cache.

    >>> min_cacheable("anthropic", "claude-haiku-4-5"), min_cacheable("openai", "gpt-4o")
    (4096, 1024)
    """
    if provider == "anthropic":
        return next((n for prefix, n in _ANTHROPIC_MIN if model.startswith(prefix)), 1024)
    if provider == "openai":
        return OPENAI_MIN_TOKENS
    return None


def stable_count(messages: list[Message]) -> int:
    """How many leading non-system messages belong to the stable prefix: all but the newest
    user turn and what follows it (that part changes from call to call)."""
    rest = [m for m in messages if m.role != "system"]
    last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=len(rest))
    return last_user


def system_first(messages: list[Message]) -> list[Message]:
    """``messages`` with the system ones first (stable order), so a shared prefix leads."""
    return [m for m in messages if m.role == "system"] + [
        m for m in messages if m.role != "system"]


def prefix_key(request: ModelRequest) -> str:
    """A short key naming a request's stable prefix (system prompt and tools); OpenAI's
    ``prompt_cache_key`` routes requests with the same key to the same cache."""
    head = [m.content for m in request.messages if m.role == "system"]
    tools = [[t.name, t.description, t.parameters] for t in request.tools]
    raw = json.dumps([head, tools], sort_keys=True, default=str)
    return "orchnb-" + hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


def _mark(block: dict[str, Any], ttl: str) -> None:
    block["cache_control"] = ({"type": "ephemeral"} if ttl == "5m"
                              else {"type": "ephemeral", "ttl": ttl})


def mark_anthropic(params: dict[str, Any], ttl: str) -> dict[str, Any]:
    """Anthropic ``messages.create`` parameters with ``cache_control`` breakpoints (at most
    three of the four allowed): the system prompt, the last tool, and the turn before the
    newest user turn (the conversation so far, which the next call repeats).

    >>> p = mark_anthropic({"system": "be brief", "messages": []}, "1h")
    >>> p["system"][0]["cache_control"]
    {'type': 'ephemeral', 'ttl': '1h'}
    """
    system = params.get("system")
    if isinstance(system, str) and system:
        params["system"] = [{"type": "text", "text": system}]
        _mark(params["system"][-1], ttl)
    tools = params.get("tools")
    if tools:
        tools[-1] = dict(tools[-1])
        _mark(tools[-1], ttl)
    messages = params.get("messages") or []
    if len(messages) >= 2 and messages[-1]["role"] == "user":
        last = messages[-2]
        if isinstance(last["content"], str):
            last["content"] = [{"type": "text", "text": last["content"]}] if last[
                "content"] else []
        if last["content"]:
            _mark(last["content"][-1], ttl)
    return params
