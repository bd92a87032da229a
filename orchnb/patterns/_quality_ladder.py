"""A ladder of models by price: predict each model's score on a query, then take the cheapest
model that is predicted to do (almost) as well as every dearer one.

The rule, for predicted scores ``q_0 .. q_m`` (cheapest first) and a threshold ``t``: choose the
cheapest ``i`` with ``q_i >= max(q_j for j > i) - t``. With two models it is the two-model rule
(strong when the predicted gain ``q_1 - q_0`` exceeds ``t``); a larger ``t`` sends more queries
down the ladder, and as ``t`` falls every query climbs monotonically, so one knob traces the
quality-cost curve from all-cheapest to all-dearest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..engine import RunContext
from ..exceptions import SpecError
from ._classify import Prediction, embed_traced
from ._quality_heads import apply, fold_ids, out_of_fold, train
from ._quality_scorer import QualityScorer
from ._step import Vars

CUTS = 512
"""Thresholds tried along the curve (quantiles of the rows' switch points)."""


def switch_points(pred: Any) -> Any:
    """``d[:, i] = max(pred[:, j] for j > i) - pred[:, i]``: the threshold at or above which
    model ``i`` is good enough for the row (``-inf`` for the dearest: always good enough).

    >>> switch_points([[0.2, 0.5, 0.4]]).tolist()
    [[0.3, -0.09999999999999998, -inf]]
    """
    import numpy as np

    p = np.atleast_2d(np.asarray(pred, dtype=float))
    after = np.maximum.accumulate(p[:, ::-1], axis=1)[:, ::-1]  # max over j >= i
    best_dearer = np.c_[after[:, 1:], np.full(len(p), -np.inf)]
    return best_dearer - p


def ladder_choice(pred: Any, threshold: float) -> Any:
    """The ladder index chosen for each row of predicted scores at ``threshold``.

    >>> ladder_choice([[0.2, 0.5, 0.4], [0.9, 0.5, 0.4]], 0.0).tolist()
    [1, 0]
    """
    import numpy as np

    return np.argmax(switch_points(pred) <= threshold, axis=1)


def ladder_thresholds(pred: Any) -> Any:
    """Thresholds that trace the whole curve, highest (all cheapest) to lowest (all dearest)."""
    import numpy as np

    d = switch_points(pred)
    d = d[np.isfinite(d)]
    if not len(d):
        return np.array([0.0])
    cuts = np.unique(np.quantile(d, np.linspace(0, 1, CUTS))) if len(d) > CUTS else np.unique(d)
    return np.r_[cuts.max() + 1.0, cuts[::-1], cuts.min() - 1.0]


def ladder_sweep(pred: Any, scores: Any, costs: Any | None, cuts: Any) -> dict[str, Any]:
    """At each threshold in ``cuts``: mean realised score, mean cost (None when unknown),
    mean ladder position (0 = all cheapest, 1 = all dearest), each model's share, and the
    model picked for each row (``picks``, cuts × rows)."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    n, m = s.shape
    d = switch_points(pred)  # once; each cut only compares against it
    cuts = np.asarray(cuts, dtype=float)
    picks = np.empty((len(cuts), n), dtype=int)
    for i in range(0, len(cuts), 32):  # bounded memory: 32 cuts x rows x models at a time
        block = cuts[i:i + 32]
        picks[i:i + 32] = np.argmax(d[None, :, :] <= block[:, None, None], axis=2)
    rows = np.arange(n)
    shares = np.stack([(picks == j).mean(axis=1) for j in range(m)], axis=1)
    return {"threshold": cuts, "quality": s[rows, picks].mean(axis=1),
            "cost": (np.asarray(costs, dtype=float)[rows, picks].mean(axis=1)
                     if costs is not None else None),
            "position": picks.mean(axis=1) / max(1, m - 1), "shares": shares, "picks": picks}


def ladder_area(x: Any, pgr: Any) -> float:
    """Area under PGR against ``x`` (cost or position scaled so cheapest-only is 0 and
    dearest-only 1), the curve sorted by ``x``; the ladder's APGR."""
    import numpy as np

    order = np.argsort(x, kind="stable")
    return float(np.trapezoid(np.asarray(pgr)[order], np.asarray(x)[order]))


class LadderScorer:
    """Predicts each ladder model's score on a query from its embedding (the router's
    classifier). The head (kNN or ridge, and its knob) is chosen as the two-model scorer
    chooses it, on the gain of the dearest model over the cheapest, then fitted to every
    model's scores; ``oof`` holds out-of-fold predictions (rows × models) used to set the
    threshold."""

    kind = "classifier"
    model_attrs: ClassVar[tuple[str, ...]] = ("embedder",)

    def __init__(self, texts: Sequence[str], scores: Any, labels: Sequence[str], *,
                 embed: Any = "sim", method: str = "auto", seed: int = 0,
                 name: str = "quality", vectors: Any = None,
                 groups: Sequence[Any] | None = None):
        import numpy as np

        s = np.asarray(scores, dtype=float)
        if s.ndim != 2 or s.shape[1] != len(labels) or len(labels) < 2:
            raise SpecError(f"a ladder needs one score column per model (2 or more); got "
                            f"{s.shape[1] if s.ndim == 2 else 0} for {len(labels)} models",
                            key="scores")
        # Head choice and the embedding, as for two models: on the dearest's gain.
        self.base = QualityScorer(texts, s[:, -1] - s[:, 0], embed=embed, method=method,
                                  seed=seed, name=name, vectors=vectors, groups=groups)
        self.name, self.labels, self.scores_ = name, list(labels), s
        self.embedder, self.head = self.base.embedder, self.base.head
        fold = fold_ids(len(s), seed, groups)
        x = self.base._x
        # Every model's column at once: one similarity pass (kNN) or one solve (ridge).
        self.oof = out_of_fold([self.head], x, s, fold)[0]
        self._fit = train(self.head, x, s)
        self.threshold = 0.0
        """Model ``i`` is good enough when its predicted score is at least every dearer
        model's minus this (the router sets it)."""

    @property
    def trained_on(self) -> frozenset[bytes]:
        return self.base.trained_on

    @property
    def embedded(self) -> dict[str, Any]:
        return self.base.embedded

    @property
    def texts(self) -> list[str]:
        return self.base.texts

    def predict_vectors(self, vectors: Any) -> Any:
        """Predicted scores (rows × models) of embedding rows."""
        import numpy as np

        return np.asarray(apply(self.head, self._fit, self.base.prepare(vectors)))

    def predicted(self, texts: Sequence[str]) -> Any:
        """Predicted scores (rows × models) of ``texts`` (embedded outside any run, counted in
        :attr:`embedded`)."""
        from ._quality_scorer import embed_counted

        vectors, cost = embed_counted(self.embedder, [str(t) for t in texts])
        self.base.embedded["scoring"].add(cost)
        return self.predict_vectors(vectors)

    def threshold_for(self, knob: str, value: float, costs: Any | None) -> float:
        """The threshold meeting a target on the out-of-fold predictions: ``quality`` (share
        of the cheapest-to-dearest gap, at least, at the lowest cost), ``budget_per_1k``
        (dollars per 1,000 queries, at most, at the best quality) or ``strong_share`` (share
        of queries sent above the cheapest model, as near as ties allow; at equal shares the
        best quality)."""
        import numpy as np

        cost_rows = None if costs is None else np.broadcast_to(costs, self.scores_.shape)
        got = ladder_sweep(self.oof, self.scores_, cost_rows, ladder_thresholds(self.oof))
        price = got["cost"] if got["cost"] is not None else got["position"]
        if knob == "strong_share":
            miss = np.abs((1 - got["shares"][:, 0]) - value)
            near = np.flatnonzero(miss <= miss.min() + 1e-12)
            return float(got["threshold"][near[np.argmax(got["quality"][near])]])
        if knob == "budget_per_1k":
            ok = np.flatnonzero(got["cost"] * 1000 <= value + 1e-12)
            if not len(ok):
                return float(got["threshold"][0])  # all cheapest: the least it can spend
            return float(got["threshold"][ok[np.argmax(got["quality"][ok])]])
        low, high = self.scores_[:, 0].mean(), self.scores_[:, -1].mean()
        if high <= low:
            raise SpecError("the dearest model does not score higher than the cheapest on "
                            "these examples, so no share of the gap can be targeted; set "
                            "threshold= instead", key="quality")
        ok = np.flatnonzero(got["quality"] >= low + value * (high - low) - 1e-12)
        if not len(ok):
            return float(got["threshold"][-1])  # all dearest
        return float(got["threshold"][ok[np.argmin(price[ok])]])

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        vector = (await embed_traced(ctx, self.embedder, [text], self.name))[0]
        pred = self.predict_vectors([vector])
        pick = int(ladder_choice(pred, self.threshold)[0])
        label = self.labels[pick]
        meta = {"predicted": {k: round(float(v), 4) for k, v in zip(self.labels, pred[0],
                                                                      strict=True)},
                "threshold": self.threshold, "method": str(self.head)}
        return Prediction(f"{label} (predicted {float(pred[0, pick]):.3f})", label,
                          float(pred[0, pick]), None, meta)

    @property
    def _texts(self) -> list[str]:  # what the router's preview counts
        return self.base.texts

    @property
    def _vectors(self) -> Any:  # embedded when built: the preview notes no extra call
        return self.base._x

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "kind": "classifier", "role": "classifier",
                "embed": self.embedder.id, "method": str(self.head),
                "examples": len(self.base.texts), "ladder": self.labels}

    def __repr__(self) -> str:
        return (f"LadderScorer({self.embedder.id!r}, {self.head}, {len(self.labels)} models, "
                f"{len(self.base.texts)} examples)")
