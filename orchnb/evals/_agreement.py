"""How far to believe a judge: ``orchnb.agreement(judge_scores, human_labels)``.

Both sides are made binary ("pass" is the positive class): a judge's score passes at
``threshold`` or above, a person's label passes when it is ``positive``. Rows a person skipped
(no label) are left out. Against the person's labels the judge has a true positive rate (TPR:
of the rows people pass, the share it passes), a true negative rate (TNR), an accuracy and
Cohen's κ; each with a seeded percentile-bootstrap interval over the labelled rows. Definitions
are scikit-learn's (``recall_score``, ``confusion_matrix``, ``cohen_kappa_score``).

A judge's raw pass rate ``p`` on unlabelled rows is biased by its errors; the Rogan–Gladen
estimate ``(p + TNR − 1) / (TPR + TNR − 1)`` (clipped to [0, 1]) corrects it, its interval from
the same bootstrap (and, given the rows behind ``p``, a binomial draw of ``p``).

With ``holdout`` the figures are measured only on held-out rows, so rows used to improve the
judge (``Judge.align``) never grade it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import plural
from ._agreement_inputs import labelled_frame
from ._html import NO_MATH

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS = ("TPR", "TNR", "accuracy", "kappa")


def confusion_counts(j: np.ndarray, h: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """tp, fn, fp, tn along the last axis (``j``, ``h``: 0/1 arrays, any leading shape)."""
    tp = (j * h).sum(axis=-1)
    fn = ((1 - j) * h).sum(axis=-1)
    fp = (j * (1 - h)).sum(axis=-1)
    tn = ((1 - j) * (1 - h)).sum(axis=-1)
    return tp, fn, fp, tn


def rates(tp: Any, fn: Any, fp: Any, tn: Any) -> dict[str, Any]:
    """TPR, TNR, accuracy and Cohen's κ from counts (arrays or numbers; NaN where undefined)."""
    import numpy as np

    tp, fn, fp, tn = (np.asarray(x, dtype=float) for x in (tp, fn, fp, tn))
    n = tp + fn + fp + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        tnr = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        acc = np.where(n > 0, (tp + tn) / n, np.nan)
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        kappa = np.where((n > 0) & (pe < 1), (acc - pe) / (1 - pe), np.nan)
    return {"TPR": tpr, "TNR": tnr, "accuracy": acc, "kappa": kappa}


def rogan_gladen(p: Any, tpr: Any, tnr: Any) -> Any:
    """``(p + tnr − 1) / (tpr + tnr − 1)`` clipped to [0, 1]; NaN when the judge is no better
    than chance (``tpr + tnr <= 1``).

    >>> round(float(rogan_gladen(0.6, 0.9, 0.8)), 4)
    0.5714
    """
    import numpy as np

    p, tpr, tnr = (np.asarray(x, dtype=float) for x in (p, tpr, tnr))
    den = tpr + tnr - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, np.clip((p + tnr - 1) / den, 0.0, 1.0), np.nan)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class Corrected:
    """A pass rate corrected for the judge's errors: ``rate`` with its interval, beside ``raw``."""

    raw: float
    rate: float
    ci_low: float
    ci_high: float
    level: float = 0.95

    def __float__(self) -> float:
        return self.rate

    def __str__(self) -> str:
        if math.isnan(self.rate):
            return f"raw {self.raw:.1%}, corrected n/a (the judge is no better than chance)"
        return (f"corrected {self.rate:.1%} ({self.level:.0%} CI {self.ci_low:.1%}–"
                f"{self.ci_high:.1%}), raw {self.raw:.1%}")


class Agreement:
    """A judge measured against people's labels (:func:`agreement`).

    ``kappa``, ``tpr``, ``tnr``, ``accuracy`` (on the held-out rows when there is a split),
    ``table`` (each with its bootstrap CI), ``confusion`` (people × judge), ``disagreements``,
    ``rows`` (every labelled row with its split) and ``corrected_rate(p)``.

    >>> a = agreement([0.9, 0.2, 0.8, 0.1], ["pass", "fail", "fail", "fail"], n_boot=0)
    >>> a.tpr, a.tnr, a.accuracy
    (1.0, 0.6666666666666666, 0.75)
    """

    def __init__(self, rows: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0, name: str = "judge", threshold: float = 0.5):
        self.rows = rows
        """Every labelled row: judge_score, judge (1 pass / 0 fail), human, agree, split,
        and the row's own columns."""
        self.n_boot, self.level, self.seed, self.name = n_boot, level, seed, name
        self.threshold = threshold
        """A judge's score passes at this or above."""
        m = self.measured
        self._j = m["judge"].to_numpy(dtype=float)
        self._h = m["human"].to_numpy(dtype=float)
        self._point = {k: float(v) for k, v in rates(*confusion_counts(self._j, self._h)).items()}
        self._boot: dict[str, np.ndarray] | None = None

    @property
    def measured(self) -> pd.DataFrame:
        """The rows the figures are measured on: the held-out ones when there is a split."""
        test = self.rows["split"] == "test"
        return self.rows[test] if test.any() else self.rows

    @property
    def n(self) -> int:
        return len(self.measured)

    @property
    def kappa(self) -> float:
        """Cohen's κ between the judge and people (NaN when either side never varies)."""
        return self._point["kappa"]

    @property
    def tpr(self) -> float:
        """Of the rows people pass, the share the judge passes."""
        return self._point["TPR"]

    @property
    def tnr(self) -> float:
        """Of the rows people fail, the share the judge fails."""
        return self._point["TNR"]

    @property
    def accuracy(self) -> float:
        return self._point["accuracy"]

    def _bootstrap(self) -> dict[str, np.ndarray]:
        import numpy as np

        if self._boot is None:
            n = self._j.size
            if self.n_boot <= 0 or n == 0:
                self._boot = {k: np.full(0, np.nan) for k in METRICS}
            else:
                idx = np.random.default_rng(self.seed).integers(0, n, size=(self.n_boot, n))
                self._boot = rates(*confusion_counts(self._j[idx], self._h[idx]))
        return self._boot

    def ci(self, metric: str) -> tuple[float, float]:
        """The bootstrap interval of ``TPR``, ``TNR``, ``accuracy`` or ``kappa``."""
        import numpy as np

        if metric not in METRICS:
            raise SpecError(f"agreement: no metric {metric!r}; one of {', '.join(METRICS)}")
        v = self._bootstrap()[metric]
        v = v[~np.isnan(v)]
        if v.size == 0:
            return (math.nan, math.nan)
        tail = (1 - self.level) / 2
        lo, hi = np.quantile(v, [tail, 1 - tail])
        return (float(lo), float(hi))

    @property
    def table(self) -> pd.DataFrame:
        """TPR, TNR, accuracy and κ with their bootstrap CIs and the rows behind each."""
        import pandas as pd

        tp, fn, fp, tn = confusion_counts(self._j, self._h)
        behind = {"TPR": tp + fn, "TNR": fp + tn, "accuracy": self.n, "kappa": self.n}
        out = []
        for k in METRICS:
            lo, hi = self.ci(k)
            out.append({"value": self._point[k], "ci_low": lo, "ci_high": hi,
                        "rows": int(behind[k])})
        return pd.DataFrame(out, index=pd.Index(list(METRICS), name="metric"))

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts: rows are people's labels, columns the judge's (pass first)."""
        import pandas as pd

        tp, fn, fp, tn = (int(x) for x in confusion_counts(self._j, self._h))
        return pd.DataFrame([[tp, fn], [fp, tn]],
                            index=pd.Index(["pass", "fail"], name="human"),
                            columns=pd.Index(["pass", "fail"], name="judge"))

    @property
    def disagreements(self) -> pd.DataFrame:
        """The measured rows where the judge and the person differ."""
        m = self.measured
        return m[~m["agree"]]

    def corrected_rate(self, p: float, n: int | None = None) -> Corrected:
        """The pass rate ``p`` a judge gave (on rows nobody labelled) corrected for its
        measured TPR/TNR (Rogan–Gladen), with a bootstrap interval; ``n``: the rows behind
        ``p`` (their sampling noise is added to the interval).

        >>> a = agreement([1, 1, 1, 0, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0], positive=1)
        >>> round(a.corrected_rate(0.5).rate, 3)   # TPR 0.75, TNR 0.75
        0.5
        """
        import numpy as np

        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise SpecError(f"corrected_rate: p={p!r} is a pass rate, between 0 and 1")
        rate = rogan_gladen(p, self.tpr, self.tnr)
        boot = self._bootstrap()
        if boot["TPR"].size == 0:
            return Corrected(p, rate, math.nan, math.nan, self.level)
        draws = np.full(boot["TPR"].size, p)
        if n:
            rng = np.random.default_rng(self.seed + 1)
            draws = rng.binomial(int(n), p, size=draws.size) / int(n)
        v = rogan_gladen(draws, boot["TPR"], boot["TNR"])
        v = v[~np.isnan(v)]
        if v.size == 0:
            return Corrected(p, rate, math.nan, math.nan, self.level)
        tail = (1 - self.level) / 2
        lo, hi = np.quantile(v, [tail, 1 - tail])
        return Corrected(p, rate, float(lo), float(hi), self.level)

    @property
    def sentence(self) -> str:
        where = "held-out " if (self.rows["split"] == "test").any() else ""
        return (f"{self.name} vs people on {plural(self.n, where + 'row')}: κ {self.kappa:.2f}, "
                f"TPR {self.tpr:.0%}, TNR {self.tnr:.0%}, accuracy {self.accuracy:.0%}")

    def __repr__(self) -> str:
        return f"<Agreement {self.sentence}>"

    def _repr_html_(self) -> str:
        t = self.table.copy()
        t["value"] = t["value"].map(lambda x: f"{x:.3f}")
        for c in ("ci_low", "ci_high"):
            t[c] = t[c].map(lambda x: "" if math.isnan(x) else f"{x:.3f}")
        dis = self.disagreements
        cols = [c for c in ("input", "output", "judge_score", "human_label", "note")
                if c in dis.columns]
        shown = dis[cols].head(10).map(
            lambda v: v[:80] + "…" if isinstance(v, str) and len(v) > 80 else v)
        return (f"<div class='{NO_MATH}'><b>Agreement</b> · {html.escape(self.sentence)}"
                f"<div style='display:flex;gap:16px'>{t.to_html()}{self.confusion.to_html()}"
                f"</div><details><summary>{plural(len(dis), 'disagreement')} (first 10)"
                f"</summary>{shown.to_html(escape=True, na_rep='')}</details></div>")


def split_rows(n: int, holdout: Any, seed: int) -> list[str]:
    """``"train"`` / ``"test"`` per row: a seeded share ``holdout`` of rows held out, or the
    given booleans (True: held out); ``"all"`` without a split."""
    import numpy as np

    if holdout is None or holdout is False:
        return ["all"] * n
    if isinstance(holdout, (int, float)) and not isinstance(holdout, bool):
        if not 0.0 < float(holdout) < 1.0:
            raise SpecError(f"agreement: holdout={holdout!r} is the share of rows held out, "
                            f"between 0 and 1 (e.g. 0.5)")
        k = max(1, round(n * float(holdout)))
        test = np.zeros(n, dtype=bool)
        test[np.random.default_rng(seed).permutation(n)[:k]] = True
    else:
        test = np.asarray(list(holdout), dtype=bool)
        if test.size != n:
            raise SpecError(f"agreement: holdout has {test.size} flags for {n} rows")
    return ["test" if t else "train" for t in test]


def agreement(judge_scores: Any, human_labels: Any, *, threshold: float = 0.5,
              positive: Any = "pass", holdout: float | Sequence[bool] | None = None,
              rows: pd.DataFrame | None = None, n_boot: int = 1000, level: float = 0.95,
              seed: int = 0, name: str = "judge") -> Agreement:
    """A judge's agreement with people on the same rows: TPR, TNR, accuracy, Cohen's κ (with
    bootstrap CIs), the confusion, the disagreements and ``corrected_rate(p)``.

    ``judge_scores``: scores in [0, 1] (pass at ``threshold``), bools or labels; or an eval
    report (``orchnb.evaluate(..., scorers=[judge])``), matched to a :class:`Labels` by row
    content. ``human_labels``: labels (``positive`` passes; None / "skip" rows are left out),
    a :class:`Labels` or the widget of :func:`orchnb.label`. ``holdout``: a share of rows (or
    flags) held out; figures are measured on those only. ``rows``: the rows' own columns
    (input, output, ...), kept in ``disagreements``.

    >>> a = orchnb.agreement(report, labels, holdout=0.5)     # doctest: +SKIP
    >>> a.kappa, a.table, a.corrected_rate(report.mean("judge"))  # doctest: +SKIP
    """
    frame = labelled_frame(judge_scores, human_labels, rows=rows, threshold=threshold,
                           positive=positive)
    frame["split"] = split_rows(len(frame), holdout, seed)
    keep = frame["human"].notna() & frame["judge"].notna()
    frame = frame[keep].copy()
    if frame.empty:
        raise SpecError("agreement: no row has both a judge score and a person's label; "
                        "label some rows (orchnb.label(...)) or check they are the same rows")
    frame["agree"] = frame["judge"] == frame["human"]
    return Agreement(frame, n_boot=n_boot, level=level, seed=seed, name=name,
                     threshold=threshold)
