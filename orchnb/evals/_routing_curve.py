"""The routing curve's numbers: quality against the share of queries sent to the strong model,
APGR and CPT (RouteLLM's definitions), also row-wise over bootstrap draws."""

from __future__ import annotations

from typing import Any


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


def interval(values: Any) -> tuple[float, float] | None:
    """The 95% percentile interval of bootstrap draws (non-finite draws left out; None if
    none is finite).

    >>> interval(range(101))
    (2.5, 97.5)
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = np.quantile(v, [0.025, 0.975])
    return float(lo), float(hi)
