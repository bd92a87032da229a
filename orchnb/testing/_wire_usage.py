"""Usage fields of the fake's answers that differ by vendor: Anthropic's cache counts, apart
from input and from each other, and OpenAI's reported service tier."""

from __future__ import annotations

from typing import Any


def anthropic_usage(inp: int, cached: int, reply: Any) -> dict[str, Any]:
    """Anthropic's input counts for ``inp`` prompt tokens (cached and written included) and a
    ``FakeReply``'s cache writes: uncached input, reads, writes and their split by lifetime.

    >>> from types import SimpleNamespace as R
    >>> anthropic_usage(100, 20, R(cache_write_tokens=30, cache_write_1h_tokens=10))["input_tokens"]
    50
    """
    written = max(0, min(reply.cache_write_tokens, inp - cached))
    w1h = max(0, min(reply.cache_write_1h_tokens, written))
    return {"input_tokens": inp - cached - written, "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": written, "cache_creation": {
                "ephemeral_5m_input_tokens": written - w1h, "ephemeral_1h_input_tokens": w1h}}


def tier_field(tier: str | None) -> dict[str, Any]:
    """OpenAI's ``service_tier`` answer field (none when no tier is reported)."""
    return {"service_tier": tier} if tier else {}
