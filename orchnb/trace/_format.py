"""Words for counts, shared by every display of a trace (run reprs, charts, reports)."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls``.

    >>> plural(1, "call"), plural(3, "call")
    ('1 call', '3 calls')
    """
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
