"""Power and sample size for paired comparisons: how many rows an eval needs before it is run
(:func:`plan_eval`), and the smallest difference an eval could have detected after it.

Two candidates scored on the same rows differ row by row by ``d`` (for 0/1 scores -1, 0 or +1).
The decision of :mod:`._decide` is a confidence interval for the mean of ``d``; with ``sd`` the
standard deviation of ``d``, that interval excludes 0 with probability ``power`` once
``n = ((z(1 - alpha/2) + z(power)) * sd / difference) ** 2`` — the one-sample z-test on the
differences (statsmodels' ``NormalIndPower(ratio=0)``). For 0/1 scores
``sd ** 2 = discordant - difference ** 2``, where ``discordant`` is the share of rows on which
exactly one candidate is right (the paired-proportions, McNemar-type setting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from ..exceptions import SpecError


def z(p: float) -> float:
    """The standard normal quantile.

    >>> round(z(0.975), 3)
    1.96
    """
    return NormalDist().inv_cdf(p)


def rows_for(sd: float, difference: float, *, alpha: float = 0.05,
             power: float = 0.8) -> int:
    """Rows a paired comparison needs to tell ``difference`` from 0 (two-sided ``alpha``) with
    ``power``, when the per-row differences have standard deviation ``sd`` (``difference``
    not 0).

    >>> rows_for(0.38, 0.05)
    454
    """
    n = ((z(1 - alpha / 2) + z(power)) * sd / abs(difference)) ** 2
    return max(2, math.ceil(n - 1e-9))


def detectable(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference ``n`` paired rows with per-row SD ``sd`` detect with ``power``
    (same units as ``sd``).

    >>> round(detectable(0.38, 454), 3)
    0.05
    """
    if n <= 0:
        return math.nan
    return (z(1 - alpha / 2) + z(power)) * sd / math.sqrt(n)


def _check_rate(value: float, what: str, *, low: float, high: float, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            low < value < high):
        raise SpecError(f"plan_eval: {what} must be a number between {low:g} and {high:g} "
                        f"(exclusive), e.g. {example}; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class EvalPlan:
    """How many rows a paired comparison needs (what :func:`orchnb.plan_eval` returns).

    ``rows`` the rows to evaluate both candidates on; ``discordant`` the assumed share of rows
    on which exactly one is right; ``sd`` the per-row SD of the difference; ``sentence`` the
    plan in words.
    """

    rows: int
    baseline_rate: float
    difference: float
    alpha: float
    power: float
    discordant: float
    sd: float
    assumed_independent: bool

    @property
    def sentence(self) -> str:
        how = ("assuming the two candidates' errors are independent (correlated candidates "
               "need fewer rows: pass discordant= from a pilot)" if self.assumed_independent
               else f"with {self.discordant:.1%} of rows discordant")
        d = self.difference * 100
        change = f"{abs(d):g}-point {'rise' if d > 0 else 'drop'}"
        base = f"{self.baseline_rate * 100:.3g}%"
        article = "an" if base.startswith(("8", "11", "18")) else "a"
        return (f"{self.rows:,} rows to detect a {change} "
                f"from {article} {base} baseline with {self.power:.0%} power at "
                f"alpha = {self.alpha:g} (paired, two-sided), {how}")

    def __repr__(self) -> str:
        return f"<EvalPlan: {self.sentence}>"


def plan_eval(baseline_rate: float, difference: float, *, alpha: float = 0.05,
              power: float = 0.8, discordant: float | None = None) -> EvalPlan:
    """Rows needed before an eval: to tell two candidates apart on the same rows when one is
    right ``baseline_rate`` of the time and the other ``baseline_rate + difference`` (both as
    fractions, 0.05 for 5 points), with a two-sided test at ``alpha`` and ``power``.

    ``discordant`` is the share of rows on which exactly one candidate is right; by default the
    candidates' errors are taken as independent (``p1 (1 - p2) + p2 (1 - p1)``), which is the
    cautious choice: two versions of one pipeline agree more often and need fewer rows.

    >>> orchnb.plan_eval(baseline_rate=0.80, difference=0.05).rows
    903
    >>> orchnb.plan_eval(baseline_rate=0.80, difference=0.05, discordant=0.10).rows
    307
    """
    p1 = _check_rate(baseline_rate, "baseline_rate", low=0, high=1, example="0.8")
    d = _check_rate(difference, "difference", low=-1, high=1, example="0.05 for 5 points")
    if d == 0:
        raise SpecError("plan_eval: difference must not be 0 (no number of rows detects no "
                        "difference); give the smallest difference worth detecting, e.g. 0.05")
    p2 = p1 + d
    if not 0 <= p2 <= 1:
        raise SpecError(f"plan_eval: baseline_rate + difference = {p2:g} is not a rate between "
                        f"0 and 1")
    a = _check_rate(alpha, "alpha", low=0, high=1, example="0.05")
    pw = _check_rate(power, "power", low=0, high=1, example="0.8")
    independent = discordant is None
    psi = (p1 * (1 - p2) + p2 * (1 - p1) if discordant is None
           else _check_rate(discordant, "discordant", low=0, high=1, example="0.1"))
    if psi < abs(d):
        raise SpecError(f"plan_eval: discordant={psi:g} is smaller than |difference| = "
                        f"{abs(d):g}; a difference needs at least that share of rows on which "
                        f"the candidates disagree")
    sd = math.sqrt(max(psi - d * d, 0.0))
    return EvalPlan(rows_for(sd, d, alpha=a, power=pw), p1, d, a, pw, psi, sd, independent)
