"""Words for counts and money, shared by every display of a trace (run reprs, charts,
reports, previews)."""

from __future__ import annotations

import math
from typing import Any


def plural(n: int, word: str) -> str:
    """``1 call``, ``2 calls``.

    >>> plural(1, "call"), plural(3, "call")
    ('1 call', '3 calls')
    """
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def fmt_usd(x: Any, *, unpriced: int = 0) -> str:
    """``$0.0123``; two decimals from $1, three significant digits below, so a cheap call never
    reads as ``$0.0000``; ``unpriced`` for a missing price (None, NaN, pandas NA). The one money
    formatter of the package: every repr, report and chart label goes through it.

    ``unpriced``: calls left out of a total because they have no known price, said after it.

    >>> fmt_usd(12.5), fmt_usd(0.000021), fmt_usd(0), fmt_usd(float("nan"))
    ('$12.50', '$0.000021', '$0', 'unpriced')
    >>> fmt_usd(0.0042, unpriced=2)
    '$0.0042 (+2 unpriced)'
    """
    if unpriced:
        return fmt_usd(x) + f" (+{unpriced:,} unpriced)"
    if x is None:
        return "unpriced"
    try:
        if x != x:  # NaN, NaT
            return "unpriced"
    except (TypeError, ValueError):  # pd.NA raises on bool()
        return "unpriced"
    x = float(x)
    if x == 0:
        return "$0"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(x))))  # three significant digits
    text = f"{x:.{decimals}f}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{x:.2f}"
    return f"${text}"
