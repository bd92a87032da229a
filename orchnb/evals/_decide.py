"""Decisions by confidence interval and margin: is A better than B, worse, equivalent within a
margin, or is there not enough data to tell (and how many rows would)?

The interval is of the mean per-row difference A − B on the rows both scored:

- 0/1 scores: the paired Wald interval with the Agresti–Min adjustment (half a row added to
  each cell of the 2×2 table), which keeps its coverage on small evals where the percentile
  bootstrap does not (20 identical rows give a bootstrap interval of [0, 0]);
- other scores: the paired percentile bootstrap (rows resampled, both candidates together);
  with repeats (``compare(..., repeats=N)``) each row's score is its mean over the repeats and
  the rows are resampled with all their repeats (a cluster bootstrap);
  when every difference is equal, the interval is widened to what a 0/1 table with no
  discordant row would give, so a few identical rows never "prove" equality.

With ``margin`` m: *equivalent* when the whole interval lies inside ±m (two one-sided tests,
TOST), else *better* when it lies above 0, *worse* when below, else *inconclusive*, with the
rows that would decide at the observed difference and spread (:func:`._power.rows_for`).
A large p-value is never read as "as good as".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._metrics import bootstrap_means
from ._paired import is_binary
from ._power import detectable, rows_for, z

if TYPE_CHECKING:
    import numpy as np

VERDICTS = ("better", "worse", "equivalent", "inconclusive")
BINARY_METHOD = "paired Wald interval, Agresti–Min adjusted"
BOOTSTRAP_METHOD = "paired percentile bootstrap"
CLUSTER_METHOD = "paired cluster bootstrap by row"
DEFAULT_MARGIN = 2.0
"""Points (of a 0–1 score × 100) by which two candidates may differ and still be equivalent."""


@dataclass(frozen=True)
class Interval:
    """The mean per-row difference A − B, its interval, and the per-row SD behind it."""

    diff: float
    low: float
    high: float
    sd: float
    n: int
    level: float
    method: str


def agresti_min(a_only: int, b_only: int, n: int, level: float = 0.95) -> Interval:
    """Interval of (a_only − b_only) / n for paired 0/1 scores (Agresti & Min, 2005).

    >>> iv = agresti_min(0, 4, 20)
    >>> round(iv.low, 3), round(iv.high, 3)
    (-0.366, 0.002)
    """
    b, c, m = a_only + 0.5, b_only + 0.5, n + 2
    diff = (b - c) / m
    var_row = max((b + c) / m - diff * diff, 0.0)
    half = z(1 - (1 - level) / 2) * math.sqrt(var_row / m)
    return Interval((a_only - b_only) / n if n else math.nan, max(-1.0, diff - half),
                    min(1.0, diff + half), math.sqrt(var_row), n, level, BINARY_METHOD)


def paired_interval(a: np.ndarray, b: np.ndarray, *, level: float = 0.95, n_boot: int = 2000,
                    seed: int = 0) -> Interval:
    """The interval of mean(A − B) on the rows both scored (see the module's doc)."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0, level, BOOTSTRAP_METHOD)
    if is_binary(a) and is_binary(b):
        return agresti_min(int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1))),
                           n, level)
    d = a - b
    diff = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if sd == 0:
        half = z(1 - (1 - level) / 2) / (n + 2)
        return Interval(diff, diff - half, diff + half, 1 / math.sqrt(n + 2), n, level,
                        BOOTSTRAP_METHOD)
    tail = (1 - level) / 2
    lo, hi = np.quantile(bootstrap_means(d, max(n_boot, 200), seed), [tail, 1 - tail])
    return Interval(diff, float(lo), float(hi), sd, n, level, BOOTSTRAP_METHOD)


def cluster_interval(a: np.ndarray, b: np.ndarray, repeats: int, *, level: float = 0.95,
                     n_boot: int = 2000, seed: int = 0) -> Interval:
    """The interval of mean(A − B) when ``a`` and ``b`` are each row's mean over ``repeats``
    runs: the bootstrap resamples rows, each with all its repeats (a cluster bootstrap), never
    row × repeat cells as if they were independent rows. Rows whose means are all 0 or 1
    (nothing flipped) keep the 0/1 interval."""
    iv = paired_interval(a, b, level=level, n_boot=n_boot, seed=seed)
    if repeats <= 1 or iv.method == BINARY_METHOD:
        return iv
    return replace(iv, method=f"{CLUSTER_METHOD} ({repeats} repeats a row)")


@dataclass(frozen=True)
class Verdict:
    """One pair on one scorer: the difference a − b with its interval, and what it decides.
    Amounts are fractions of a 0–1 score here; :meth:`row` gives them in points."""

    a: str
    b: str
    scorer: str
    interval: Interval
    margin: float
    verdict: str
    rows_needed: int | None
    power: float

    @property
    def detectable(self) -> float:
        """The smallest difference these rows detect with ``power`` (fraction)."""
        iv = self.interval
        return detectable(iv.sd, iv.n, alpha=1 - iv.level, power=self.power)

    def row(self) -> dict[str, Any]:
        """A row of ``Experiment.verdicts`` (amounts in points)."""
        iv = self.interval
        return {"a": self.a, "b": self.b, "scorer": self.scorer, "difference": iv.diff * 100,
                "ci_low": iv.low * 100, "ci_high": iv.high * 100, "margin": self.margin * 100,
                "verdict": self.verdict, "rows_needed": self.rows_needed, "rows": iv.n,
                "detectable": self.detectable * 100, "test": iv.method}

    def ci_text(self) -> str:
        iv = self.interval
        return (f"{iv.diff * 100:+.1f} points, {iv.level:.0%} CI [{iv.low * 100:+.1f}, "
                f"{iv.high * 100:+.1f}] by {iv.method} on {iv.n:,} rows")

    @property
    def sentence(self) -> str:
        """The verdict in words, naming the test and the interval."""
        m, who = self.margin * 100, f"{self.a} against {self.b} on {self.scorer}"
        if self.verdict == "equivalent":
            return (f"{self.a} and {self.b} are equivalent within ±{m:g} points on "
                    f"{self.scorer} (TOST: the whole CI lies inside the margin): "
                    f"{self.ci_text()}")
        if self.verdict in ("better", "worse"):
            side = "above" if self.verdict == "better" else "below"
            return (f"{self.a} is {self.verdict} than {self.b} on {self.scorer} (the CI lies "
                    f"{side} 0): {self.ci_text()}")
        return (f"not enough data to tell {who}: {self.ci_text()} includes 0 and reaches "
                f"beyond the ±{m:g}-point margin; {self.needed_text()}")

    def needed_text(self) -> str:
        if self.rows_needed is None:
            return "more rows would tell"
        return (f"about {self.rows_needed:,} rows would tell at this difference "
                f"({self.power:.0%} power)")


def decide(a: str, b: str, scorer: str, iv: Interval, *, margin: float = DEFAULT_MARGIN,
           power: float = 0.8) -> Verdict:
    """The verdict for ``iv`` (a − b) at ``margin`` points."""
    m = margin / 100
    if math.isnan(iv.diff):
        return Verdict(a, b, scorer, iv, m, "inconclusive", None, power)
    if -m < iv.low and iv.high < m:
        verdict = "equivalent"
    elif iv.low > 0:
        verdict = "better"
    elif iv.high < 0:
        verdict = "worse"
    else:
        verdict = "inconclusive"
    needed = _rows_needed(iv, m, power) if verdict == "inconclusive" else None
    return Verdict(a, b, scorer, iv, m, verdict, needed, power)


def _rows_needed(iv: Interval, m: float, power: float) -> int | None:
    """Rows that would reach a verdict with ``power`` if the true difference and the per-row
    spread are what this eval saw: a difference shown (CI off 0) or equivalence (CI inside ±m),
    whichever needs fewer."""
    alpha, d = 1 - iv.level, abs(iv.diff)
    options = []
    if d > 0:
        options.append(rows_for(iv.sd, d, alpha=alpha, power=power))
    if d < m:
        # At d = 0 both one-sided tests must succeed: each gets half the miss rate.
        p = power if d > 0 else 1 - (1 - power) / 2
        options.append(rows_for(iv.sd, m - d, alpha=alpha, power=p))
    if not options or iv.sd == 0:
        return None
    return max(min(options), iv.n + 1)

