"""The engine: one run context under every pattern (calls, tools, fan-out, stepping, budgets)."""

from ._cache import ResponseCache, cache_key, get_cache
from ._config import Budget, RetryPolicy, RunOptions, configure, defaults
from ._context import RunContext, ToolResult, as_text, total_cost
from ._gate import Boundary, Decision
from ._loop import engine_loop
from ._run import Run, add_hook, remove_hook

__all__ = [
    "Boundary",
    "Budget",
    "Decision",
    "ResponseCache",
    "RetryPolicy",
    "Run",
    "RunContext",
    "RunOptions",
    "ToolResult",
    "add_hook",
    "as_text",
    "cache_key",
    "configure",
    "defaults",
    "engine_loop",
    "get_cache",
    "remove_hook",
    "total_cost",
]
