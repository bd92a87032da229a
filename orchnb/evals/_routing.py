"""Routing evals on graded answers: how much of the strong model's quality a router keeps for
the share of queries it sends there (RouteLLM's APGR and CPT), what that costs, with bootstrap
confidence intervals.

The curve: rows sorted by the router's score (highest first; tied rows move together), the
first ``share`` of them answered by the strong model and the rest by the weak one. PGR (share of
the weak-to-strong gap recovered) = ``(quality - weak_only) / (strong_only - weak_only)``.
APGR is the area under PGR against share (weak-only 0, strong-only 1, random routing 0.5);
CPT(p) the smallest share whose PGR reaches ``p`` (linear between the curve's points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import SpecError
from ..patterns import text_key

SPLITS = ("refuse", "drop", "flag")


def curve_points(scores: Any, gains: Any, weights: Any = None) -> tuple[Any, Any]:
    """``(share, gain)`` at each cut between distinct scores, from share 0: the share of rows
    scored above the cut and the summed gain ``strong - weak`` over them (divided by the row
    count). ``weights`` (rows × draws) give the bootstrap's row counts instead of ones; then
    both outputs are (draws × cuts).

    >>> s, g = curve_points([0.9, 0.5, 0.1], [1, 0, -1])
    >>> (s * 3).round(6).tolist(), (g * 3).round(6).tolist()
    ([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 0.0])
    """
    import numpy as np

    s = np.asarray(scores, dtype=float)
    d = np.asarray(gains, dtype=float)
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    n = len(s)
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), n - 1]
    if weights is None:
        share = np.r_[0.0, (ends + 1) / n]
        gain = np.r_[0.0, np.cumsum(d)[ends] / n]
        return share, gain
    w = np.asarray(weights, dtype=float)[:, order]  # draws × rows
    zero = np.zeros((len(w), 1))
    share = np.hstack([zero, np.cumsum(w, axis=1)[:, ends] / n])
    gain = np.hstack([zero, np.cumsum(w * d, axis=1)[:, ends] / n])
    return share, gain


def apgr_of(share: Any, gain: Any) -> Any:
    """APGR from ``curve_points`` (works row-wise on bootstrap arrays; nan without a gap)."""
    import numpy as np

    total = gain[..., -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, np.trapezoid(gain, share, axis=-1) / total, np.nan)


def cpt_of(share: Any, gain: Any, p: float) -> Any:
    """The smallest share of strong calls whose PGR reaches ``p`` (row-wise; nan without a
    gap). Linear between the curve's points."""
    import numpy as np

    share2, gain2 = np.atleast_2d(share), np.atleast_2d(gain)
    total = gain2[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        pgr = np.where(total > 0, gain2 / total, np.nan)
    out = np.full(len(pgr), np.nan)
    for i, row in enumerate(pgr):
        hit = np.flatnonzero(row >= p - 1e-12)
        if not len(hit) or not np.isfinite(row).all():
            continue
        j = int(hit[0])
        if j == 0:
            out[i] = 0.0
            continue
        a, b = row[j - 1], row[j]
        x0, x1 = share2[i, j - 1], share2[i, j]
        out[i] = x0 + (p - a) / (b - a) * (x1 - x0)
    return out if np.ndim(share) == 2 else float(out[0])


def evaluate_routing(router_or_scores: Any, data: Any, *, text: str = "text",
                     weak_score: str = "weak_score", strong_score: str = "strong_score",
                     weak_cost: float | str | None = None, strong_cost: float | str | None = None,
                     models: Sequence[str] | Mapping[str, str] | None = None,
                     threshold: float | None = None, on_training: str = "refuse",
                     bootstrap: int = 300, seed: int = 0) -> Any:
    """Score a router on graded answers: ``.apgr`` (with ``.apgr_ci``), ``.cpt(0.5)``,
    ``.strong_share`` and ``.pgr`` at its own threshold, ``.curve``, ``.points``, ``.mistakes()``,
    ``.summary`` and ``.plot()`` (weak-only, strong-only, random and oracle drawn).

    ``router_or_scores``: a :class:`~orchnb.QualityRouter`, a column of ``data`` holding
    scores, an array of scores (one per row, higher = more in need of the strong model) or a
    function ``text -> score``. ``weak_score`` / ``strong_score`` name the graded columns (1/0
    correctness or any number). ``weak_cost`` / ``strong_cost``: dollars per query (a number or
    a column); left out, prices stay unknown and no saving is claimed. ``models``: the two
    models' names, for the summary (``("mixtral", "gpt-4")``).

    A router is judged on rows it did not learn from: rows among its examples are refused
    (``on_training="refuse"``), dropped (``"drop"``, said in the summary) or kept and flagged
    (``"flag"``).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"text": list("abcd"), "weak_score": [0, 1, 0, 1],
    ...                    "strong_score": [1, 1, 1, 0], "s": [0.9, 0.7, 0.4, 0.1]})
    >>> r = evaluate_routing("s", df, bootstrap=0)
    >>> r.apgr, r.cpt(0.5)
    (1.125, 0.125)
    """
    import numpy as np
    import pandas as pd

    from ._routing_report import RoutingReport

    if on_training not in SPLITS:
        raise SpecError(f"on_training={on_training!r}; use one of {', '.join(SPLITS)}",
                        key="on_training")
    df = _frame(data, text, weak_score, strong_score)
    dropped, flagged = 0, 0
    seen = getattr(router_or_scores, "trained_on", None)
    if seen:
        inside = np.array([text_key(str(t)) in seen for t in df[text]], dtype=bool)
        if inside.any() and on_training == "refuse":
            raise SpecError(
                f"{int(inside.sum())} of {len(df)} rows are among the router's training "
                f"examples, where it looks better than it is. Evaluate on held-out rows (split "
                f"the data before building the router), or pass on_training='drop' (leave them "
                f"out) or 'flag' (keep them, flagged)", key="data")
        if on_training == "drop":
            dropped, df = int(inside.sum()), df[~inside].reset_index(drop=True)
        else:
            flagged = int(inside.sum())
    if len(df) < 2:
        raise SpecError(f"evaluate_routing needs at least 2 graded rows, got {len(df)}",
                        key="data")
    scores, own = _scores(router_or_scores, df, text)
    if threshold is None:
        threshold = own
    weak = df[weak_score].to_numpy(float)
    strong = df[strong_score].to_numpy(float)
    costs = {k: _cost(v, df, k) for k, v in (("weak_cost", weak_cost),
                                              ("strong_cost", strong_cost))}
    names = _names(models, router_or_scores)
    table = pd.DataFrame({"text": df[text].astype(str), "weak_score": weak,
                          "strong_score": strong, "score": scores})
    return RoutingReport(table, threshold=threshold, weak_cost=costs["weak_cost"],
                         strong_cost=costs["strong_cost"], names=names, bootstrap=bootstrap,
                         seed=seed, dropped=dropped, flagged=flagged)


def _frame(data: Any, text: str, weak: str, strong: str) -> Any:
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise SpecError(f"evaluate_routing: data is a DataFrame of graded answers, not "
                        f"{type(data).__name__}", key="data")
    missing = [c for c in (text, weak, strong) if c not in data.columns]
    if missing:
        raise SpecError(f"evaluate_routing: data lacks column(s) {missing}; it has "
                        f"{list(data.columns)[:12]}. Name them with text=, weak_score=, "
                        f"strong_score=", key="data")
    out = data.reset_index(drop=True).copy()
    for c in (weak, strong):
        col = pd.to_numeric(out[c].map(lambda v: float(v) if isinstance(v, bool) else v),
                            errors="coerce")
        if col.isna().any():
            raise SpecError(f"evaluate_routing: column {c!r} has {int(col.isna().sum())} "
                            f"missing or non-numeric grades; grade every row", key=c)
        out[c] = col.astype(float)
    return out


def _scores(source: Any, df: Any, text: str) -> tuple[Any, float | None]:
    import numpy as np

    if isinstance(source, str):
        if source not in df.columns:
            raise SpecError(f"evaluate_routing: no score column {source!r} in the data",
                            key="router_or_scores")
        return df[source].to_numpy(float), None
    if callable(getattr(source, "scores", None)):
        return np.asarray(source.scores(list(df[text].astype(str))), dtype=float), float(
            source.threshold)
    if callable(source):
        return np.array([float(source(str(t))) for t in df[text]]), None
    values = np.asarray(source, dtype=float)
    if values.shape != (len(df),):
        raise SpecError(f"evaluate_routing: {values.shape[0] if values.ndim else 0} scores "
                        f"for {len(df)} rows; give one score per row", key="router_or_scores")
    return values, None


def _cost(value: Any, df: Any, key: str) -> Any:
    import numpy as np

    if value is None:
        return None
    if isinstance(value, str):
        if value not in df.columns:
            raise SpecError(f"evaluate_routing: no cost column {value!r} in the data", key=key)
        col = df[value].astype(float).to_numpy()
        return None if np.isnan(col).any() else col  # one unknown price: the sum is unknown
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"evaluate_routing({key}=...) is dollars per query (a number >= 0 or "
                        f"a column name), not {value!r}", key=key)
    return np.full(len(df), float(value))


def _names(models: Any, source: Any) -> tuple[str, str]:
    if isinstance(models, Mapping):
        return str(models.get("weak", "weak")), str(models.get("strong", "strong"))
    if models is not None:
        weak, strong = models
        return str(weak), str(strong)
    routes = getattr(source, "routes", None)
    if routes:
        found = []
        for label in ("weak", "strong"):
            node = routes.get(label)
            model = getattr(node, "model", None)
            found.append(getattr(model, "id", None) or getattr(node, "name", label))
        return found[0], found[1]
    return "weak", "strong"
