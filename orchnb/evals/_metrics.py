"""Classification metrics over (true label, route) pairs, in plain numpy.

Definitions follow scikit-learn's (``precision_recall_fscore_support`` with ``zero_division=0``,
``confusion_matrix``, ``accuracy_score``) so the numbers match it exactly; the tests check that.
The bootstrap resamples rows with a seeded generator, so the same data give the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def label_order(y_true: Sequence[str], y_pred: Sequence[str],
                preferred: Sequence[str] = ()) -> list[str]:
    """Labels present in either sequence: ``preferred`` ones (the routes) first, in their order,
    then the rest sorted.

    >>> label_order(["b", "z"], ["a", "b"], preferred=["b", "a", "c"])
    ['b', 'a', 'z']
    """
    present = set(y_true) | set(y_pred)
    first = [x for x in preferred if x in present]
    return first + sorted(present - set(first))


def encode(values: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Each value's index in ``labels``."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Counts: rows are true labels, columns predictions (as ``sklearn.metrics.confusion_matrix``).

    >>> import numpy as np
    >>> confusion(np.array([0, 0, 1]), np.array([0, 1, 1]), 2).tolist()
    [[1, 1], [0, 1]]
    """
    import numpy as np

    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def normalized(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (a label with no rows gives zeros), as sklearn's
    ``normalize="true"``."""
    import numpy as np

    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)


@dataclass(frozen=True)
class Scores:
    """Per-label precision, recall, F1 and support, and their macro / weighted averages."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    """Rows whose true label is this label."""
    predicted: np.ndarray
    """Rows routed to this label."""

    def macro(self, skip: int | None = None) -> tuple[float, float, float]:
        """Unweighted means of precision, recall and F1 over the labels (but label ``skip``:
        sklearn's ``labels=`` without it)."""
        import numpy as np

        keep = np.ones(len(self.f1), dtype=bool)
        if skip is not None:
            keep[skip] = False
        if not keep.any():
            return (0.0, 0.0, 0.0)
        return (float(self.precision[keep].mean()), float(self.recall[keep].mean()),
                float(self.f1[keep].mean()))

    def weighted(self) -> tuple[float, float, float]:
        """Means weighted by support (0 when no label has support)."""
        import numpy as np

        total = self.support.sum()
        if total == 0:
            return (0.0, 0.0, 0.0)
        w = self.support / total
        return tuple(float(np.dot(w, v)) for v in (self.precision, self.recall, self.f1))  # type: ignore[return-value]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.divide(num, den, out=np.zeros(num.shape, dtype=float), where=den > 0)


def scores(cm: np.ndarray) -> Scores:
    """Scores from a confusion matrix (``zero_division=0``, as sklearn with that setting).

    >>> import numpy as np
    >>> s = scores(np.array([[1, 1], [0, 1]]))
    >>> s.precision.tolist(), s.recall.tolist()
    ([1.0, 0.5], [0.5, 1.0])
    """
    tp = cm.diagonal().astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted.astype(float))
    recall = _safe_div(tp, support.astype(float))
    # sklearn's F1: 2·tp / (2·tp + fp + fn), which is 2PR/(P+R) wherever both are defined.
    f1 = _safe_div(2 * tp, (support + predicted).astype(float))
    return Scores(precision, recall, f1, support, predicted)


def percentiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """``numpy.percentile`` (linear interpolation) ignoring NaN; NaN for no values."""
    import numpy as np

    v = values[~np.isnan(values)]
    if v.size == 0:
        return [float("nan")] * len(qs)
    return [float(x) for x in np.percentile(v, qs)]


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap intervals for accuracy and macro F1."""

    accuracy: tuple[float, float]
    macro_f1: tuple[float, float]
    level: float
    n_boot: int
    seed: int


def bootstrap(y_true: np.ndarray, y_pred: np.ndarray, k: int, *, n_boot: int = 1000,
              level: float = 0.95, seed: int = 0, skip: int | None = None) -> Bootstrap:
    """Resample rows with replacement ``n_boot`` times (``numpy.random.default_rng(seed)``)
    and take the ``level`` percentile interval of accuracy and of macro F1.

    Macro F1 in a resample averages over the labels present in it, as sklearn would.

    >>> import numpy as np
    >>> b = bootstrap(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), 2, n_boot=200, seed=1)
    >>> b == bootstrap(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), 2, n_boot=200, seed=1)
    True
    """
    import numpy as np

    n = len(y_true)
    if n == 0 or n_boot <= 0:
        nan = (float("nan"), float("nan"))
        return Bootstrap(nan, nan, level, n_boot, seed)
    rng = np.random.default_rng(seed)
    codes = y_true * k + y_pred
    acc = np.empty(n_boot)
    f1 = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // n))  # bounded memory: ~16 MB of indices at a time
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        flat = (codes[idx] + (np.arange(b) * k * k)[:, None]).ravel()
        cms = np.bincount(flat, minlength=b * k * k).reshape(b, k, k)
        tp = np.einsum("bii->bi", cms).astype(float)
        rows, cols = cms.sum(axis=2), cms.sum(axis=1)
        den = (rows + cols).astype(float)
        f = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
        present = den > 0
        if skip is not None:
            present[:, skip] = False
        acc[start:start + b] = tp.sum(axis=1) / n
        f1[start:start + b] = (f * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(acc, [tail, 1 - tail])
    flo, fhi = np.quantile(f1, [tail, 1 - tail])
    return Bootstrap((float(lo), float(hi)), (float(flo), float(fhi)), level, n_boot, seed)


def bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` seeded resampled means of ``values`` (no NaN), drawn in chunks of at most
    ~2M indices so a long column does not allocate an n_boot × n matrix at once."""
    import numpy as np

    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // values.size))
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        means[start:start + k] = values[rng.integers(0, values.size, size=(k, values.size))
                                        ].mean(axis=1)
    return means


def pareto_front(cost: Sequence[float], quality: Sequence[float]) -> list[bool]:
    """Which points no other point beats (cheaper or equal *and* better or equal, one strictly).
    A point with an unknown (NaN) cost or quality is never on the front.

    >>> pareto_front([1.0, 2.0, 3.0, 2.5], [0.5, 0.8, 0.9, 0.7])
    [True, True, True, False]
    """
    import math

    pts = list(zip(cost, quality))
    out = []
    for i, (c, q) in enumerate(pts):
        if math.isnan(c) or math.isnan(q):
            out.append(False)
            continue
        beaten = any(
            j != i and not (math.isnan(c2) or math.isnan(q2))
            and c2 <= c and q2 >= q and (c2 < c or q2 > q)
            for j, (c2, q2) in enumerate(pts))
        out.append(not beaten)
    return out


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the ``positive`` rows (ties count half), as
    ``sklearn.metrics.roc_auc_score``; NaN when one class is absent.

    >>> import numpy as np
    >>> auroc(np.array([True, False, True, False]), np.array([0.9, 0.1, 0.4, 0.4]))
    0.875
    """
    import numpy as np

    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    s = np.asarray(score, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties (the Mann–Whitney U statistic)
    starts = np.r_[0, np.flatnonzero(sorted_s[1:] != sorted_s[:-1]) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
