"""Routing charts: routes taken per router, and (in evals) true label → route."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

NO_ROUTE = "(no route)"
"""The route of a row whose classification failed (an error and no default route)."""
CORRECT, WRONG = "rgba(89,161,79,0.45)", "rgba(214,39,40,0.40)"


def route_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How often each route was taken, per router (``pipeline · step`` of the router span).

    Columns: router, route, count, share (of that router's decisions), mean_confidence,
    relabelled (decisions where the raw classifier label differed from the route, e.g. a
    fallback to the default route).

    >>> route_counts(orchnb.traces())   # doctest: +SKIP
    """
    import pandas as pd

    st.require(df, ("pipeline", "step", "kind", "route"), "route_counts")
    r = df[df["route"].notna()]
    # One decision per router invocation: the router's own span (the run span for a top-level
    # router, a pattern span for a nested one) also carries the route of its classify step.
    own = r["kind"].isin(["run", "pattern"])
    if "pattern" in r.columns:
        own &= r["pattern"].astype(str).str.endswith("router")  # router, quality_router
    if own.any():
        r = r[own]
    raw = r["raw_label"] if "raw_label" in r.columns else pd.Series(pd.NA, index=r.index)
    conf = r["confidence"] if "confidence" in r.columns else pd.Series(pd.NA, index=r.index)
    norm = raw.astype("string").str.strip().str.lower()
    r = r.assign(
        router=r["pipeline"].astype(str).where(
            r["kind"] == "run", r["pipeline"].astype(str) + " · " + r["step"].astype(str)),
        _conf=st.numeric(conf),
        _relabel=(norm.notna() & (norm != r["route"].astype("string").str.lower()))
        .fillna(False).astype(int),
    )
    g = r.groupby(["router", "route"], sort=True)
    out = g.agg(count=("route", "size"), mean_confidence=("_conf", "mean"),
                relabelled=("_relabel", "sum")).reset_index()
    out.insert(3, "share", out["count"] / out.groupby("router")["count"].transform("sum"))
    return out.sort_values(["router", "count"], ascending=[True, False], kind="stable"
                           ).reset_index(drop=True)


def routes(df: pd.DataFrame) -> go.Figure:
    """Horizontal bars: how often each route was taken, grouped per router, with shares.

    >>> routes(orchnb.traces()).show()   # doctest: +SKIP
    """
    import plotly.graph_objects as go

    t = route_counts(df)
    routers = list(dict.fromkeys(t["router"]))
    n = int(t["count"].sum())
    title = f"Routes taken · {st.plural(n, 'decision')}"
    if len(routers) == 1:
        title += f" · router {routers[0]}"
    fig = st.new_figure(title, x="decisions (count)", y=None,
                        height=int(min(max(300, 140 + 40 * len(t)), 1800)))
    if t.empty:
        fig.add_annotation(text="no router spans in this trace", xref="paper", yref="paper",
                           x=0.5, y=0.5, showarrow=False, font={"size": 14, "color": "#888"})
        return fig
    route_colors = st.color_map(t["route"])
    router_colors = st.color_map(routers)
    text = [f"{c:,} ({s:.0%})" for c, s in zip(t["count"], t["share"], strict=True)]
    hover = [
        f"<b>{r.router}</b><br>route {r.route}: {st.plural(r.count, 'decision')} ({r.share:.0%})"
        + ("" if st.is_missing(r.mean_confidence) else
           f"<br>mean confidence {r.mean_confidence:.2f}")
        + (f"<br>{r.relabelled} relabelled (raw label ≠ route)" if r.relabelled else "")
        for r in t.itertuples(index=False)
    ]
    if len(routers) == 1:
        fig.add_trace(go.Bar(
            orientation="h", y=t["route"], x=t["count"], text=text, textposition="auto",
            marker_color=[route_colors[r] for r in t["route"]], hovertext=hover,
            hoverinfo="text", showlegend=False,
        ))
        fig.update_yaxes(categoryorder="array", categoryarray=list(t["route"])[::-1])
    else:
        for router in routers:
            keep = (t["router"] == router).to_numpy()
            part = t[keep]
            fig.add_trace(go.Bar(
                name=router, orientation="h", y=[list(part["router"]), list(part["route"])],
                x=part["count"], text=[x for x, k in zip(text, keep, strict=True) if k],
                textposition="auto", marker_color=router_colors[router],
                hovertext=[h for h, k in zip(hover, keep, strict=True) if k], hoverinfo="text",
            ))
        fig.update_yaxes(autorange="reversed")
        fig.update_layout(legend_title_text="router")
    fig.update_xaxes(rangemode="tozero", separatethousands=True)
    fig.update_yaxes(title_text=None)
    return fig


def _pairs(evals: pd.DataFrame, label: str, route: str) -> tuple[pd.DataFrame, list[str]]:
    st.require(evals, (label, route), "route_flow")
    e = evals[[label, route]].astype(object).where(evals[[label, route]].notna(), NO_ROUTE)
    e = e.astype(str)
    ct = e.groupby([label, route]).size().rename("count").reset_index()
    labels = sorted(set(e[label]))
    order = labels + sorted(set(e[route]) - set(labels))
    return ct, order


def _accuracy(evals: pd.DataFrame, label: str, route: str) -> str:
    ok = (evals[label].astype(str) == evals[route].astype(str)).mean() if len(evals) else 0.0
    return f"accuracy {ok:.0%} (n={len(evals):,})"


def route_sankey(evals: pd.DataFrame, *, label: str = "label", route: str = "route") -> go.Figure:
    """Sankey from true label (left) to route taken (right); misroutes are red links.

    ``evals`` has one row per query with the true ``label`` and the ``route`` taken (for example
    ``report.predictions``).

    >>> route_sankey(report.predictions)   # doctest: +SKIP
    """
    import plotly.graph_objects as go

    ct, order = _pairs(evals, label, route)
    labels = [x for x in order if x in set(ct[label])]
    routes_ = [x for x in order if x in set(ct[route])]
    cmap = st.color_map(order)
    tot_l = ct.groupby(label)["count"].sum()
    tot_r = ct.groupby(route)["count"].sum()
    nodes = [f"{x} ({tot_l[x]})" for x in labels] + [f"{x} ({tot_r[x]})" for x in routes_]
    idx_l = {x: i for i, x in enumerate(labels)}
    idx_r = {x: len(labels) + i for i, x in enumerate(routes_)}
    good = ct[label] == ct[route]
    fig = st.new_figure(f"True label → route · {_accuracy(evals, label, route)}", height=460)
    fig.add_trace(go.Sankey(
        arrangement="snap",
        node={"label": nodes, "pad": 18, "thickness": 18,
              "color": [cmap[x] for x in labels] + [cmap[x] for x in routes_],
              "line": {"width": 0},
              "hovertemplate": "%{label}<br>queries: %{value}<extra></extra>"},
        link={"source": [idx_l[x] for x in ct[label]],
              "target": [idx_r[x] for x in ct[route]],
              "value": ct["count"].tolist(),
              "color": [CORRECT if g else WRONG for g in good],
              "hovertemplate": "%{source.label} → %{target.label}: %{value}<extra></extra>"},
    ))
    for x, text in ((0.0, "true label"), (1.0, "route taken")):
        fig.add_annotation(text=f"<b>{text}</b>", x=x, y=1.0, xref="paper", yref="paper",
                           xanchor="left" if x == 0 else "right", yanchor="bottom",
                           showarrow=False)
    fig.add_annotation(text="green: routed to its label · red: misrouted", x=0.5, y=-0.06,
                       xref="paper", yref="paper", showarrow=False,
                       font={"size": 11, "color": "#666"})
    return fig


def route_heatmap(
    evals: pd.DataFrame, *, label: str = "label", route: str = "route", normalize: bool = True
) -> go.Figure:
    """Heatmap of true label (rows) × route taken (columns), counts written in each cell.

    Colour is the share of each label's queries (``normalize=True``) or the raw count.

    >>> route_heatmap(report.predictions, normalize=False)   # doctest: +SKIP
    """
    import numpy as np
    import plotly.graph_objects as go

    ct, order = _pairs(evals, label, route)
    rows = [x for x in order if x in set(ct[label])]
    cols = [x for x in order if x in set(ct[route])]
    m = ct.pivot_table(index=label, columns=route, values="count", aggfunc="sum", fill_value=0)
    m = m.reindex(index=rows, columns=cols, fill_value=0)
    counts = m.to_numpy(dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    z = share if normalize else counts
    text = [[f"{int(c)}<br>{s:.0%}" if c else "" for c, s in zip(cr, sr, strict=True)]
            for cr, sr in zip(counts, share, strict=True)]
    fig = st.new_figure(f"True label × route · {_accuracy(evals, label, route)}",
                        x="route taken", y="true label",
                        height=int(min(max(360, 160 + 60 * len(rows)), 1600)))
    fig.add_trace(go.Heatmap(
        z=z, x=cols, y=rows, text=text, texttemplate="%{text}", colorscale="Blues",
        zmin=0, zmax=1 if normalize else None, xgap=2, ygap=2,
        customdata=counts, textfont={"size": 13},
        colorbar={"title": {"text": "share of label" if normalize else "queries"},
                  "tickformat": ".0%" if normalize else ",d"},
        hovertemplate="label %{y} → route %{x}<br>queries: %{customdata:,}"
        + (" (%{z:.0%} of label)" if normalize else "") + "<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(side="bottom", type="category")
    return fig
