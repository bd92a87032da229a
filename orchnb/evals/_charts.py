"""Eval charts (Plotly figures, returned so they can be restyled). The label × route heatmap and
Sankey are ``orchnb.viz``'s; this module adds the per-route bars, the threshold sweep, the
cost–accuracy scatter with its Pareto front, and the RouteLLM-style quality/share curve."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..viz import NO_ROUTE, route_heatmap
from ..viz import style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ._report import EvalReport

_METRIC_COLORS = {"precision": "#4E79A7", "recall": "#F28E2B", "f1": "#59A14F"}


def confusion(report: EvalReport, normalize: bool = True) -> go.Figure:
    """The label × route heatmap of ``orchnb.viz`` over the report's predictions."""
    p = report.predictions
    fig = route_heatmap(p.assign(route=p["route"].where(p["route"].notna(), NO_ROUTE)),
                        normalize=normalize)
    fig.update_layout(title_text=f"{report.name}: {fig.layout.title.text}")
    return fig


def per_route(report: EvalReport) -> go.Figure:
    """Grouped bars of precision, recall and F1 per route, support in the axis labels."""
    import plotly.graph_objects as go

    t = report.per_route
    ticks = [f"{r}<br>(n={int(n)})" for r, n in zip(t.index, t["support"], strict=True)]
    fig = st.new_figure(f"{report.name}: per-route precision, recall and F1 · macro F1 "
                        f"{report.macro_f1:.3f}", x="route (support)", y="score",
                        height=420)  # fmt: skip
    for metric, color in _METRIC_COLORS.items():
        fig.add_trace(go.Bar(
            name=metric.upper() if metric == "f1" else metric, x=ticks, y=t[metric],
            marker_color=color, text=[f"{v:.2f}" for v in t[metric]], textposition="outside",
            customdata=t[["support", "predicted"]].to_numpy(),
            hovertemplate=f"%{{x}}<br>{metric} %{{y:.3f}}<br>%{{customdata[1]}} routed here"
                          "<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(barmode="group", legend_title_text=None)
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return fig


def threshold(sweep: pd.DataFrame, name: str, current: float | None = None) -> go.Figure:
    """Accuracy, accuracy on answered rows and abstention rate against the threshold."""
    import plotly.graph_objects as go

    fig = st.new_figure(f"{name}: embedding threshold sweep", x="similarity threshold",
                        y="share of rows", height=420)
    lines = (("accuracy", "accuracy", "#4E79A7", "solid"),
             ("answered_accuracy", "accuracy on answered rows", "#59A14F", "dot"),
             ("abstention_rate", "abstention rate (→ default route)", "#F28E2B", "dash"))
    for col, label, color, dash in lines:
        fig.add_trace(go.Scatter(
            x=sweep["threshold"], y=sweep[col], name=label, mode="lines+markers",
            line={"color": color, "dash": dash}, marker={"size": 5},
            hovertemplate=f"threshold %{{x:.3f}}<br>{label} %{{y:.1%}}<extra></extra>",
        ))  # fmt: skip
    if current is not None:
        fig.add_vline(x=current, line={"color": "#888", "dash": "dot"},
                      annotation_text=f"current {current:g}", annotation_position="top")
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return fig


def risk_coverage(curve: pd.DataFrame, name: str, current: float | None = None) -> go.Figure:
    """Risk (share of answered rows routed wrongly) against coverage (share answered), one
    point per threshold; the threshold in use is marked."""
    import plotly.graph_objects as go

    fig = st.new_figure(f"{name}: risk–coverage", x="coverage (share of rows answered)",
                        y="risk (share of answered rows routed wrongly)", height=420)
    fig.add_trace(go.Scatter(
        x=curve["coverage"], y=curve["risk"], mode="lines", name="risk",
        line={"color": "#4E79A7"}, customdata=curve["threshold"],
        hovertemplate="threshold %{customdata:.3f}<br>coverage %{x:.1%}<br>risk %{y:.1%}"
                      "<extra></extra>"))
    if current is not None and len(curve):
        kept = curve[curve["threshold"] >= current]
        at = kept.iloc[-1] if len(kept) else curve.iloc[0]
        fig.add_trace(go.Scatter(
            x=[at["coverage"]], y=[at["risk"]], mode="markers+text", name="in use",
            marker={"color": "#E15759", "size": 10}, text=[f"threshold {current:.3f}"],
            textposition="top left", hoverinfo="skip"))
    fig.update_xaxes(range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(rangemode="tozero", tickformat=".0%")
    fig.update_layout(showlegend=False)
    return fig


def cost_accuracy(summary: pd.DataFrame) -> go.Figure:
    """Cost per 1k queries (x) against accuracy (y, with its bootstrap interval); the Pareto
    front is a line through the candidates no other one beats on both."""
    import numpy as np
    import plotly.graph_objects as go

    s = summary.reset_index()
    cost = s["cost_per_1k"].astype(float)
    known = cost.notna()
    fig = st.new_figure("Cost against accuracy · ★ Pareto front", x="cost per 1,000 queries (USD)",
                        y="accuracy", height=460)  # fmt: skip
    colors = st.color_map(s["router"].astype(str))
    for on_front in (True, False):
        part = s[known & (s["pareto"] == on_front)]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["cost_per_1k"], y=part["accuracy"], mode="markers+text",
            name="Pareto front" if on_front else "dominated",
            text=[("★ " if on_front else "") + str(r) for r in part["router"]],
            textposition="top center",
            marker={"size": 14 if on_front else 10, "symbol": "star" if on_front else "circle",
                    "color": [colors[str(r)] for r in part["router"]],
                    "line": {"width": 1, "color": "#333"}},
            error_y={"type": "data", "symmetric": False,
                     "array": part["ci_high"] - part["accuracy"],
                     "arrayminus": part["accuracy"] - part["ci_low"], "color": "#999"},
            customdata=np.column_stack([part[["classifier", "ci_low", "ci_high", "macro_f1"]],
                                        [st.fmt_usd(v) for v in part["cost_per_1k"]]]),
            hovertemplate="<b>%{text}</b><br>%{customdata[0]}<br>accuracy %{y:.1%} "
                          "(%{customdata[1]:.1%}–%{customdata[2]:.1%})<br>macro F1 "
                          "%{customdata[3]:.3f}<br>%{customdata[4]} per 1k queries<extra></extra>",
        ))  # fmt: skip
    front = s[known & s["pareto"]].sort_values("cost_per_1k")
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=front["cost_per_1k"], y=front["accuracy"], mode="lines",
                                 line={"color": "#59A14F", "dash": "dash"}, hoverinfo="skip",
                                 showlegend=False))  # fmt: skip
    missing = s[~known]
    if not missing.empty:
        fig.add_annotation(text="unknown price: " + ", ".join(map(str, missing["router"])),
                           xref="paper", yref="paper", x=0, y=-0.18, showarrow=False,
                           font={"size": 11, "color": "#888"})  # fmt: skip
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(rangemode="tozero", **st.money_axis(s["cost_per_1k"]))
    return fig


def quality_share(summary: pd.DataFrame, curves: Mapping[str, pd.DataFrame]) -> go.Figure:
    """RouteLLM-style curve: quality (rows routed to their own route, or to the dearest route,
    which is assumed to answer anything) against the share of traffic sent to the dearest route.
    Candidates are points; embedding candidates' threshold sweeps are curves; sending
    everything to the dearest route is the (100%, 100%) corner."""
    import numpy as np
    import plotly.graph_objects as go

    s = summary.reset_index()
    routes = sorted(set(s["expensive_route"].astype(str)))
    title = "Quality against traffic to the dearest route"
    if len(routes) == 1:
        title += f" ({routes[0]})"
    fig = st.new_figure(title, x="share of queries sent to the dearest route",
                        y="quality (own route, or the dearest)", height=460)  # fmt: skip
    colors = st.color_map(s["router"].astype(str))
    for name, sweep in curves.items():
        fig.add_trace(go.Scatter(
            x=sweep["expensive_share"], y=sweep["quality"], mode="lines", name=f"{name} sweep",
            line={"color": colors.get(name, "#888"), "dash": "dot"},
            customdata=np.column_stack([sweep["threshold"],
                                        [st.fmt_usd(v) for v in sweep["cost_per_1k"]]]),
            hovertemplate=f"{name} · threshold %{{customdata[0]:.3f}}<br>%{{x:.0%}} to the "
                          "dearest route, quality %{y:.1%}<br>%{customdata[1]} per 1k"
                          "<extra></extra>",
        ))  # fmt: skip
    # Candidates on the same spot (same rules at other prices) share one label.
    spot = s.groupby(["expensive_share", "quality"])["router"].transform(
        lambda names: ", ".join(map(str, names)))
    first = ~s.duplicated(["expensive_share", "quality"])
    fig.add_trace(go.Scatter(
        x=s["expensive_share"], y=s["quality"], mode="markers+text", name="candidates",
        text=[str(t) if f else "" for t, f in zip(spot, first, strict=True)],
        textposition="top center", customdata=s["router"].astype(str),
        marker={"size": 12, "color": [colors[str(r)] for r in s["router"]],
                "line": {"width": 1, "color": "#333"}},
        hovertemplate="<b>%{customdata}</b><br>%{x:.0%} to the dearest route<br>quality %{y:.1%}"
                      "<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Scatter(x=[1.0], y=[1.0], mode="markers+text", name="all → dearest",
                             text=["all → dearest"], textposition="bottom left",
                             marker={"size": 11, "symbol": "diamond", "color": "#888"}))
    qs = [float(v) for v in s["quality"]]
    qs += [float(v) for c in curves.values() for v in c["quality"]]
    qs = [q for q in qs if not math.isnan(q)]
    low = min(qs) if qs else 0.0
    fig.update_xaxes(range=[-0.02, 1.05], tickformat=".0%")
    fig.update_yaxes(range=[max(0.0, low - 0.05), 1.04], tickformat=".0%")
    return fig
