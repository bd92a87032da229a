"""The learned part of a quality router: from graded answers of a weak and a strong model, predict
from the query alone how much the strong model gains over the weak one, and pick the threshold
above which a query goes to the strong model.

The score of a query is its predicted gain ``strong_score - weak_score``; sending the queries with
the highest scores to the strong model is the best order in expectation. Two heads over
centred embeddings, and their blend, chosen by cross-validated APGR on the examples: a
similarity-weighted k-nearest-neighbour mean of the gain (several ``k``), a ridge regression (a
linear head, numpy only), and a z-scored mix of the best of each.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from ..engine import RunContext, check_number
from ..exceptions import SpecError
from ..models import Embedder, resolve_embedder
from ._classify import Prediction, embed_traced
from ._quality_heads import (
    ALPHAS,
    KS,
    LENGTHS,
    MIXES,
    EmbedCost,
    Head,
    apply,
    clock,
    fold_ids,
    log_lengths,
    out_of_fold,
    train,
)
from ._step import Vars, check_name

MIN_EXAMPLES = 20


def text_key(text: str) -> bytes:
    """A short hash of a text: what a scorer remembers of the rows it learned from."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


def check_graded(df: Any, columns: Sequence[str], *, what: str, key: str) -> None:
    """Raise :class:`SpecError` unless the graded-answers table ``df`` has ``columns``;
    ``what`` starts the message (e.g. ``"evaluate_routing: data lacks"``).

    >>> import pandas as pd
    >>> check_graded(pd.DataFrame({"text": []}), ["text"], what="data lacks", key="data")
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SpecError(f"{what} column(s) {missing}; it has {list(df.columns)[:12]}. Name "
                        f"them with text=, weak_score=, strong_score=", key=key)


def target_knob(share: float | None, quality: float | None, budget: float | None,
                threshold: float | None, *, default: tuple[str, float]) -> tuple[str, float]:
    """Which of a quality router's four ways to set its threshold was given (at most one;
    ``default`` when none), with its value checked. Whether ``budget_per_1k`` has the prices
    it needs is the caller's check: a pair and a ladder are priced differently.

    >>> target_knob(None, 0.8, None, None, default=("strong_share", 0.5))
    ('quality', 0.8)
    """
    given = {k: v for k, v in (("strong_share", share), ("quality", quality),
                               ("budget_per_1k", budget), ("threshold", threshold))
             if v is not None}
    if len(given) > 1:
        raise SpecError(f"give one of strong_share, quality, budget_per_1k, threshold; not "
                        f"{' and '.join(given)}", key=next(iter(given)))
    knob, value = next(iter(given.items()), default)
    if knob in ("strong_share", "quality"):
        check_number(value, f"QualityRouter({knob}=...)", maximum=1.0, optional=False,
                     hint="a share from 0 to 1")
    elif knob == "budget_per_1k":
        check_number(value, "QualityRouter(budget_per_1k=...)", optional=False,
                     hint="dollars per 1,000 queries")
    else:
        check_number(value, "QualityRouter(threshold=...)", minimum=-1e9, optional=False)
    return knob, float(value)


def embed_now(embedder: Embedder, texts: Sequence[str]) -> Any:
    """Embed ``texts`` outside a run, from sync code (also inside a running loop, as in a
    notebook cell): a worker thread runs the embedder's own coroutine. Unit-norm rows."""
    return embed_counted(embedder, texts)[0]


def embed_counted(embedder: Embedder, texts: Sequence[str]) -> tuple[Any, EmbedCost]:
    """:func:`embed_now`, and what it cost (:class:`EmbedCost`): such calls are outside any
    run, so no trace counts them; the scorer keeps the count instead."""
    import numpy as np

    from ..models import cost_usd

    def work() -> Any:
        return asyncio.run(embedder.embed(list(texts)))

    before = getattr(embedder, "encoded", None)
    c0, w0 = clock()
    with ThreadPoolExecutor(1) as pool:
        vectors, usage = pool.submit(work).result()
    c1, w1 = clock()
    dollars: float | None = 0.0
    if embedder.remote:
        cost, priced = cost_usd(embedder.provider, embedder.model, usage)
        dollars = cost if priced else None
    after = getattr(embedder, "encoded", None)
    cost = EmbedCost(len(texts), int(usage.input_tokens),
                     None if before is None else int(after) - int(before), dollars,
                     c1 - c0, w1 - w0)
    return unit_rows(np.asarray(vectors, dtype=float).reshape(len(texts), -1)), cost


def _blends(heads: Sequence[Head], oofs: Sequence[Any], gains: Any
            ) -> list[tuple[Head, Any, tuple[float, float, float, float]]]:
    """Blends of the best kNN and the best ridge head (by out-of-fold APGR): ``(head,
    out-of-fold scores, z-stats)`` for each kNN weight in ``MIXES``; none unless both kinds
    were tried."""
    import numpy as np

    def best(kind: str) -> int | None:
        at = [i for i, h in enumerate(heads) if h.method == kind]
        return max(at, key=lambda i: np.nan_to_num(pgr_area(oofs[i], gains), nan=-9),
                   default=None)

    ik, il = best("knn"), best("linear")
    if ik is None or il is None:
        return []
    ok, ol = oofs[ik], oofs[il]
    stats = (float(ok.mean()), float(ok.std()) or 1.0, float(ol.mean()), float(ol.std()) or 1.0)
    zk, zl = (ok - stats[0]) / stats[1], (ol - stats[2]) / stats[3]
    return [(Head("blend", mix, 0.0, int(heads[ik].knob), heads[il].knob),
             stats[0] + stats[1] * (mix * zk + (1 - mix) * zl), stats) for mix in MIXES]


def unit_rows(x: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def pgr_area(scores: Any, gains: Any) -> float:
    """APGR of ``scores`` on rows with ``gains``: the area under the share of the total gain
    recovered against the share of queries sent to the strong model (ties routed together);
    nan when the strong model gains nothing in total."""
    import numpy as np

    shares, recovered = gain_curve(scores, gains)
    return float(np.trapezoid(recovered, shares)) if len(shares) else float("nan")


def gain_curve(scores: Any, gains: Any) -> tuple[Any, Any]:
    """``(share, recovered)``: at each distinct score cut, the share of rows scored above it
    and the share of the total gain they carry (empty when the total gain is not positive)."""
    import numpy as np

    s = np.asarray(scores, dtype=float)
    g = np.asarray(gains, dtype=float)
    order = np.argsort(-s, kind="stable")
    s, g = s[order], g[order]
    total = g.sum()
    if len(g) == 0 or total <= 0:
        return np.array([]), np.array([])
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    shares = np.r_[0.0, (ends + 1) / len(s)]
    recovered = np.r_[0.0, np.cumsum(g)[ends] / total]
    return shares, recovered


class QualityScorer:
    """Predicts a query's gain from the strong model (``strong_score - weak_score``) from its
    embedding; the quality router's classifier. ``method``: ``"auto"`` (the best of kNN, a
    ridge head and a z-scored blend of the two, by 5-fold cross-validated APGR), ``"knn"``
    (best ``k``) or ``"linear"``. The embeddings are centred on the examples' mean vector. With
    ``length=True`` a term in the prompt's log length is added when cross-validation favours it
    (it helps on topics the examples lack; long prompts also cost more, so it lowers the
    saving at a given share of strong calls).

    ``groups`` (one label per example, e.g. its subject) makes the folds whole groups, so the
    head is chosen for topics it has not seen; without it, folds are random rows.

    ``oof`` holds out-of-fold scores of the examples (each scored by a model that did not see
    it): thresholds are chosen on them, so a target share holds on new rows too. Embedding
    outside a run (the examples when built, texts given to :meth:`scores`) is counted in
    :attr:`embedded`.

    >>> s = QualityScorer(["2+2?", "prove Fermat"] * 20, [0, 1] * 20, embed="sim")
    >>> s.head.method in ("knn", "linear", "blend"), len(s.oof), s.embedded["fit"].texts
    (True, 40, 40)
    """

    kind = "classifier"
    model_attrs: ClassVar[tuple[str, ...]] = ("embedder",)

    def __init__(self, texts: Sequence[str], gains: Sequence[float], *, embed: Any = "sim",
                 method: str = "auto", k: int | None = None, seed: int = 0,
                 name: str = "quality", vectors: Any = None, groups: Sequence[Any] | None = None,
                 length: bool = False):
        import numpy as np

        check_name(name, "QualityScorer")
        if method not in ("auto", "knn", "linear"):
            raise SpecError(f"unknown method {method!r}; use 'auto', 'knn' or 'linear'",
                            key="method")
        if len(texts) != len(gains) or len(texts) < MIN_EXAMPLES:
            raise SpecError(f"a quality router learns from at least {MIN_EXAMPLES} graded "
                            f"examples (text, weak score, strong score); got {len(texts)}",
                            key="examples")
        self.name = name
        self.embedder = resolve_embedder(embed)
        self.seed = seed
        self.asked = method
        self.length = length
        """Whether a prompt-length term may be added (cross-validation decides)."""
        self.texts = [str(t) for t in texts]
        self.gains = np.asarray(gains, dtype=float)
        if not np.isfinite(self.gains).all():
            raise SpecError("the weak and strong scores must be numbers (no missing grades)",
                            key="examples")
        fold = fold_ids(len(self.texts), seed, groups)
        self.trained_on = frozenset(text_key(t) for t in self.texts)
        """Hashes of the texts learned from (evals refuse to report on them)."""
        self.embedded: dict[str, EmbedCost] = {"fit": EmbedCost(), "scoring": EmbedCost()}
        """What embedding outside a run cost: ``"fit"`` (the examples, when built) and
        ``"scoring"`` (texts given to :meth:`scores`, e.g. by ``evaluate_routing``)."""
        if vectors is None:
            x, self.embedded["fit"] = embed_counted(self.embedder, self.texts)
        else:
            x = unit_rows(np.asarray(vectors, dtype=float))
        # Centred: MiniLM's vectors share a common direction that swamps cosine neighbours.
        self._mu = x.mean(axis=0)
        self._x = unit_rows(x - self._mu)
        heads = [Head("knn", k)] if k is not None else [
            *(Head("knn", kk) for kk in KS if method in ("auto", "knn")),
            *(Head("linear", a) for a in ALPHAS if method in ("auto", "linear"))]
        self._learn(heads, fold, length)
        self.threshold = 0.0
        """Scores above it go to the strong model (the router sets it)."""

    # -- learning ---------------------------------------------------------------------------------
    def _learn(self, heads: list[Head], fold: Any, length: bool) -> None:
        """Choose the head (a single one or a blend of the best kNN and ridge heads) and the
        length term's weight by out-of-fold APGR, then fit it on all the examples."""
        import numpy as np

        g = self.gains
        oofs = out_of_fold(heads, self._x, g, fold)
        self.cv = [(str(h), pgr_area(o, g)) for h, o in zip(heads, oofs, strict=True)]
        """Cross-validated APGR of each head tried, as ``(name, apgr)``."""
        cands, zstats = list(zip(heads, oofs, strict=True)), {}
        blends = _blends(heads, oofs, g)
        if blends:  # the best of each kind and their blends: fewer candidates, less luck
            cands = [c for c in cands if str(c[0]) in blends[0][0].parts_names()]
        for head, oof, stats in blends:
            self.cv.append((str(head), pgr_area(oof, g)))
            cands.append((head, oof))
            zstats[head] = stats
        loglen = log_lengths(self.texts)
        lspread, center = float(loglen.std()), float(loglen.mean())
        scores = dict(self.cv)
        best = (-9.0, cands[0][0], cands[0][1], 0.0)
        for head, oof in cands:
            spread = float(oof.std())
            for weight in ((0.0, *LENGTHS) if length and spread > 0 and lspread > 0
                           else (0.0,)):
                slope = weight * spread / lspread
                got = oof + slope * (loglen - center) if weight else oof
                score = pgr_area(got, g) if weight else scores[str(head)]
                if weight:
                    self.cv.append((str(head.with_length(weight)), score))
                if np.nan_to_num(score, nan=-9) > best[0] + 1e-9:  # kept only if it helps
                    best = (float(score), head.with_length(weight), got, slope)
        _, self.head, self.oof, slope = best
        """:attr:`head`: the head in use; :attr:`oof`: its out-of-fold scores."""
        self._length = (slope, center)
        base = Head(self.head.method, self.head.knob, 0.0, self.head.k, self.head.alpha)
        self._fit = train(base, self._x, g, zstats.get(base, (0.0, 1.0, 0.0, 1.0)))

    def prepare(self, vectors: Any) -> Any:
        """Embedding rows as the heads see them: unit length, less the examples' mean
        vector, unit length again."""
        import numpy as np

        return unit_rows(unit_rows(np.atleast_2d(np.asarray(vectors, dtype=float))) - self._mu)

    # -- scoring ----------------------------------------------------------------------------------
    def score_vectors(self, vectors: Any, texts: Sequence[str] | None = None) -> Any:
        """Predicted gains for embedding rows (higher: the strong model is more needed);
        ``texts`` (the rows' texts) are needed when the head has a length term."""
        q = self.prepare(vectors)
        out = apply(self.head, self._fit, q)
        slope, center = self._length
        if slope:
            if texts is None or len(texts) != len(q):
                raise SpecError(f"this scorer's head ({self.head}) uses the prompt's length: "
                                f"pass texts= (one per row) to score_vectors", key="texts")
            out = out + slope * (log_lengths([str(t) for t in texts]) - center)
        return out

    def scores(self, texts: Sequence[str]) -> Any:
        """Predicted gains for ``texts`` (embeds them outside any run, counted in
        :attr:`embedded`; evals use this)."""
        texts = [str(t) for t in texts]
        vectors, cost = embed_counted(self.embedder, texts)
        self.embedded["scoring"].add(cost)
        return self.score_vectors(vectors, texts)

    def threshold_for_share(self, share: float, side: str = "nearest") -> float:
        """The score above which ``share`` of the held-out (out-of-fold) examples lie, as near
        as ties allow (tied examples fall on one side together): ``side`` "nearest", or
        "at_most" / "at_least" that share (a budget caps; a quality target floors)."""
        import numpy as np

        values, counts = np.unique(self.oof, return_counts=True)
        values, counts = values[::-1], counts[::-1]  # highest first
        above = np.r_[0, np.cumsum(counts)] / len(self.oof)  # share above each cut
        miss = np.abs(above - share)
        if side == "at_most":
            miss = np.where(above <= share + 1e-12, miss, np.inf)
        elif side == "at_least":
            miss = np.where(above >= share - 1e-12, miss, np.inf)
        j = int(np.argmin(miss))
        if j == 0:
            return float(values[0]) + 1e-9
        if j == len(values):
            return float(values[-1]) - 1e-9
        return float((values[j - 1] + values[j]) / 2)

    def share_for_quality(self, quality: float) -> float:
        """The smallest held-out share of strong calls that recovers ``quality`` of the gap."""
        import numpy as np

        shares, recovered = gain_curve(self.oof, self.gains)
        if not len(shares):
            raise SpecError("the strong model gains nothing over the weak one on these "
                            "examples, so no share of strong calls recovers a gap",
                            key="quality")
        hit = np.flatnonzero(recovered >= quality)
        if not len(hit):
            return 1.0
        j = int(hit[0])
        if j == 0:
            return 0.0
        a, b = recovered[j - 1], recovered[j]
        return float(shares[j - 1] + (quality - a) / (b - a) * (shares[j] - shares[j - 1]))

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        vector = (await embed_traced(ctx, self.embedder, [text], self.name))[0]
        score = float(self.score_vectors([vector], [text])[0])
        threshold = self.threshold
        label = "strong" if score > threshold else "weak"
        return Prediction(f"{label} (gain {score:+.3f})", label, score, None,
                          {"score": score, "threshold": threshold, "method": str(self.head)})

    @property
    def _texts(self) -> list[str]:  # what the router's preview counts
        return self.texts

    @property
    def _vectors(self) -> Any:  # embedded when built: the preview notes no extra call
        return self._x

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "kind": "classifier", "role": "classifier",
                "embed": self.embedder.id, "method": str(self.head),
                "examples": len(self.texts)}

    def __repr__(self) -> str:
        return (f"QualityScorer({self.embedder.id!r}, {self.head}, "
                f"{len(self.texts)} examples)")
