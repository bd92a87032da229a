"""The routing report for a ladder of models by price: quality against cost, each model alone
as a point, the oracle and the router's frontier (``evaluate_routing(..., scores=[...])``).

The router's frontier: its rule (the cheapest model predicted to score at least as well as
every dearer one, less a threshold) at every threshold, from all-cheapest to all-dearest. PGR is
the share of the cheapest-to-dearest gap recovered; APGR the area under PGR against cost scaled
so that the cheapest model alone is 0 and the dearest alone 1 (against the mean position on the
ladder when a price is unknown). With two models and flat prices it is the two-model APGR.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ..engine import MATHJAX_OFF
from ..exceptions import SpecError
from ..patterns import ladder_area, ladder_choice, ladder_sweep, ladder_thresholds
from ._routing_ladder_points import ladder_mistakes, point_cis, resample_weights


class LadderReport:
    """How much quality a ladder router keeps for what it spends.

    ``apgr`` (by cost), ``oracle_apgr``, ``singles`` (each model alone: quality, cost per
    1,000), ``curve`` (the router's frontier: threshold, quality, pgr, cost_per_1k, position,
    one share column per model), ``oracle`` (the same for an oracle that knows every grade),
    at the router's own threshold ``shares``, ``quality``, ``pgr``, ``cost_per_1k`` and
    ``saving`` (against the dearest alone) with 95% bootstrap intervals in ``point_ci``,
    ``points`` (that point as a table), ``apgr_ci``, ``mistakes(n)``, ``summary`` and
    ``plot()``. Costs are None when a price is unknown: no saving is claimed then.
    """

    def __init__(self, texts: Sequence[str], pred: Any, scores: Any, costs: Any | None, *,
                 names: Sequence[str], threshold: float | None, held_out: bool = False,
                 dropped: int = 0, flagged: int = 0, embedded: Any = None,
                 bootstrap: int = 300, seed: int = 0):
        import numpy as np

        self.names = list(names)
        self.threshold = threshold
        """The router's own threshold (None when only predictions were given)."""
        self.held_out, self.dropped, self.flagged, self.embedded = (held_out, dropped,
                                                                    flagged, embedded)
        self._pred = np.asarray(pred, dtype=float)
        self._s = np.asarray(scores, dtype=float)
        self._c = None if costs is None else np.asarray(costs, dtype=float)
        self.rows = len(self._s)
        self.texts = list(texts)
        q = self._s.mean(axis=0)
        self._low, self._high = float(q[0]), float(q[-1])
        got = ladder_sweep(self._pred, self._s, self._c, ladder_thresholds(self._pred))
        self.curve = self._frame(got)
        """The router's frontier, one row per threshold (all cheapest first)."""
        self.oracle = self._frame(ladder_sweep(self._s, self._s, self._c,
                                               ladder_thresholds(self._s)))
        """The frontier of an oracle that knows each row's grades."""
        self.apgr = self._area(self.curve)
        """Area under PGR against scaled cost (cheapest alone 0, dearest alone 1)."""
        self.oracle_apgr = self._area(self.oracle)
        self._w = resample_weights(self.rows, bootstrap, seed) if bootstrap else None
        self.apgr_ci = self._bootstrap(got["picks"])
        """95% bootstrap interval of :attr:`apgr` (rows resampled; None with
        ``bootstrap=0``)."""
        at = self._at()
        self.point_ci: dict[str, tuple[float, float] | None] = (
            point_cis(self._s, self._c, at[0], self._w) if at is not None and self._w is not None
            else {k: None for k in ("quality", "pgr", "cost_per_1k", "saving")})
        """95% bootstrap intervals at the router's threshold: ``quality``, ``pgr``,
        ``cost_per_1k``, ``saving`` (the same resampled rows as :attr:`apgr_ci`; None when
        unknown)."""

    def _bootstrap(self, picks: Any) -> tuple[float, float] | None:
        """APGR over the resamplings of the rows, the curve's cuts kept."""
        import numpy as np

        w = self._w  # rows × draws
        if w is None or self._high <= self._low:
            return None
        n, m = self._s.shape
        draws = w.shape[1]
        rows = np.arange(n)
        quality = self._s[rows, picks] @ w  # cuts × draws
        low, high = self._s[:, 0] @ w, self._s[:, -1] @ w
        ends = (self._c[:, 0] @ w, self._c[:, -1] @ w) if self.priced else None
        if ends is not None and (ends[1] > ends[0]).all():
            x = (self._c[rows, picks] @ w - ends[0]) / (ends[1] - ends[0])
        else:
            x = (picks / max(1, m - 1)) @ w
        with np.errstate(divide="ignore", invalid="ignore"):
            pgr = (quality - low) / (high - low)
        areas = np.array([ladder_area(x[:, b], pgr[:, b]) for b in range(draws)
                          if high[b] > low[b]])
        if not len(areas):
            return None
        lo, hi = np.quantile(areas, [0.025, 0.975])
        return float(lo), float(hi)

    # -- numbers ----------------------------------------------------------------------------------
    @property
    def priced(self) -> bool:
        """Whether every model's price is known (else the x axis is the ladder position)."""
        return self._c is not None

    @property
    def singles(self) -> Any:
        """Each model alone: its mean score and cost per 1,000 queries (None when unknown)."""
        import pandas as pd

        return pd.DataFrame({"model": self.names, "quality": self._s.mean(axis=0),
                             "cost_per_1k": (self._c.mean(axis=0) * 1000 if self.priced
                                             else [None] * len(self.names))}).set_index("model")

    def _frame(self, got: dict[str, Any]) -> Any:
        import numpy as np
        import pandas as pd

        gap = self._high - self._low
        df = pd.DataFrame({"threshold": got["threshold"], "quality": got["quality"],
                           "pgr": (got["quality"] - self._low) / gap if gap > 0 else np.nan,
                           "cost_per_1k": (got["cost"] * 1000 if got["cost"] is not None
                                           else None),
                           "position": got["position"]})
        for i, name in enumerate(self.names):
            df[f"share_{name}"] = got["shares"][:, i]
        return df

    def _x(self, frame: Any) -> Any:
        """Cost scaled so the cheapest alone is 0 and the dearest alone 1 (position when a
        price is unknown or the two ends cost the same)."""
        if self.priced:
            lo, hi = self._c[:, 0].mean() * 1000, self._c[:, -1].mean() * 1000
            if hi > lo:
                return (frame["cost_per_1k"].to_numpy(float) - lo) / (hi - lo)
        return frame["position"].to_numpy(float)

    def _area(self, frame: Any) -> float:
        if self._high <= self._low:
            return float("nan")
        return ladder_area(self._x(frame), frame["pgr"].to_numpy(float))

    def _at(self) -> Any:
        import numpy as np

        if self.threshold is None:
            return None
        return ladder_choice(self._pred, self.threshold), np.arange(self.rows)

    @property
    def shares(self) -> dict[str, float] | None:
        """Share of rows sent to each model at the router's threshold."""
        import numpy as np

        got = self._at()
        if got is None:
            return None
        counts = np.bincount(got[0], minlength=len(self.names)) / self.rows
        return {n: float(c) for n, c in zip(self.names, counts, strict=True)}

    @property
    def quality(self) -> float | None:
        """Mean score at the router's threshold."""
        got = self._at()
        return None if got is None else float(self._s[got[1], got[0]].mean())

    @property
    def pgr(self) -> float | None:
        """Share of the cheapest-to-dearest gap recovered at the router's threshold."""
        q = self.quality
        gap = self._high - self._low
        return None if q is None else (q - self._low) / gap if gap > 0 else float("nan")

    @property
    def cost_per_1k(self) -> float | None:
        """Dollars per 1,000 queries at the router's threshold (None when unknown)."""
        got = self._at()
        if got is None or self._c is None:
            return None
        return float(self._c[got[1], got[0]].mean() * 1000)

    @property
    def saving(self) -> float | None:
        """Share of the dearest model's cost saved at the router's threshold."""
        cost = self.cost_per_1k
        if cost is None or self._c is None:
            return None
        full = self._c[:, -1].mean() * 1000
        return None if not full else 1 - cost / full

    @property
    def points(self) -> Any:
        """The router's own point as a table: each measure with its 95% interval."""
        import pandas as pd

        values = {"quality": self.quality, "pgr": self.pgr, "cost_per_1k": self.cost_per_1k,
                  "saving": self.saving}
        return pd.DataFrame([{"measure": k, "value": v, "ci": self.point_ci.get(k)}
                             for k, v in values.items()]).set_index("measure")

    def mistakes(self, n: int = 10) -> Any:
        """The rows where the router's pick was worst against the oracle (the cheapest model
        that scores as well as any on the row): up to ``n`` where it lost quality (largest
        loss first), then up to ``n`` where a cheaper model would have done as well (most money
        lost first; ladder steps when prices are unknown). Columns: text, chosen, needed, each
        model's score, quality_lost, cost_lost (or steps_too_high), mistake."""
        at = self._at()
        if at is None:
            raise SpecError("mistakes() needs the router's own picks: pass a ladder "
                            "QualityRouter, or predictions with threshold=", key="threshold")
        return ladder_mistakes(self.texts, self.names, self._s, self._c, at[0], n)

    # -- words and charts -------------------------------------------------------------------------
    @property
    def summary(self) -> str:
        """One sentence: where the queries go, the gap kept, the saving, APGR."""
        where = (f" on {self.rows} {'held-out ' if self.held_out else ''}rows"
                 + (f" ({self.dropped} training rows left out)" if self.dropped else ""))
        if self.flagged:
            where = f" on {self.rows} rows, {self.flagged} of them TRAINING rows (optimistic)"
        axis = "cost" if self.priced else "ladder position (prices unknown)"
        band = f", 95% CI {self.apgr_ci[0]:.2f}–{self.apgr_ci[1]:.2f}" if self.apgr_ci else ""
        tail = (f"APGR by {axis} {self.apgr:.2f}{band} (oracle {self.oracle_apgr:.2f}, a random "
                f"mix of {self.names[0]} and {self.names[-1]} 0.50){where}.")
        shares = self.shares
        if shares is None:
            return tail[0].upper() + tail[1:]
        up = [f"{v:.0%} to {k}" for k, v in list(shares.items())[1:]]
        split = (", ".join(up[:-1]) + " and " + up[-1]) if len(up) > 1 else up[0]
        saving, ci = self.saving, self.point_ci
        money = (" (prices unknown: no saving claimed)" if saving is None else
                 f" and costs {saving:.0%}{_band(ci['saving'])} less than "
                 f"{self.names[-1]} alone" if saving >= 0
                 else f" and costs {-saving:.0%}{_band(ci['saving'], True)} more than "
                      f"{self.names[-1]} alone")
        return (f"sending {split} keeps {self.pgr:.0%}{_band(ci['pgr'])} of "
                f"{self.names[-1]}'s gain over {self.names[0]}{money}; {tail}")

    def plot(self) -> Any:
        """Quality against cost per 1,000 queries (or ladder position): each model alone, the
        oracle's and the router's frontiers, the router at its threshold (Plotly)."""
        import plotly.graph_objects as go

        xcol = "cost_per_1k" if self.priced else "position"
        single = self.singles
        sx = (single["cost_per_1k"].tolist() if self.priced
              else [i / max(1, len(self.names) - 1) for i in range(len(self.names))])
        fig = go.Figure()
        fig.add_scatter(x=[sx[0], sx[-1]], y=[self._low, self._high], mode="lines",
                        name="random mix of the two ends", line={"dash": "dash", "color": "#aaa"})
        fig.add_scatter(x=self.oracle[xcol], y=self.oracle["quality"], mode="lines",
                        name=f"oracle (APGR {self.oracle_apgr:.2f})",
                        line={"color": "#2ca02c", "width": 1})
        fig.add_scatter(x=self.curve[xcol], y=self.curve["quality"], mode="lines",
                        name=f"router (APGR {self.apgr:.2f})", line={"color": "#1f77b4"})
        fig.add_scatter(x=sx, y=single["quality"].tolist(), mode="markers+text",
                        text=self.names, textposition="top center", name="each model alone",
                        marker={"size": 10, "color": "#333"})
        if self.shares is not None:
            x = self.cost_per_1k if self.priced else float(
                sum(i * v for i, v in enumerate(self.shares.values())) / max(1, len(sx) - 1))
            fig.add_scatter(x=[x], y=[self.quality], mode="markers", name="at its threshold",
                            marker={"size": 12, "color": "#d62728", "symbol": "diamond"})
        fig.update_layout(title=f"Quality against cost · ladder of {len(self.names)} models · "
                                f"APGR {self.apgr:.2f}",
                          xaxis_title=("dollars per 1,000 queries" if self.priced else
                                       "position on the ladder (0 = all cheapest; prices "
                                       "unknown)"),
                          yaxis_title="quality (mean score)", template="plotly_white")
        return fig

    def __repr__(self) -> str:
        return f"<LadderReport {self.rows} rows, {len(self.names)} models: {self.summary}>"

    def _repr_html_(self) -> str:
        table = self.singles.to_html(float_format=lambda v: f"{v:.3f}", na_rep="unknown")
        point = ("" if self.threshold is None else
                 self.points.to_html(float_format=lambda v: f"{v:.3f}", na_rep="unknown"))
        return (f"<div class='{MATHJAX_OFF}'><p>{html.escape(self.summary)}</p>{table}{point}"
                f"</div>")


def _band(ci: tuple[float, float] | None, flip: bool = False) -> str:
    """`` (95% CI 74–85%)`` for a share's interval; ``flip`` for a saving said as "more"
    (the interval of minus the saving)."""
    if ci is None:
        return ""
    lo, hi = (-ci[1], -ci[0]) if flip else ci
    return f" (95% CI {lo:.0%}–{hi:.0%})"
