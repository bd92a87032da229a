"""The heads a quality scorer chooses from, and how it chooses: a similarity-weighted kNN mean of
the gain (several ``k``), a ridge regression (numpy only), optionally plus a term in the prompt's
log length; out-of-fold scores over random folds, or folds by group (``groups=``: a topic, a
subject) when the router must work on topics it has not seen.

Why a blend: on topics the examples lack, kNN (a neighbourhood's gain) and ridge (a direction
in embedding space) err differently; their z-scored mix, its weight chosen by cross-validation
(folded by group with ``groups=``), beat either alone across MMLU subjects (0.608 against
0.598 for ridge and 0.590 for kNN, five folds of the subjects, five seeds).

Why centred vectors: MiniLM's vectors share a large common direction, so raw cosine
neighbours are partly "sentences of the same shape"; subtracting the examples' mean vector
(then re-normalising) lifted kNN across subjects from 0.577 to 0.590 and changes the ridge
head little (it has an intercept).

Why a length term: on MMLU the strong model's gain grows with the prompt's length (long reading
passages, long calculations) in every subject, so it carries over to unseen subjects, where the
neighbours' gain (their subject's base rate) carries over poorly. It is kept only when
cross-validation favours it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import SpecError

KS = (10, 25, 50, 100, 200)
"""The neighbour counts tried by ``method="auto"`` / ``"knn"``."""
ALPHAS = (1.0, 10.0)
"""The ridge penalties tried by ``method="auto"`` / ``"linear"``."""
MIXES = (0.25, 0.5, 0.75)
"""Weights of the kNN part tried in a blend of the best kNN and the best ridge head."""
LENGTHS = (0.5, 1.0, 2.0)
"""Weights of the log-length term tried (in standard deviations of the head's score)."""
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Head:
    """One candidate scorer: ``method`` ("knn", "linear" or "blend"), its knob (k, alpha, or
    the kNN part's weight in a blend) and the weight of the prompt-length term (0: none). A
    blend mixes the z-scored kNN head ``k`` and ridge head ``alpha``."""

    method: str
    knob: float
    length: float = 0.0
    k: int = 0
    alpha: float = 0.0

    def __str__(self) -> str:
        base = (f"knn(k={int(self.knob)})" if self.method == "knn"
                else f"linear(alpha={self.knob:g})" if self.method == "linear"
                else f"{self.knob:g}*knn(k={self.k})+{1 - self.knob:g}*linear("
                     f"alpha={self.alpha:g})")
        return base + (f"+length({self.length:g})" if self.length else "")

    def parts(self) -> tuple[Head, Head]:
        """A blend's kNN and ridge heads."""
        return Head("knn", self.k), Head("linear", self.alpha)

    def parts_names(self) -> tuple[str, str]:
        """The names of a blend's two parts."""
        return tuple(str(h) for h in self.parts())  # type: ignore[return-value]

    def with_length(self, weight: float) -> Head:
        """This head with a length term of ``weight``."""
        return Head(self.method, self.knob, weight, self.k, self.alpha)


def fold_ids(n: int, seed: int, groups: Sequence[Any] | None = None) -> Any:
    """The fold of each of ``n`` rows: random, or whole groups to a fold (round robin over the
    groups in a seeded order), so a head is scored on groups it did not learn from."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.permutation(n) % FOLDS
    if len(groups) != n:
        raise SpecError(f"groups has {len(groups)} values for {n} examples; give one per "
                        f"example (e.g. its topic)", key="groups")
    names, index = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    if len(names) < 2:
        raise SpecError("groups= needs 2 groups or more to hold some out; got "
                        f"{len(names)}", key="groups")
    order = np.empty(len(names), dtype=int)
    order[rng.permutation(len(names))] = np.arange(len(names))
    return order[index] % min(FOLDS, len(names))


def train(head: Head, x: Any, y: Any, zstats: Any = (0.0, 1.0, 0.0, 1.0)) -> Any:
    """What the head keeps: the examples (kNN), the ridge weights and intercept, or both
    parts of a blend with ``zstats`` (mean and spread of each part's out-of-fold scores, to
    z-score them; left out, the parts mix in the scores' own units)."""
    import numpy as np

    if head.method == "blend":
        knn, ridge = head.parts()
        return train(knn, x, y), train(ridge, x, y), tuple(zstats)
    if head.method == "knn":
        return (x, y)
    mx, my = x.mean(axis=0), y.mean(axis=0)  # y may have a column per model (a ladder)
    xc = x - mx
    if len(xc) < xc.shape[1]:  # fewer rows than dimensions: the same weights, a smaller solve
        w = xc.T @ np.linalg.solve(xc @ xc.T + head.knob * np.eye(len(xc)), y - my)
    else:
        w = np.linalg.solve(xc.T @ xc + head.knob * np.eye(x.shape[1]), xc.T @ (y - my))
    return (w, my - mx @ w)


def apply(head: Head, fitted: Any, q: Any) -> Any:
    """The head's score (its predicted gain, no length term) of unit rows ``q``."""
    if head.method == "blend":
        knn, ridge = head.parts()
        fk, fr, (mk, sk, mr, sr) = fitted
        # z-scored parts mixed, then back in the kNN part's units: a predicted gain still.
        return mk + sk * (head.knob * (apply(knn, fk, q) - mk) / sk
                          + (1 - head.knob) * (apply(ridge, fr, q) - mr) / sr)
    if head.method == "linear":
        w, b = fitted
        return q @ w + b
    x, y = fitted
    return knn_many(x, y, q, [int(head.knob)])[0]


def knn_many(x: Any, y: Any, q: Any, ks: Sequence[int]) -> list[Any]:
    """Similarity-weighted mean of ``y`` over the ``k`` nearest rows of ``x``, for each ``k``
    (one similarity pass for all of them). ``y`` may have columns (one per model of a
    ladder): then each output has them too."""
    import numpy as np

    kmax = max(1, min(max(ks), len(y)))
    outs = [np.empty((len(q), *np.shape(y)[1:])) for _ in ks]
    for i in range(0, len(q), 2048):  # bounded memory: a block of queries at a time
        sims = q[i:i + 2048] @ x.T
        top = np.argpartition(-sims, kmax - 1, axis=1)[:, :kmax]
        w = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-w, axis=1)
        w = np.clip(np.take_along_axis(w, order, axis=1), 1e-6, None)
        wide = w if np.ndim(y) == 1 else w[:, :, None]
        wy = wide * y[np.take_along_axis(top, order, axis=1)]
        cw, cwy = np.cumsum(wide, axis=1), np.cumsum(wy, axis=1)
        for out, k in zip(outs, ks, strict=True):
            j = max(1, min(int(k), kmax)) - 1
            out[i:i + 2048] = cwy[:, j] / cw[:, j]
    return outs


def out_of_fold(heads: Sequence[Head], x: Any, y: Any, fold: Any) -> list[Any]:
    """Each head's out-of-fold scores of the examples (a blend's parts mixed in the scores'
    own units)."""
    import numpy as np

    if any(h.method == "blend" for h in heads):
        return [h.knob * a + (1 - h.knob) * b if h.method == "blend" else a
                for h, (a, b) in zip(heads, _pairs(heads, x, y, fold), strict=True)]

    oofs = [np.zeros(np.shape(y)) for _ in heads]
    knn_at = [i for i, h in enumerate(heads) if h.method == "knn"]
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        if knn_at:
            got = knn_many(x[tr], y[tr], x[te], [int(heads[i].knob) for i in knn_at])
            for i, scores in zip(knn_at, got, strict=True):
                oofs[i][te] = scores
        for i, head in enumerate(heads):
            if head.method == "linear":
                oofs[i][te] = apply(head, train(head, x[tr], y[tr]), x[te])
    return oofs


def _pairs(heads: Sequence[Head], x: Any, y: Any, fold: Any) -> list[tuple[Any, Any]]:
    """Out-of-fold scores of each head's two parts (a single head: itself twice)."""
    out = []
    for h in heads:
        if h.method == "blend":
            a, b = out_of_fold(list(h.parts()), x, y, fold)
        else:
            a = b = out_of_fold([h], x, y, fold)[0]
        out.append((a, b))
    return out


def log_lengths(texts: Sequence[str]) -> Any:
    """The log of each text's length in characters (the length term's feature)."""
    import numpy as np

    return np.log1p(np.fromiter((len(t) for t in texts), dtype=float, count=len(texts)))


@dataclass
class EmbedCost:
    """What embedding some texts outside a run cost: texts, tokens (estimated for local
    models), texts actually encoded (not read from a disk cache), dollars (None: unknown;
    0 for local models), CPU and wall seconds."""

    texts: int = 0
    tokens: int = 0
    encoded: int | None = None
    dollars: float | None = 0.0
    cpu_seconds: float = 0.0
    seconds: float = 0.0

    def add(self, other: EmbedCost) -> None:
        """Add ``other`` into this one."""
        self.texts += other.texts
        self.tokens += other.tokens
        self.encoded = (None if self.encoded is None and other.encoded is None
                        else (self.encoded or 0) + (other.encoded or 0))
        self.dollars = (None if self.dollars is None or other.dollars is None
                        else self.dollars + other.dollars)
        self.cpu_seconds += other.cpu_seconds
        self.seconds += other.seconds

    def __str__(self) -> str:
        money = ("price unknown" if self.dollars is None else "local, $0" if not self.dollars
                 else f"${self.dollars:.4f}")
        fresh = "" if self.encoded is None else f", {self.encoded:,} encoded (rest cached)"
        return (f"{self.texts:,} texts embedded ({self.tokens:,} tokens{fresh}; {money}; "
                f"{self.cpu_seconds:.1f} s CPU, {self.seconds:.1f} s wall)")


def clock() -> tuple[float, float]:
    """``(CPU seconds of this process, wall seconds)`` now."""
    return time.process_time(), time.perf_counter()
