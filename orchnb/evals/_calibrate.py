"""``calibrate``: pick an embedding router's abstention threshold on a validation split.

The router runs once on the validation rows with no threshold (every row answered); each
candidate threshold is then a recount from the unrounded scores, with no new calls. A row whose
score is below the threshold abstains: it goes to the router's default route, which is right
when its true label is that route (out-of-scope rows, CLINC150's ``oos``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from . import _metrics as m
from ._evaluate import evaluate

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

    from ._report import EvalReport

OBJECTIVES = ("accuracy", "in_scope_accuracy", "oos_recall", "oos_f1", "balanced", "macro_f1")
"""What ``calibrate`` maximises: overall accuracy (out-of-scope rows right when they abstain),
in-scope accuracy, OOS recall or F1, ``balanced`` (the mean of in-scope accuracy and OOS
recall), or macro F1 over the labels."""


@dataclass
class Calibration:
    """The threshold ``calibrate`` chose and the evidence: ``sweep`` (one row per candidate
    threshold, with every objective's value on the validation rows) and ``report`` (the
    validation eval with no threshold)."""

    threshold: float | None
    objective: str
    value: float
    """The objective's value on the validation rows at ``threshold``."""
    constraints: dict[str, float]
    sweep: pd.DataFrame = field(repr=False)
    report: EvalReport = field(repr=False)
    previous: float | None = None

    @property
    def chosen(self) -> pd.Series:
        """The sweep's row at the chosen threshold."""
        return self.sweep.loc[self.sweep["chosen"]].iloc[0]

    def plot(self) -> go.Figure:
        """The objectives against the threshold on the validation rows; the choice marked."""
        import plotly.graph_objects as go

        s = self.sweep
        fig = go.Figure()
        cols = [c for c in ("accuracy", "in_scope_accuracy", "oos_recall", "oos_precision",
                            "abstention_rate") if c in s and s[c].notna().any()]
        for c in cols:
            fig.add_trace(go.Scatter(x=s["threshold"], y=s[c], mode="lines", name=c))
        if self.threshold is not None:
            fig.add_vline(x=self.threshold, line_dash="dash",
                          annotation_text=f"chosen {self.threshold:.3f}")
        fig.update_layout(title=f"Calibration on validation rows: max {self.objective}",
                          xaxis_title="threshold", yaxis_tickformat=".0%",
                          template="plotly_white", height=400)
        return fig

    def __repr__(self) -> str:
        t = "none" if self.threshold is None else f"{self.threshold:.4f}"
        c = self.chosen
        extra = "".join(f", {k} {c[k]:.1%}" for k in ("in_scope_accuracy", "oos_recall")
                        if k in c and not math.isnan(c[k]))
        cons = "".join(f"; {k} ≥ {v:g}" for k, v in self.constraints.items())
        return (f"<Calibration: threshold {t} maximises {self.objective} on validation "
                f"({self.value:.1%}{extra}{cons})>")


def calibrate(router: Any, val: Any, *, text: str = "text", label: str = "label",
              objective: str = "accuracy", min_oos_recall: float | None = None,
              min_in_scope_accuracy: float | None = None, apply: bool = True,
              progress: bool = False, **options: Any) -> Calibration:
    """Choose the abstention threshold of an embedding router on validation rows and set it.

    ``objective`` (see ``OBJECTIVES``) is maximised over every distinct score, optionally
    subject to ``min_oos_recall`` / ``min_in_scope_accuracy``. The chosen threshold lies
    halfway between two neighbouring validation scores (the same validation outcome, less
    sensitive to noise). ``apply=False`` only reports. ``options`` go to ``evaluate``.

    >>> cal = orchnb.calibrate(router, val, label="intent", objective="in_scope_accuracy",
    ...                        min_oos_recall=0.5)                       # doctest: +SKIP
    >>> cal.threshold, router.classifier.threshold                       # doctest: +SKIP
    """
    if objective not in OBJECTIVES:
        raise SpecError(f"calibrate: unknown objective {objective!r}; use one of "
                        f"{', '.join(OBJECTIVES)}")
    clf = getattr(router, "classifier", None)
    if clf is None or not hasattr(clf, "threshold") or not hasattr(clf, "route_scores"):
        raise SpecError(f"calibrate: router {getattr(router, 'name', router)!r} has no "
                        f"threshold to calibrate; it needs an EmbeddingClassifier")
    if router.default is None:
        raise SpecError(f"calibrate: router '{router.name}' has no default route to abstain "
                        f"to; set default= (e.g. an out-of-scope route)")
    previous = clf.threshold
    clf.threshold = None
    try:
        report = evaluate(router, val, text=text, label=label, progress=progress, **options)
    finally:
        clf.threshold = previous
    sweep = sweep_scores(report, with_macro=objective == "macro_f1")
    ok = sweep[objective].notna()
    constraints = {}
    if min_oos_recall is not None:
        ok &= sweep["oos_recall"] >= min_oos_recall - 1e-12
        constraints["oos_recall"] = min_oos_recall
    if min_in_scope_accuracy is not None:
        ok &= sweep["in_scope_accuracy"] >= min_in_scope_accuracy - 1e-12
        constraints["in_scope_accuracy"] = min_in_scope_accuracy
    if not ok.any():
        raise SpecError(f"calibrate: no threshold meets {constraints} on the validation rows; "
                        f"loosen the constraint (the best OOS recall is "
                        f"{sweep['oos_recall'].max():.1%})")
    best = sweep.loc[ok, objective].max()
    # The lowest threshold reaching the best value: abstain no more than needed.
    pick = sweep.index[ok & (sweep[objective] >= best - 1e-12)][0]
    sweep["chosen"] = False
    sweep.loc[pick, "chosen"] = True
    t = sweep.loc[pick, "threshold"]
    threshold = None if t == -math.inf else float(t)
    if apply:
        clf.threshold = threshold
    return Calibration(threshold, objective, float(best), constraints, sweep, report, previous)


def sweep_scores(report: EvalReport, with_macro: bool = False) -> pd.DataFrame:
    """Every distinct threshold over the report's unrounded scores and the metrics there."""
    import numpy as np
    import pandas as pd

    p = report.predictions
    score = p["score"].to_numpy(dtype=float)
    if np.isnan(score).all():
        raise SpecError(f"calibrate: router '{report.name}' produced no scores")
    labels = p["label"].astype(str).to_numpy(dtype=object)
    nearest = p["raw_label"].astype(str).to_numpy(dtype=object)
    fallback = report.router.default
    oos = labels == fallback
    has = ~np.isnan(score)
    distinct = np.unique(score[has])
    # Halfway between neighbours; -inf: never abstain; above the top: always abstain.
    cuts = np.r_[-np.inf, (distinct[:-1] + distinct[1:]) / 2, distinct[-1] + 1e-9]
    rows = []
    for t in cuts:
        abstain = has & (score < t)
        route = np.where(abstain, fallback, nearest)
        correct = route == labels
        pred_oos = route == fallback
        hit = (oos & pred_oos).sum()
        row = {"threshold": float(t), "accuracy": float(correct.mean()),
               "abstention_rate": float(abstain.mean()),
               "in_scope_accuracy": float(correct[~oos].mean()) if (~oos).any() else math.nan,
               "oos_recall": float(hit / oos.sum()) if oos.any() else math.nan,
               "oos_precision": float(hit / pred_oos.sum()) if pred_oos.any() else 0.0}
        den = oos.sum() + pred_oos.sum()
        row["oos_f1"] = float(2 * hit / den) if oos.any() and den else math.nan
        row["balanced"] = (row["in_scope_accuracy"] + row["oos_recall"]) / 2
        if with_macro:
            row["macro_f1"] = _macro(labels, route, list(report.router.routes))
        rows.append(row)
    out = pd.DataFrame(rows)
    if not with_macro:
        out["macro_f1"] = math.nan
    return out


def _macro(labels: np.ndarray, route: np.ndarray, routes: list[str]) -> float:
    y_true, y_pred = labels.tolist(), route.astype(str).tolist()
    labs = m.label_order(y_true, y_pred, routes)
    cm = m.confusion(m.encode(y_true, labs), m.encode(y_pred, labs), len(labs))
    return m.scores(cm).macro()[2]
