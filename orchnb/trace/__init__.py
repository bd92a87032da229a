"""Traces: spans, the SQLite store, the DataFrame view and exports."""

from __future__ import annotations

from ._batches import StoredBatch, live_batches, mark_batch, record_batch, stored_batches
from ._cost_split import SPLIT, calls_frame, class_costs, prompt_cache, prompt_cache_note
from ._export import to_csv, to_otel, to_parquet
from ._format import fmt_usd, plural
from ._frame import rows_to_frame, spans_to_frame
from ._home import PerFile, home, home_key
from ._otel_live import OTelListener
from ._query import mark_crashed, traces
from ._span import COLUMNS, MAX_TEXT, Span, clip
from ._store import SpanStore, close_stores, get_store
from ._trace import Trace

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
    "calls_frame",
    "class_costs",
    "clip",
    "close_stores",
    "fmt_usd",
    "get_store",
    "home",
    "home_key",
    "live_batches",
    "mark_batch",
    "mark_crashed",
    "plural",
    "prompt_cache",
    "prompt_cache_note",
    "record_batch",
    "rows_to_frame",
    "spans_to_frame",
    "stored_batches",
    "to_csv",
    "to_otel",
    "to_parquet",
    "traces",
]
