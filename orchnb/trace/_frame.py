"""Spans → one tidy pandas DataFrame (pandas imported lazily, here only).

Columns are converted one chunk of rows at a time with numpy and (where pandas stores text in
Arrow) pyarrow, never through pandas' per-value type inference: a million spans take seconds,
not half a minute, and the rows of one chunk can be freed before the next is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._span import COLUMNS, Span, safe_text

if TYPE_CHECKING:
    import pandas as pd

_INT_COLS = ("input_tokens", "output_tokens", "cached_tokens", "iteration", "item", "attempt",
             "cache_write_tokens", "cache_write_1h_tokens")
_FLOAT_COLS = ("latency_ms", "cost_usd", "saved_usd", "confidence")
_BOOL_COLS = ("priced", "cached", "simulated", "replayed", "usage_estimated", "batch")
_TIME_COLS = ("start", "end")
_NUMERIC = frozenset(_INT_COLS + _FLOAT_COLS + _BOOL_COLS + _TIME_COLS)


def rows_to_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """Build the trace DataFrame from rows in ``COLUMNS`` order.

    ``start``/``end`` become UTC datetimes, token counts nullable integers, flags nullable
    booleans, and ``cost_usd`` stays NaN where the price is unknown.
    """
    return chunks_to_frame([rows])


def chunks_to_frame(chunks: Iterable[Sequence[tuple[Any, ...]]],
                    names: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """:func:`rows_to_frame` over rows that arrive in chunks (e.g. ``SpanStore.iter_rows``),
    their values being the columns ``names`` (default: all, in ``COLUMNS`` order)."""

    arrow = _arrow_text()
    pieces: list[list[Any]] = [[] for _ in names]
    for rows in chunks:
        if not len(rows):
            continue
        for i, col in enumerate(zip(*rows)):
            name = names[i]
            pieces[i].append(_numbers(name, col, arrow) if name in _NUMERIC
                             else _text(col, arrow))
    return assemble(pieces, arrow, names)


def assemble(pieces: list[list[Any]], arrow: Any, names: Sequence[str] = COLUMNS
             ) -> pd.DataFrame:
    """The DataFrame of columns ``names`` from their converted chunks: numbers as float64
    numpy arrays (NaN for NULL), text as Arrow arrays (or tuples of values)."""
    import numpy as np
    import pandas as pd

    if not pieces or not pieces[0]:
        return _empty(names)
    data: dict[str, Any] = {}
    for name, parts in zip(names, pieces):
        if name in _NUMERIC:
            values = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if name in _TIME_COLS:
                data[name] = _datetimes(values)
            elif name in _INT_COLS and values.dtype.kind == "f":
                missing = np.isnan(values)
                with np.errstate(invalid="ignore"):  # NaN cast: masked, then zeroed
                    ints = values.astype("int64")
                ints[missing] = 0
                data[name] = pd.arrays.IntegerArray(ints, missing)
            elif name in _INT_COLS:
                data[name] = pd.array(values, dtype="Int64")
            elif name in _FLOAT_COLS:
                data[name] = values.astype("float64", copy=False)
            else:
                missing = np.isnan(values)
                data[name] = pd.arrays.BooleanArray(values != 0, missing)
        else:
            data[name] = _text_column(parts, arrow)
    df = pd.DataFrame(data, columns=list(names), copy=False)  # the arrays are ours alone
    if "cost_usd" in df and "priced" in df:
        df["cost_usd"] = df["cost_usd"].where(df["priced"].fillna(True).astype(bool), np.nan)
    return df


def _datetimes(values: Any) -> Any:
    """Seconds since the epoch as UTC datetimes, NaN as NaT: ``pd.to_datetime(values,
    unit="s", utc=True)`` to the nanosecond (its very rounding), five times faster."""
    import numpy as np
    import pandas as pd

    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    seconds = np.where(missing, 0.0, values)
    if len(seconds) and np.abs(seconds).max() >= 9.2e9:  # beyond datetime64[ns]: pandas says so
        return pd.to_datetime(values, unit="s", utc=True)
    whole = seconds.astype(np.int64)
    ns = whole * 1_000_000_000 + (np.round(seconds - whole, 9) * 1e9).astype(np.int64)
    ns[missing] = np.iinfo(np.int64).min  # NaT
    return pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")


def _empty(names: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame({name: [] for name in names}, columns=list(names))
    for c in _TIME_COLS:
        if c in df:
            df[c] = pd.to_datetime(pd.to_numeric(df[c], errors="coerce"), unit="s", utc=True)
    for c in _INT_COLS:
        if c in df:
            df[c] = pd.array(pd.to_numeric(df[c], errors="coerce"), dtype="Int64")
    for c in _FLOAT_COLS:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in _BOOL_COLS:
        if c in df:
            df[c] = pd.array([], dtype="boolean")
    return df


def _numbers(name: str, col: tuple[Any, ...], arrow: Any) -> Any:
    """One chunk of a numeric column as an int64/float64 array, None as NaN."""
    import numpy as np

    if arrow is not None:  # pyarrow converts sequences with None about three times faster
        import pyarrow as pa

        try:
            return pa.array(col, type=pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # text, or integers beyond 2**53: numpy below
    values = np.array(col)
    if values.dtype.kind in "iuf" and name not in _BOOL_COLS:
        return values
    try:
        return np.array(col, dtype=np.float64)  # None → NaN; True/False → 1/0
    except (TypeError, ValueError):
        pass
    if name in _BOOL_COLS:
        return np.array([np.nan if _missing(v) else float(bool(v)) for v in col])
    import pandas as pd

    return pd.to_numeric(pd.Series(col, dtype=object), errors="coerce").to_numpy(np.float64)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _arrow_text() -> Any:
    """The dtype pandas gives text when it stores text in Arrow (pandas 3), else None."""
    import pandas as pd

    dtype = pd.Series(["", None]).dtype
    return dtype if getattr(dtype, "storage", None) == "pyarrow" else None


def _text(col: tuple[Any, ...], arrow: Any) -> Any:
    """One chunk of a text column: an Arrow array when all values are text (or None)."""
    if arrow is None:
        return col
    import pyarrow as pa

    if col.count(None) == len(col):  # sparse columns (route, tool, error...): a quick path
        return pa.nulls(len(col), pa.large_string())
    try:
        return pa.array(col, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return col  # not all text: pandas infers this column's type, as for any other value
    except UnicodeEncodeError:  # a lone surrogate from a model: shown as U+FFFD, as stored
        return _text(tuple(safe_text(v) if isinstance(v, str) else v for v in col), arrow)


def _text_column(parts: list[Any], arrow: Any) -> Any:
    import numpy as np
    import pandas as pd

    if arrow is not None and all(not isinstance(p, tuple) for p in parts):
        import pyarrow as pa

        values = parts[0] if len(parts) == 1 else pa.chunked_array(parts)
        if values.null_count == len(values):  # pandas keeps an all-None column as objects
            # A Series of that dtype: an array of objects would be scanned for a type to infer.
            return pd.Series(np.full(len(values), None, dtype=object), dtype=object, copy=False)
        return pd.array(values, dtype=arrow)
    merged: list[Any] = []
    for p in parts:
        merged.extend(p if isinstance(p, tuple) else p.to_pylist())
    return pd.Series(merged).array if merged else merged


def spans_to_frame(spans: Iterable[Span]) -> pd.DataFrame:
    """The trace DataFrame for these spans, one row each.

    >>> spans_to_frame([]).columns[:3].tolist()
    ['run_id', 'span_id', 'parent_id']
    """
    return rows_to_frame([s.to_row() for s in spans])
