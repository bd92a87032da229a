"""Run options: budgets, retries, timeouts, caching and tracing switches."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Budget:
    """Caps checked before each call and after each response; exceeding one raises
    :class:`~orchnb.exceptions.BudgetExceeded` and leaves a complete trace.

    >>> Budget(max_calls=10, max_usd=0.05)
    Budget(max_calls=10, max_tokens=None, max_usd=0.05)
    """

    max_calls: int | None = None
    """Model calls (cached answers do not count)."""
    max_tokens: int | None = None
    """Input + output tokens over the run."""
    max_usd: float | None = None
    """Dollars over the run (unpriced calls count as 0 here, and are flagged in the trace)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures (429, 5xx, timeouts, dropped connections).

    Backoff doubles from ``backoff`` up to ``max_backoff`` seconds; a server's Retry-After wins
    when it is longer (capped at ``max_retry_after``).

    >>> RetryPolicy(max_attempts=5).max_attempts
    5
    """

    max_attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything a run is configured with; see :func:`configure` for session defaults.

    >>> RunOptions().merged(cache=False).cache
    False
    """

    budget: Budget = field(default_factory=Budget)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = 120.0
    """Seconds per attempt of a model call (None: no limit)."""
    tool_timeout: float | None = 60.0
    cache: bool = True
    """Answer repeated identical calls from the response cache (see ``orchnb.engine.cache``)."""
    persist: bool = True
    """Write spans to the SQLite store as they end."""
    max_iterations: int | None = None
    """Overrides agents' own ``max_iterations`` when set."""
    progress: bool = True
    """Show progress bars for long fan-outs (map-reduce over 20+ items)."""
    stream: bool = False
    """Stream every model call's text as it arrives (``pipe.stream(x)`` turns this on)."""
    replay: Any = None
    """A recorded run that answers this run's calls first (``run.fork`` / ``run.replay`` set
    it: an ``orchnb.engine._replay.ReplaySource``)."""

    def merged(self, **changes: Any) -> RunOptions:
        """A copy with the non-None ``changes`` applied."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        # Every run merges its pipeline's options into the defaults; ``replace`` is a few µs,
        # and options are immutable, so equal merges share one result.
        try:
            key = (id(self), *changes.items())
            hit = _MERGED.get(key)
        except TypeError:  # an unhashable value
            return replace(self, **changes)
        if hit is not None and hit[0] is self:
            return hit[1]
        merged = replace(self, **changes)
        if len(_MERGED) >= 256:
            _MERGED.clear()
        _MERGED[key] = (self, merged)
        return merged


_MERGED: dict[tuple[Any, ...], tuple[RunOptions, RunOptions]] = {}


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


_DEFAULTS = [RunOptions(cache=_env_flag("ORCHNB_CACHE", True),
                        persist=_env_flag("ORCHNB_PERSIST", True))]


def defaults() -> RunOptions:
    """The session's default run options."""
    return _DEFAULTS[0]


def configure(**changes: Any) -> RunOptions:
    """Change the session defaults (``cache``, ``persist``, ``timeout``, ``budget``, ``retry``...).

    >>> import orchnb
    >>> orchnb.configure(cache=False).cache
    False
    >>> _ = orchnb.configure(cache=True)
    """
    _DEFAULTS[0] = replace(_DEFAULTS[0], **changes)
    return _DEFAULTS[0]
