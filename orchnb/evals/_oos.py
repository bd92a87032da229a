"""Out-of-scope metrics of a router eval: when the user names an out-of-scope route
(``oos_label=``, CLINC150's ``oos``), how well abstaining catches the rows labelled with it.

A default route is not out of scope by itself: a ticket router's ``default="technical"`` is an
ordinary route, and reading it as "out of scope" would show a meaningless box."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import _metrics as m

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class OutOfScope:
    """Mixed into :class:`~orchnb.evals.EvalReport`: ``in_scope_accuracy``, ``oos_precision``,
    ``oos_recall``, ``oos_f1``, ``abstention_auroc`` and ``risk_coverage()``."""

    router: Any
    predictions: pd.DataFrame
    n: int
    _pred_arr: np.ndarray
    _oos_label: str | None

    @property
    def oos_label(self) -> str | None:
        """The out-of-scope route given as ``evaluate(..., oos_label=)``, when some rows carry
        it as their true label; None otherwise (then every OOS metric is NaN)."""
        d = self._oos_label
        return d if d is not None and bool((self.predictions["label"] == d).any()) else None

    def _oos(self) -> tuple[Any, Any]:
        import numpy as np

        p = self.predictions
        oos = self.oos_label
        true = (p["label"] == oos).to_numpy()
        pred = (self._pred_arr == oos) if oos is not None else np.zeros(self.n, dtype=bool)
        return true, pred

    @property
    def in_scope_accuracy(self) -> float:
        """Accuracy on the rows whose true label is not the out-of-scope one (NaN when the
        router has no out-of-scope route among the labels)."""
        if self.oos_label is None:
            return math.nan
        true, _ = self._oos()
        return float(self.predictions["correct"].to_numpy()[~true].mean())

    @property
    def oos_precision(self) -> float:
        """Of the rows sent to the out-of-scope route, the share that were out of scope."""
        if self.oos_label is None:
            return math.nan
        true, pred = self._oos()
        return float((true & pred).sum() / pred.sum()) if pred.sum() else 0.0

    @property
    def oos_recall(self) -> float:
        """Of the out-of-scope rows, the share sent to the out-of-scope route."""
        if self.oos_label is None:
            return math.nan
        true, pred = self._oos()
        return float((true & pred).sum() / true.sum())

    @property
    def oos_f1(self) -> float:
        if self.oos_label is None:
            return math.nan
        true, pred = self._oos()
        den = true.sum() + pred.sum()
        return float(2 * (true & pred).sum() / den) if den else 0.0

    @property
    def abstention_auroc(self) -> float:
        """How well the classifier's score separates out-of-scope rows (low score) from the
        rest: sklearn's ``roc_auc_score(is_oos, -score)``. NaN without scores or OOS rows."""
        import numpy as np

        if self.oos_label is None:
            return math.nan
        s = self.predictions["score"].to_numpy(dtype=float)
        true, _ = self._oos()
        keep = ~np.isnan(s)
        return m.auroc(true[keep], -s[keep])

    def risk_coverage(self) -> pd.DataFrame:
        """Answer only the rows scored at or above a threshold: ``coverage`` (share of rows
        answered) against ``risk`` (share of the answered rows routed wrongly; an answered
        out-of-scope row is wrong), one row per distinct score, highest first."""
        import numpy as np
        import pandas as pd

        p = self.predictions
        s = p["score"].to_numpy(dtype=float)
        keep = ~np.isnan(s)
        answer = p["raw_label"].astype(str).to_numpy()[keep]
        right = (answer == p["label"].astype(str).to_numpy()[keep]).astype(float)
        order = np.argsort(-s[keep], kind="stable")
        ss, rr = s[keep][order], right[order]
        answered = np.arange(1, len(ss) + 1)
        last = np.r_[ss[1:] != ss[:-1], True]  # ties answer together
        risk = 1 - np.cumsum(rr) / answered
        return pd.DataFrame({"threshold": ss[last], "coverage": answered[last] / max(self.n, 1),
                             "risk": risk[last]})

    def _oos_at(self, route: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        oos = self.oos_label
        if oos is None:
            return {}
        true, pred = labels == oos, route == oos
        hit = (true & pred).sum()
        return {"in_scope_accuracy": float((route == labels)[~true].mean()),
                "oos_recall": float(hit / true.sum()),
                "oos_precision": float(hit / pred.sum()) if pred.sum() else 0.0}
