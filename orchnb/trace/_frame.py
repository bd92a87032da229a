"""Spans → one tidy pandas DataFrame (pandas imported lazily, here only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._span import COLUMNS, Span

if TYPE_CHECKING:
    import pandas as pd

_INT_COLS = ("input_tokens", "output_tokens", "cached_tokens", "iteration", "item", "attempt")
_FLOAT_COLS = ("latency_ms", "cost_usd", "saved_usd", "confidence")
_BOOL_COLS = ("priced", "cached", "simulated")


def rows_to_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """Build the trace DataFrame from rows in ``COLUMNS`` order.

    ``start``/``end`` become UTC datetimes, token counts nullable integers, and
    ``cost_usd`` stays NaN where the price is unknown.
    """
    import numpy as np
    import pandas as pd

    if rows:
        cols = list(zip(*rows))
        data = {name: cols[i] for i, name in enumerate(COLUMNS)}
    else:
        data = {name: [] for name in COLUMNS}
    df = pd.DataFrame(data, columns=list(COLUMNS))
    for c in ("start", "end"):
        df[c] = pd.to_datetime(pd.to_numeric(df[c], errors="coerce"), unit="s", utc=True)
    for c in _INT_COLS:
        df[c] = pd.array(pd.to_numeric(df[c], errors="coerce"), dtype="Int64")
    for c in _FLOAT_COLS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in _BOOL_COLS:
        df[c] = pd.array([None if v is None else bool(v) for v in df[c]], dtype="boolean")
    df["cost_usd"] = df["cost_usd"].where(df["priced"].fillna(True).astype(bool), np.nan)
    return df


def spans_to_frame(spans: Iterable[Span]) -> pd.DataFrame:
    """The trace DataFrame for these spans, one row each.

    >>> spans_to_frame([]).columns[:3].tolist()
    ['run_id', 'span_id', 'parent_id']
    """
    return rows_to_frame([s.to_row() for s in spans])
