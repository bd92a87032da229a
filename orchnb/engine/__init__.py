"""The engine: one run context under every pattern (calls, tools, fan-out, stepping, budgets).

Every model, embedding and tool call takes one guarded path (step boundary → budget reservation →
span → cache → attempts → price → settle) and publishes span events; the recorder, the store,
progress bars, widgets, evals and exports are listeners (see :func:`add_hook`).
"""

from ._budget import Charge, Ledger
from ._cache import ResponseCache, cache_key, get_cache
from ._config import (
    MAX_CONCURRENCY,
    MAX_LOOP_COUNT,
    MAX_RETRIES,
    MAX_TOKENS_KNOB,
    Budget,
    RetryPolicy,
    RunOptions,
    check_count,
    check_number,
    configure,
    defaults,
)
from ._context import RunContext, total_cost
from ._display import MATHJAX_OFF, plural
from ._events import EVENTS, Listener, add_hook, remove_hook
from ._export import export_live
from ._forking import Rebuild, prepare_fork
from ._gate import Boundary, Decision
from ._levers import NO_LEVERS, call_levers, current_levers, reset_levers, set_levers
from ._loop import engine_loop
from ._ops import ToolResult
from ._remote import Intake, LedgerServer, SharedLedger, run_items, worker_name
from ._replay import Recording, ReplayReport, ReplaySource, span_seq
from ._run import Run, set_live_display
from ._scope import SpanHandle, SpanScope, status_of
from ._stream import ChunkStream, StreamChunk
from ._text import as_text

__all__ = [
    "EVENTS",
    "MATHJAX_OFF",
    "MAX_CONCURRENCY",
    "MAX_LOOP_COUNT",
    "MAX_RETRIES",
    "MAX_TOKENS_KNOB",
    "NO_LEVERS",
    "Boundary",
    "Budget",
    "Charge",
    "ChunkStream",
    "Decision",
    "Intake",
    "Ledger",
    "LedgerServer",
    "Listener",
    "Rebuild",
    "Recording",
    "ReplayReport",
    "ReplaySource",
    "ResponseCache",
    "RetryPolicy",
    "Run",
    "RunContext",
    "RunOptions",
    "SharedLedger",
    "SpanHandle",
    "SpanScope",
    "StreamChunk",
    "ToolResult",
    "add_hook",
    "as_text",
    "cache_key",
    "call_levers",
    "check_count",
    "check_number",
    "configure",
    "current_levers",
    "defaults",
    "engine_loop",
    "export_live",
    "get_cache",
    "plural",
    "prepare_fork",
    "remove_hook",
    "reset_levers",
    "run_items",
    "set_levers",
    "set_live_display",
    "span_seq",
    "status_of",
    "total_cost",
    "worker_name",
]
