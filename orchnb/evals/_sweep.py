"""An embedding router's threshold swept over the similarities one eval already computed: each
threshold is a recount of the same rows, no new call."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..viz import NO_ROUTE
from . import _metrics as m
from ._costs import describe_classifier

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ._report import EvalReport


def threshold_sweep(report: EvalReport, thresholds: Any = None) -> pd.DataFrame:
    """See :meth:`EvalReport.threshold_sweep`."""
    import numpy as np
    import pandas as pd

    p = report.predictions
    sim = p["score"].to_numpy(dtype=float)
    has = ~np.isnan(sim)
    if not has.any():
        raise SpecError(f"threshold_sweep: router '{report.router.name}' has no similarities "
                        f"to sweep ({describe_classifier(report.router)}); it needs an "
                        f"embedding classifier (EmbeddingClassifier or classifier: "
                        f"{{embed: ...}})")
    if thresholds is None:
        thresholds = np.linspace(np.nanmin(sim), np.nanmax(sim), 21)
    nearest = p["raw_label"].astype(object).to_numpy()
    fallback = report.router.default if report.router.default is not None else NO_ROUTE
    labels = p["label"].astype(str).to_numpy(dtype=object)
    rows = []
    for t in np.asarray(thresholds, dtype=float):
        abstain = has & (sim < t)
        route = np.where(has, np.where(abstain, fallback, nearest), report._pred_arr)
        rows.append({"threshold": float(t), **_at(report, route, labels, abstain, has)})
    return pd.DataFrame(rows)


def _at(report: EvalReport, route: np.ndarray, labels: np.ndarray, abstain: np.ndarray,
        has: np.ndarray) -> dict[str, float]:
    """The report's numbers had the rows taken ``route``."""
    correct = route == labels
    answered = ~abstain & has
    y_pred = route.astype(str).tolist()
    labs = m.label_order(labels.tolist(), y_pred, list(report.router.routes))
    cm = m.confusion(m.encode(labels.tolist(), labs), m.encode(y_pred, labs), len(labs))
    skip = labs.index(NO_ROUTE) if NO_ROUTE in labs and not report.include_no_route else None
    exp = report.expensive_route
    usd = report.predictions["classifier_usd"].to_numpy(dtype=float).sum() + (
        report._mix_rows(route).sum())
    return {
        "accuracy": float(correct.mean()),
        "answered_accuracy": float(correct[answered].mean()) if answered.any() else math.nan,
        "abstention_rate": float(abstain.mean()),
        "macro_f1": m.scores(cm).macro(skip)[2],
        "expensive_share": float((route == exp).mean()),
        "quality": float((correct | (route == exp)).mean()),
        "cost_per_1k": float(usd / report.n * 1000),
        **report._oos_at(route, labels),
    }
