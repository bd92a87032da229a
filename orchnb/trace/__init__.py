"""Traces: spans, the SQLite store, the DataFrame view and exports."""

from __future__ import annotations

from ._export import to_csv, to_otel, to_parquet
from ._format import fmt_usd, plural
from ._frame import rows_to_frame, spans_to_frame
from ._home import PerFile, home, home_key
from ._otel_live import OTelListener
from ._query import mark_crashed, traces
from ._span import COLUMNS, MAX_TEXT, Span, clip
from ._store import SpanStore, get_store
from ._trace import Trace

__all__ = [
    "COLUMNS",
    "MAX_TEXT",
    "OTelListener",
    "PerFile",
    "Span",
    "SpanStore",
    "Trace",
    "clip",
    "fmt_usd",
    "get_store",
    "home",
    "home_key",
    "mark_crashed",
    "plural",
    "rows_to_frame",
    "spans_to_frame",
    "to_csv",
    "to_otel",
    "to_parquet",
    "traces",
]
