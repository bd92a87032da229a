"""Traces: spans, the SQLite store, the DataFrame view and exports."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._batches import StoredBatch, live_batches, mark_batch, record_batch, stored_batches
from ._cost_split import SPLIT, class_costs
from ._export import to_csv, to_otel, to_parquet
from ._format import fmt_usd, plural
from ._frame import chunks_to_frame, rows_to_frame, spans_to_frame
from ._home import PerFile, home, home_key
from ._otel_live import OTelListener
from ._span import COLUMNS, MAX_TEXT, Span, clip
from ._store import SpanStore, get_store
from ._trace import Trace

_log = logging.getLogger("orchnb")

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "MAX_TEXT",
    "SPLIT",
    "OTelListener",
    "PerFile",
    "Span",
    "SpanStore",
    "StoredBatch",
    "Trace",
    "class_costs",
    "clip",
    "fmt_usd",
    "get_store",
    "home",
    "home_key",
    "live_batches",
    "mark_batch",
    "mark_crashed",
    "plural",
    "record_batch",
    "rows_to_frame",
    "spans_to_frame",
    "stored_batches",
    "to_csv",
    "to_otel",
    "to_parquet",
    "traces",
]


def traces(run_id: str | None = None, pipeline: str | None = None) -> pd.DataFrame:
    """Every persisted span (this session's and earlier kernels'), one row each.

    >>> import orchnb
    >>> df = orchnb.traces()                 # doctest: +SKIP
    >>> df.groupby("pipeline").cost_usd.sum()  # doctest: +SKIP
    """
    where, params = [], []
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    if pipeline:
        where.append("pipeline = ?")
        params.append(pipeline)
    store, condition = get_store(), " AND ".join(where)
    # Read with the sqlite3 module only: a second SQLite library in this process (ADBC's) on
    # the file this process writes reads stale snapshots and breaks the writer's locks
    # ("disk I/O error"), see tests/trace/test_store.py.
    df = chunks_to_frame(store.iter_rows(condition, tuple(params)))
    return mark_crashed(df, store)


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
