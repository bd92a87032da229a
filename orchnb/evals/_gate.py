"""Regression checks for CI: ``report.check(baseline, margin=)`` compares an eval with an earlier
one on the same rows, scorer by scorer, and says whether it regressed.

A regression is a significant drop larger than the margin: the difference's CI lies below 0
(:mod:`._decide`) and the drop itself is more than ``margin`` points. A smaller or an
unproven drop passes, and the sentence says which. ``exit_code`` is 1 on a regression, else 0
(``python -m orchnb eval ... --baseline`` exits with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..exceptions import SpecError
from ._decide import DEFAULT_MARGIN, Verdict, decide, paired_interval

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Check:
    """The result of ``report.check(baseline)``: one :class:`Verdict` per scorer (current −
    baseline), ``regressions`` (their scorers), ``passed``, ``exit_code``, ``sentence``."""

    verdicts: list[Verdict]
    margin: float

    @property
    def regressions(self) -> list[str]:
        return [v.scorer for v in self.verdicts if _regressed(v)]

    @property
    def passed(self) -> bool:
        return not self.regressions

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        df = pd.DataFrame([v.row() for v in self.verdicts])
        df["regression"] = [_regressed(v) for v in self.verdicts]
        return df

    @property
    def sentence(self) -> str:
        head = ("REGRESSION on " + ", ".join(self.regressions) if self.regressions
                else "no regression")
        parts = [f"{v.scorer}: {v.ci_text()} ({v.verdict})" for v in self.verdicts]
        return (f"{head} against the baseline (a drop counts when its CI lies below 0 and it "
                f"exceeds {self.margin:g} points): " + "; ".join(parts))

    def __repr__(self) -> str:
        return f"<Check: {self.sentence}>"


def _regressed(v: Verdict) -> bool:
    return v.verdict == "worse" and v.interval.diff < -v.margin


def check_scores(current: pd.DataFrame, baseline: pd.DataFrame, scorers: list[str], *,
                 margin: float = DEFAULT_MARGIN, level: float = 0.95, seed: int = 0) -> Check:
    """Compare two evals' per-row scores, matched by their ``input`` text."""
    missing = [s for s in scorers if s not in baseline.columns]
    if missing:
        raise SpecError(f"check: the baseline has no {', '.join(missing)} scores; its scorers "
                        f"are {', '.join(c for c in baseline.columns if c in scorers) or 'none'}")
    cur = current.drop_duplicates("input").set_index("input")
    base = baseline.drop_duplicates("input").set_index("input")
    common = cur.index.intersection(base.index)
    if len(common) == 0:
        raise SpecError("check: the baseline and this eval share no input rows; check the "
                        "same data set")
    out = []
    for s in scorers:
        iv = paired_interval(cur.loc[common, s].to_numpy(dtype=float),
                             base.loc[common, s].to_numpy(dtype=float), level=level, seed=seed)
        out.append(decide("current", "baseline", s, iv, margin=margin))
    return Check(out, margin)
