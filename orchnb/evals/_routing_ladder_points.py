"""A ladder router at its own threshold: bootstrap intervals on what it keeps and saves, and
the rows where its pick was furthest from the oracle's (the cheapest model that does as well as
any on the row)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._routing_curve import interval


def resample_weights(n: int, draws: int, seed: int) -> Any:
    """Row weights of ``draws`` bootstrap resamplings (rows × draws, each column sums to 1)."""
    import numpy as np

    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=draws)
    return counts.T.astype(float) / n


def point_cis(s: Any, c: Any | None, pick: Any, w: Any) -> dict[str, tuple[float, float] | None]:
    """95% intervals of quality, pgr, cost_per_1k and saving (against the dearest alone) at the
    router's picks ``pick`` (one model index per row), rows resampled by the weights ``w``;
    cost and saving are None when prices are unknown."""
    import numpy as np

    rows = np.arange(len(s))
    quality = s[rows, pick] @ w
    low, high = s[:, 0] @ w, s[:, -1] @ w
    with np.errstate(divide="ignore", invalid="ignore"):
        pgr = np.where(high > low, (quality - low) / (high - low), np.nan)
    out = {"quality": interval(quality), "pgr": interval(pgr), "cost_per_1k": None, "saving": None}
    if c is not None:
        cost = c[rows, pick] @ w
        full = c[:, -1] @ w
        out["cost_per_1k"] = interval(cost * 1000)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["saving"] = interval(np.where(full > 0, 1 - cost / full, np.nan))
    return out


def cheapest_sufficient(s: Any) -> Any:
    """Per row, the cheapest model whose score equals the row's best (the oracle's pick)."""
    import numpy as np

    return np.argmax(s >= s.max(axis=1, keepdims=True) - 1e-12, axis=1)


def ladder_mistakes(texts: Sequence[str], names: Sequence[str], s: Any, c: Any | None,
                    pick: Any, n: int) -> Any:
    """Up to ``n`` rows of each kind where the router's pick lost most against the oracle:
    quality lost (a model cheaper than needed, largest loss first), then money lost (a model
    dearer than needed: dollars per query, or ladder steps when prices are unknown)."""
    import numpy as np
    import pandas as pd

    rows = np.arange(len(s))
    need = cheapest_sufficient(s)
    lost_q = s[rows, need] - s[rows, pick]
    extra = (c[rows, pick] - c[rows, need]) if c is not None else (pick - need).astype(float)
    over = (lost_q <= 1e-12) & (pick > need)
    df = pd.DataFrame({"text": list(texts), "chosen": [names[i] for i in pick],
                       "needed": [names[i] for i in need]})
    for j, name in enumerate(names):
        df[f"score_{name}"] = s[:, j]
    df["quality_lost"] = np.where(lost_q > 1e-12, lost_q, 0.0)
    df["cost_lost" if c is not None else "steps_too_high"] = np.where(over, extra, 0.0)
    worse = df[lost_q > 1e-12].sort_values("quality_lost", ascending=False, kind="stable")
    dearer = df[over].sort_values(df.columns[-1], ascending=False, kind="stable")
    return pd.concat([worse.head(n).assign(mistake="sent too cheap, lost quality"),
                      dearer.head(n).assign(mistake="sent too dear, a cheaper model was as good")])

