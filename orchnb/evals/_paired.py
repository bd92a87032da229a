"""Paired significance tests between two candidates scored on the same rows.

- ``paired_bootstrap``: resample rows (the same rows for both candidates), take the mean
  difference each time; a percentile interval and a two-sided p-value (twice the share of
  resampled differences on the far side of zero, capped at 1).
- ``mcnemar``: for 0/1 scores, McNemar's exact test: of the rows where exactly one candidate is
  right (``b`` for A, ``c`` for B), is the split 50/50? p = two-sided exact binomial, as
  ``scipy.stats.binomtest(b, b + c, 0.5).pvalue`` (computed here without scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._metrics import bootstrap_means

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class PairedResult:
    """A minus B on the rows both scored."""

    diff: float
    """Mean of A's scores minus mean of B's."""
    ci: tuple[float, float]
    p_bootstrap: float
    p_mcnemar: float
    """NaN unless both candidates' scores are all 0 or 1."""
    a_only: int
    """Rows A got right and B wrong (0/1 scores)."""
    b_only: int
    n: int

    @property
    def p(self) -> float:
        """McNemar's p for 0/1 scores, else the bootstrap's."""
        return self.p_bootstrap if math.isnan(self.p_mcnemar) else self.p_mcnemar


def binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p-value for ``k`` successes of ``n`` at p = 0.5 (the
    probabilities no larger than that of ``k``, summed), as scipy's ``binomtest``.

    >>> round(binom_two_sided(2, 10), 6)
    0.109375
    """
    if n == 0:
        return 1.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
            for i in range(n + 1)]
    pk = logs[k]
    # scipy compares with a relative tolerance of 1e-7 so that symmetric tails count exactly.
    total = sum(math.exp(lp) for lp in logs if lp <= pk + 1e-7 * abs(pk) + 1e-12)
    return min(1.0, total)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar p-value for paired 0/1 scores, and the discordant counts (A only, B only)."""
    import numpy as np

    a_only = int(np.sum((a == 1) & (b == 0)))
    b_only = int(np.sum((a == 0) & (b == 1)))
    return binom_two_sided(min(a_only, b_only), a_only + b_only), a_only, b_only


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, tuple[float, float], float]:
    """Mean difference (a - b), its percentile interval and a two-sided bootstrap p-value."""
    import numpy as np

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return (math.nan, (math.nan, math.nan), math.nan)
    means = bootstrap_means(d, n_boot, seed)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    if np.all(d == 0):
        p = 1.0
    else:
        # (k + 1) / (B + 1): a bootstrap of B resamples cannot show p below that, so a clear
        # gap reads "< 0.001" (2 / 2001 at the default 2,000), never a p of exactly 0.
        tails = min(int(np.sum(means <= 0)), int(np.sum(means >= 0)))
        p = min(1.0, 2 * (tails + 1) / (means.size + 1))
    return (float(d.mean()), (float(lo), float(hi)), p)


def is_binary(v: np.ndarray) -> bool:
    import numpy as np

    v = v[~np.isnan(v)]
    return bool(v.size) and bool(np.all((v == 0) | (v == 1)))


def paired(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, level: float = 0.95,
           seed: int = 0) -> PairedResult:
    """Both tests on the rows both candidates scored."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    diff, ci, p_boot = paired_bootstrap(a, b, n_boot=n_boot, level=level, seed=seed)
    if is_binary(a) and is_binary(b):
        p_mc, a_only, b_only = mcnemar(a, b)
    else:
        p_mc, a_only, b_only = math.nan, 0, 0
    return PairedResult(diff, ci, p_boot, p_mc, a_only, b_only, int(keep.sum()))
