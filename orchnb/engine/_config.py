"""Run options: budgets, retries, timeouts, caching and tracing switches."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..exceptions import SpecError, show_tracebacks
from ..models import check_service_tier

MAX_CONCURRENCY = 10_000
"""Most calls a fan-out (map-reduce, evaluate, judge) may have in flight at once."""
MAX_LOOP_COUNT = 10_000
"""Most rounds of a loop knob: ``max_iterations``, ``max_turns``, ``max_steps``,
``max_replans``."""
MAX_RETRIES = 100
"""Most attempts of a call (``RetryPolicy.max_attempts``) or retries of an item."""
MAX_TOKENS_KNOB = 10_000_000
"""Largest token count a knob may name (``max_tokens``, ``chunk_tokens``, ...): more than any
model's context."""


def check_count(value: Any, where: str, *, minimum: int = 1, maximum: int = MAX_LOOP_COUNT,
                key: str | None = None, optional: bool = False) -> None:
    """Raise :class:`SpecError` unless ``value`` is a whole number in ``minimum..maximum``
    (``True``, ``2.0`` and ``1e9`` are refused: a bool is an int in Python, a float is not a
    count).

    >>> check_count(10**9, "concurrency", maximum=MAX_CONCURRENCY)
    Traceback (most recent call last):
    orchnb.exceptions.SpecError: concurrency must be a whole number ≥ 1 and ≤ 10,000, got 1000000000
    """
    if value is None and optional:
        return
    if (not isinstance(value, int) or isinstance(value, bool)
            or not minimum <= value <= maximum):
        raise SpecError(f"{where} must be a whole number ≥ {minimum} and ≤ {maximum:,}, "
                        f"got {value!r}", key=key)


def check_number(value: Any, where: str, *, minimum: float = 0, above: bool = False,
                 integer: bool = False, optional: bool = True, hint: str = "",
                 maximum: float | None = None) -> None:
    """Raise :class:`SpecError` unless ``value`` is a number in range (None allowed when
    ``optional``): ``minimum`` inclusive, or exclusive with ``above``; ``maximum`` inclusive.

    >>> check_number(3, "Budget(max_calls)", integer=True)
    >>> check_number(-1, "Budget(max_calls)", integer=True)
    Traceback (most recent call last):
    orchnb.exceptions.SpecError: Budget(max_calls) must be a whole number >= 0 or None, not -1
    """
    if value is None and optional:
        return
    kind = "a whole number" if integer else "a number"
    rng = f"> {minimum:g}" if above else f">= {minimum:g}"
    if maximum is not None:
        rng += f" and <= {maximum:,}"
    ok = (isinstance(value, int) if integer else isinstance(value, (int, float)))
    ok = ok and not isinstance(value, bool)
    if ok and not integer and math.isnan(value):
        ok = False
    if ok:
        ok = value > minimum if above else value >= minimum
        ok = ok and (maximum is None or value <= maximum)
    if not ok:
        none = " or None" if optional else ""
        raise SpecError(f"{where} must be {kind} {rng}{none}, not {value!r}"
                        + (f"; {hint}" if hint else ""))


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

    def __post_init__(self) -> None:
        check_number(self.max_calls, "Budget(max_calls=...)", integer=True)
        check_number(self.max_tokens, "Budget(max_tokens=...)", integer=True)
        check_number(self.max_usd, "Budget(max_usd=...)", hint="a dollar amount such as 0.05")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures (429, 5xx, timeouts, dropped connections).

    Every wait is jittered ("full jitter"): uniformly between 0 and a cap that doubles from
    ``backoff`` up to ``max_backoff`` seconds, so a crowd of failed calls does not come back in
    one wave. A server's Retry-After is never undercut: the wait is Retry-After plus the jitter;
    a Retry-After longer than ``max_retry_after`` ends the retries (and moves on to the step's
    ``fallback`` models, if any). ``jitter=False`` waits the cap itself (for reproducible tests).

    >>> RetryPolicy(max_attempts=5).max_attempts
    5
    >>> 2.0 <= RetryPolicy(backoff=0.5).delay(1, retry_after=2.0) <= 2.5
    True
    """

    max_attempts: int = 3
    """Attempts per call, the first included (1: never retry)."""
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0
    jitter: bool = True

    def __post_init__(self) -> None:
        check_number(self.max_attempts, "RetryPolicy(max_attempts=...)", minimum=1,
                     integer=True, optional=False, hint="1 means no retries",
                     maximum=MAX_RETRIES)
        check_number(self.backoff, "RetryPolicy(backoff=...)", optional=False)
        check_number(self.max_backoff, "RetryPolicy(max_backoff=...)", optional=False)
        check_number(self.max_retry_after, "RetryPolicy(max_retry_after=...)", optional=False)
        if self.max_backoff < self.backoff:
            raise SpecError(f"RetryPolicy(max_backoff={self.max_backoff!r}) must be at least "
                            f"backoff={self.backoff!r}")
        if not isinstance(self.jitter, bool):
            raise SpecError(f"RetryPolicy(jitter=...) must be True or False, not {self.jitter!r}")

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): Retry-After (if
        any) plus a random share of the backoff cap. Call :meth:`gives_up` first."""
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        wait = random.uniform(0.0, cap) if self.jitter else cap
        if retry_after is not None and retry_after > 0:
            wait += retry_after
        return wait

    def gives_up(self, retry_after: float | None) -> bool:
        """Whether a server's Retry-After is too long to wait for (over ``max_retry_after``)."""
        return retry_after is not None and retry_after > self.max_retry_after


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
    cache_salt: str | None = None
    """Added to every chat call's cache key: the same request under another salt is a new
    call (``evaluate(..., repeats=N)`` salts repeat k with ``"repeat:k"``, so each repeat
    really calls the model once and a re-run of the eval is answered from the cache)."""
    replay: Any = None
    """A recorded run that answers this run's calls first (``run.fork`` / ``run.replay`` set
    it: an ``orchnb.engine._replay.ReplaySource``)."""
    service_tier: str | None = None
    """The service tier model calls ask for when their step sets none (OpenAI ``flex``,
    ``priority``, ``auto``, ``default``); providers without tiers are called as usual."""

    def __post_init__(self) -> None:
        if not isinstance(self.budget, Budget):
            raise SpecError(f"budget must be an orchnb.Budget(max_calls=..., max_tokens=..., "
                            f"max_usd=...), not {self.budget!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise SpecError(f"retry must be an orchnb.RetryPolicy(max_attempts=..., "
                            f"backoff=...), not {self.retry!r}")
        check_number(self.timeout, "timeout", above=True,
                     hint="seconds per attempt of a model call (None: no limit)")
        check_number(self.tool_timeout, "tool_timeout", above=True,
                     hint="seconds per tool call (None: no limit)")
        check_number(self.max_iterations, "max_iterations", minimum=1, integer=True,
                     maximum=MAX_LOOP_COUNT)
        check_service_tier(self.service_tier)
        if self.cache_salt is not None and not isinstance(self.cache_salt, str):
            raise SpecError(f"cache_salt must be text (e.g. 'repeat:2') or None, not "
                            f"{self.cache_salt!r}")
        for name in ("cache", "persist", "progress", "stream"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{name} must be True or False, not {getattr(self, name)!r}")

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

    ``debug=True`` shows orchnb's errors in IPython with their full traceback (as ``%xmode
    verbose`` does) instead of the one block that says what, where and what to do.

    >>> import orchnb
    >>> orchnb.configure(cache=False).cache
    False
    >>> _ = orchnb.configure(cache=True)
    """
    if "debug" in changes:  # not a run option: how errors show in IPython
        show_tracebacks(changes.pop("debug"))
    known = {f.name for f in fields(RunOptions)} | {"debug"}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise SpecError(f"configure(): unknown option(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(known))}")
    _DEFAULTS[0] = replace(_DEFAULTS[0], **changes)
    return _DEFAULTS[0]
