"""The report of ``evaluate_routing``: quality against strong-call share, APGR, CPT, cost."""

from __future__ import annotations

import html
from typing import Any

from ..engine import MATHJAX_OFF
from ._routing_curve import apgr_of, cpt_of, curve_points, interval

LEVELS = (0.2, 0.5, 0.8)


class RoutingReport:
    """How much of the strong model's quality a router keeps per share of strong calls.

    ``apgr`` / ``apgr_ci`` (95% bootstrap), ``cpt(p)`` / ``cpt_ci(p)``, ``strong_share`` and
    ``pgr`` at the router's threshold, ``oracle_apgr``, ``curve`` (share, quality, pgr,
    cost_per_1k, saving), ``points`` (the table at CPT(20/50/80%) and the router's own point),
    ``mistakes(n)``, ``summary`` (one sentence) and ``plot()``. Costs are None when a price is
    unknown: no saving is claimed then.

    >>> report.apgr, report.cpt(0.5), report.summary     # doctest: +SKIP
    """

    def __init__(self, table: Any, *, threshold: float | None, weak_cost: Any, strong_cost: Any,
                 names: tuple[str, str], strong_only_cost: Any = None, bootstrap: int,
                 seed: int, dropped: int = 0, flagged: int = 0, held_out: bool = False,
                 embedded: dict[str, Any] | None = None):
        import numpy as np

        self.table = table
        """One row per query: text, weak_score, strong_score, score (and routed_strong)."""
        self.threshold = threshold
        """The router's own threshold (None when only scores were given)."""
        self.weak_name, self.strong_name = names
        self.dropped, self.flagged = dropped, flagged
        self.held_out = held_out
        """True when the router could say which rows it learned from, and none are here."""
        self.embedded = embedded
        """What the router's embedding outside any run cost, by phase (``"fit"``: its
        examples, ``"scoring"``: these rows), each with ``texts``, ``tokens``, ``dollars``,
        ``cpu_seconds``, ``seconds``; None when scores were given."""
        self._wc, self._sc = weak_cost, strong_cost
        # What "the strong model alone" costs (a cascade's escalated rows pay both models).
        self._full = strong_cost if strong_only_cost is None else strong_only_cost
        s = table["score"].to_numpy(float)
        self._gain = table["strong_score"].to_numpy(float) - table["weak_score"].to_numpy(float)
        self.weak_quality = float(table["weak_score"].mean())
        self.strong_quality = float(table["strong_score"].mean())
        self._share, self._cum = curve_points(s, self._gain)
        self.apgr = float(apgr_of(self._share, self._cum))
        """Area under PGR against strong-call share (weak-only 0, strong-only 1, random 0.5)."""
        o_share, o_cum = curve_points(self._gain, self._gain)
        self.oracle_apgr = float(apgr_of(o_share, o_cum))
        """The APGR of an oracle that knows each row's grades."""
        self._oracle = (o_share, o_cum)
        self._boot: tuple[Any, Any] | None = None
        if bootstrap:
            rng = np.random.default_rng(seed)
            n = len(s)
            counts = rng.multinomial(n, np.full(n, 1 / n), size=bootstrap)
            self._boot = curve_points(s, self._gain, counts.astype(float))
            self._boot_counts = counts
        if threshold is not None:
            table["routed_strong"] = s > threshold

    # -- numbers ----------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        """Graded rows evaluated."""
        return len(self.table)

    @property
    def apgr_ci(self) -> tuple[float, float] | None:
        """95% bootstrap interval of APGR (None with ``bootstrap=0``)."""
        return None if self._boot is None else interval(apgr_of(*self._boot))

    def cpt(self, p: float) -> float:
        """The smallest share of strong calls that recovers ``p`` of the weak-to-strong gap."""
        return float(cpt_of(self._share, self._cum, p))

    def cpt_ci(self, p: float) -> tuple[float, float] | None:
        """95% bootstrap interval of ``cpt(p)``."""
        return None if self._boot is None else interval(cpt_of(*self._boot, p))

    @property
    def strong_share(self) -> float | None:
        """Share of rows the router sends to the strong model at its own threshold."""
        if "routed_strong" not in self.table:
            return None
        return float(self.table["routed_strong"].mean())

    @property
    def pgr(self) -> float | None:
        """Share of the gap recovered at the router's own threshold."""
        if "routed_strong" not in self.table:
            return None
        total = self._gain.sum()
        return float(self._gain[self.table["routed_strong"].to_numpy()].sum() / total
                     ) if total > 0 else float("nan")

    def pgr_ci(self) -> tuple[float, float] | None:
        """95% bootstrap interval of :attr:`pgr`."""
        if self._boot is None or "routed_strong" not in self.table:
            return None
        import numpy as np

        c = self._boot_counts
        on = self.table["routed_strong"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            return interval((c[:, on] * self._gain[on]).sum(axis=1) / (c * self._gain).sum(axis=1))

    def cost_per_1k(self, share: float) -> float | None:
        """Dollars per 1,000 queries with ``share`` of them on the strong model (the cheapest
        rows to move first are the router's top-scored ones); None when a price is unknown."""
        if self._wc is None or self._sc is None:
            return None
        import numpy as np

        order = np.argsort(-self.table["score"].to_numpy(float), kind="stable")
        k = round(share * self.rows)
        strong = np.zeros(self.rows, dtype=bool)
        strong[order[:k]] = True
        return float(np.where(strong, self._sc, self._wc).mean() * 1000)

    @property
    def strong_only_per_1k(self) -> float | None:
        """Dollars per 1,000 queries all sent to the strong model (None when unknown)."""
        return None if self._full is None else float(self._full.mean() * 1000)

    def saving(self, share: float) -> float | None:
        """Share of the strong-only cost saved at ``share`` (negative when dearer); None when
        a price is unknown."""
        cost, full = self.cost_per_1k(share), self.strong_only_per_1k
        return None if cost is None or not full else 1 - cost / full

    @property
    def curve(self) -> Any:
        """The quality–share curve: share, quality, pgr, cost_per_1k, saving (one row per cut
        between distinct scores; cost columns None when a price is unknown)."""
        import pandas as pd

        total = self._cum[-1]
        df = pd.DataFrame({"share": self._share,
                           "quality": self.weak_quality + self._cum,
                           "pgr": self._cum / total if total > 0 else float("nan")})
        if self._wc is not None and self._sc is not None:
            import numpy as np

            # Cost at each cut: all weak, plus the extra of the rows moved to strong so far.
            _, extra = curve_points(self.table["score"].to_numpy(float), self._sc - self._wc)
            df["cost_per_1k"] = (float(np.mean(self._wc)) + extra) * 1000
            df["saving"] = 1 - df["cost_per_1k"] / self.strong_only_per_1k
        else:
            df["cost_per_1k"], df["saving"] = None, None
        return df

    @property
    def points(self) -> Any:
        """CPT(20/50/80%) and the router's own threshold: share (with CI), pgr, cost, saving."""
        import pandas as pd

        rows = []
        for p in LEVELS:
            share, ci = self.cpt(p), self.cpt_ci(p)
            rows.append({"point": f"CPT({p:.0%})", "share": share, "share_ci": ci, "pgr": p,
                         "pgr_ci": None, "cost_per_1k": self.cost_per_1k(share),
                         "saving": self.saving(share)})
        if self.strong_share is not None:
            rows.append({"point": "threshold", "share": self.strong_share, "share_ci": None,
                         "pgr": self.pgr, "pgr_ci": self.pgr_ci(),
                         "cost_per_1k": self.cost_per_1k(self.strong_share),
                         "saving": self.saving(self.strong_share)})
        return pd.DataFrame(rows).set_index("point")

    def mistakes(self, n: int = 10) -> Any:
        """The rows the router gets most wrong: sent to the weak model though only the strong
        one was right (lowest scores first), then sent to the strong model though the weak one
        was right and the strong one wrong (highest first)."""
        t = self.table.assign(gain=self._gain)
        if "routed_strong" in t:
            missed = t[~t["routed_strong"] & (t["gain"] > 0)].sort_values("score")
            wasted = t[t["routed_strong"] & (t["gain"] < 0)].sort_values("score", ascending=False)
        else:
            half = t["score"] > t["score"].median()
            missed = t[~half & (t["gain"] > 0)].sort_values("score")
            wasted = t[half & (t["gain"] < 0)].sort_values("score", ascending=False)
        import pandas as pd

        return pd.concat([missed.head(n).assign(mistake="needed strong, sent weak"),
                          wasted.head(n).assign(mistake="sent strong, weak was right")])

    # -- words and charts -------------------------------------------------------------------------
    @property
    def summary(self) -> str:
        """One sentence: the share sent to the strong model, the gap kept, the saving, APGR."""
        share = self.strong_share if self.strong_share is not None else self.cpt(0.5)
        pgr = self.pgr if self.strong_share is not None else 0.5
        saving = self.saving(share)
        ci = self.apgr_ci
        weak, strong = _short(self.weak_name), _short(self.strong_name)
        money = (" (prices unknown: no saving claimed)" if saving is None else
                 f" and costs {saving:.0%} less than {strong} alone" if saving >= 0 else
                 f" and costs {-saving:.0%} more than {strong} alone")
        band = f", 95% CI {ci[0]:.2f}–{ci[1]:.2f}" if ci else ""
        where = (f" on {self.rows} {'held-out ' if self.held_out else ''}rows"
                 + (f" ({self.dropped} training rows left out)" if self.dropped else ""))
        if self.flagged:
            where = f" on {self.rows} rows, {self.flagged} of them TRAINING rows (optimistic)"
        return (f"sending {share:.0%} of queries to {strong} keeps {pgr:.0%} of its "
                f"gain over {weak}{money}; APGR {self.apgr:.2f}{band} (random 0.50, "
                f"oracle {self.oracle_apgr:.2f}){where}.")

    def plot(self) -> Any:
        """The quality–share curve (Plotly) with weak-only, strong-only, random and oracle."""
        import plotly.graph_objects as go

        c = self.curve
        step = max(1, len(c) // 400)
        c = c.iloc[::step] if step > 1 else c
        o_share, o_cum = self._oracle
        fig = go.Figure()
        w, s = self.weak_quality, self.strong_quality
        fig.add_scatter(x=[0, 1], y=[w, w], mode="lines", name=f"weak only ({self.weak_name})",
                        line={"dash": "dot", "color": "#888"})
        fig.add_scatter(x=[0, 1], y=[s, s], mode="lines",
                        name=f"strong only ({self.strong_name})",
                        line={"dash": "dot", "color": "#333"})
        fig.add_scatter(x=[0, 1], y=[w, s], mode="lines", name="random (APGR 0.50)",
                        line={"dash": "dash", "color": "#aaa"})
        fig.add_scatter(x=o_share, y=w + o_cum, mode="lines",
                        name=f"oracle (APGR {self.oracle_apgr:.2f})",
                        line={"color": "#2ca02c", "width": 1})
        fig.add_scatter(x=c["share"], y=c["quality"], mode="lines",
                        name=f"router (APGR {self.apgr:.2f})", line={"color": "#1f77b4"})
        if self.strong_share is not None:
            fig.add_scatter(x=[self.strong_share], y=[w + (s - w) * (self.pgr or 0)],
                            mode="markers", name="at its threshold",
                            marker={"size": 10, "color": "#d62728"})
        # A short title: the whole sentence is .summary (a long title is clipped on screen).
        fig.update_layout(title=f"Quality against the share sent to {self.strong_name} · "
                                f"APGR {self.apgr:.2f}",
                          xaxis_title=f"share of queries sent to {self.strong_name}",
                          yaxis_title="quality (mean score)", xaxis_tickformat=".0%",
                          template="plotly_white")
        return fig

    @property
    def embedding_note(self) -> str:
        """One line on the embedding done outside any run ("" when unknown)."""
        parts = [f"{phase} {cost}" for phase, cost in (self.embedded or {}).items()
                 if cost.texts]
        return f"Embedding outside any run: {'; '.join(parts)}." if parts else ""

    def __repr__(self) -> str:
        note = f"\n{self.embedding_note}" if self.embedding_note else ""
        return f"<RoutingReport {self.rows} rows: {self.summary}>{note}"

    def _repr_html_(self) -> str:
        pts = self.points.to_html(float_format=lambda v: f"{v:.3f}", na_rep="unknown")
        note = f"<p>{html.escape(self.embedding_note)}</p>" if self.embedding_note else ""
        return (f"<div class='{MATHJAX_OFF}'><p>{html.escape(self.summary)}</p>{note}{pts}"
                f"</div>")


def _short(name: str) -> str:
    """``together:mistralai/Mixtral-8x7B`` → ``Mixtral-8x7B`` (for sentences)."""
    return name.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or name

