"""``orchnb.traces()``: the persisted spans as one DataFrame, with filters pushed down.

One run (``run_id=``) is read through SQLite's index on ``run_id``: it costs that run's spans,
whatever the store's size. Everything else (the whole store, ``since=``, ``pipeline=``) is
read through the columnar copy when pyarrow is installed (``_fastread``), else through
sqlite3. ``columns=`` reads only those columns, either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._fastread import read_frame
from ._frame import chunks_to_frame
from ._span import COLUMNS
from ._store import SpanStore, get_store

if TYPE_CHECKING:
    import pandas as pd

_NEEDS = {"status": ("run_id", "kind", "error"), "cost_usd": ("priced",)}
"""Columns a requested column needs to be right: crashed runs are marked from a run's
status, kind and error; an unknown price shows as NaN cost from ``priced``."""


def traces(run_id: str | None = None, pipeline: str | None = None, since: Any = None,
           columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every persisted span (this session's and earlier kernels'), one row each, by start.

    ``run_id``: one run's spans (read through an index: one run of a million-span store costs
    that run only). ``pipeline``: one pipeline's. ``since``: spans started at or after it
    (seconds since the epoch, a ``datetime`` or a ``pandas.Timestamp``, an ISO string; naive
    times are UTC). ``columns``: only these columns (of ``orchnb.trace.COLUMNS``).

    >>> import orchnb
    >>> df = orchnb.traces()                 # doctest: +SKIP
    >>> df.groupby("pipeline").cost_usd.sum()  # doctest: +SKIP
    >>> orchnb.traces(since="2026-12-01", columns=["pipeline", "cost_usd"])  # doctest: +SKIP
    """
    names = _columns(columns)
    needed = list(dict.fromkeys(names + [c for n in names for c in _NEEDS.get(n, ())]))
    start = _seconds(since)
    store = get_store()
    df = None
    if not run_id:
        # The columnar copy (Arrow), never a second SQLite library in this process: two on the
        # file this process writes read stale snapshots and break the writer's locks ("disk
        # I/O error"), see tests/trace/test_store.py.
        df = read_frame(store, needed, start, pipeline)
    if df is None:
        where, params = _where(run_id, pipeline, start)
        df = chunks_to_frame(store.iter_rows(where, params, names=needed), needed)
    df = mark_crashed(df, store)
    return df if len(needed) == len(names) else df[names]


def _where(run_id: str | None, pipeline: str | None, since: float | None
           ) -> tuple[str, tuple[Any, ...]]:
    where: list[str] = []
    params: list[Any] = []
    for sql, value in (("run_id = ?", run_id or None), ("pipeline = ?", pipeline),
                       ("start >= ?", since)):
        if value is not None:
            where.append(sql)
            params.append(value)
    return " AND ".join(where), tuple(params)


def _columns(columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(COLUMNS)
    if isinstance(columns, str):
        columns = [columns]
    names = list(dict.fromkeys(columns))
    unknown = [c for c in names if c not in COLUMNS]
    if unknown or not names:
        what = ("unknown column(s) " + ", ".join(map(repr, unknown)) if unknown
                else "no column asked for")
        raise SpecError(f"orchnb.traces(columns=...): {what}; the columns are "
                        f"{', '.join(COLUMNS)}", key="columns")
    return names


def _seconds(since: Any) -> float | None:
    """``since`` as seconds since the epoch (naive times taken as UTC)."""
    if since is None:
        return None
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return float(since)
    if isinstance(since, str):
        try:
            since = dt.datetime.fromisoformat(since)
        except ValueError:
            raise SpecError(f"orchnb.traces(since={since!r}): not an ISO date or time; pass "
                            "e.g. '2026-12-01', '2026-12-01T08:00:00+00:00', a datetime or "
                            "seconds since the epoch", key="since") from None
    if isinstance(since, dt.datetime):  # pandas.Timestamp is one
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        return since.timestamp()
    if isinstance(since, dt.date):
        return dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC).timestamp()
    raise SpecError(f"orchnb.traces(since=...): got {type(since).__name__}; pass seconds since "
                    "the epoch, a datetime, a pandas.Timestamp or an ISO string", key="since")


def mark_crashed(df: pd.DataFrame, store: SpanStore | None = None) -> pd.DataFrame:
    """``df`` with the spans of runs whose process died shown as ``crashed`` (not ``running``);
    the run span's ``error`` says what happened.

    >>> mark_crashed(orchnb.traces())   # doctest: +SKIP
    """
    if df.empty or "status" not in df or not (df["status"] == "running").any():
        return df
    crashed = (store or get_store()).crashed_runs()
    if not crashed:
        return df
    hit = df["run_id"].isin(list(crashed)) & (df["status"] == "running")
    if not hit.any():
        return df
    df = df.copy()
    status = df["status"].astype(object)
    status[hit] = "crashed"
    df["status"] = status
    runs = hit & (df["kind"] == "run")
    error = df["error"].astype(object)
    error[runs] = ["crashed: " + crashed[r] for r in df.loc[runs, "run_id"]]
    df["error"] = error
    return df
