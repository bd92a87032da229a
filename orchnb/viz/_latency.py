"""Latency distributions per step (or model) across runs, with p50 and p95."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


def _select(df: pd.DataFrame, by: str | list[str], kind: str | None) -> tuple[pd.DataFrame, list]:
    cols = [by] if isinstance(by, str) else list(by)
    st.require(df, ["kind", "start", "latency_ms", *cols], "latency")
    if kind is None:
        kind = "model" if cols == ["model"] else "step"
        if kind == "step" and not (df["kind"] == "step").any():
            kind = "model"
    sel = df if kind == "all" else df[df["kind"] == kind]
    sel = sel.assign(_lat=st.latency_ms(sel)).dropna(subset=["_lat", *cols])
    return sel, cols


def latency_stats(
    df: pd.DataFrame, *, by: str | list[str] = "step", kind: str | None = None
) -> pd.DataFrame:
    """Latency percentiles per group, in execution order: count, mean, p50, p95, max (ms).

    ``kind`` picks the spans (``"step"``, ``"model"``, ``"tool"``, ``"pattern"``, ``"run"`` or
    ``"all"``); by default step spans, or model spans when ``by="model"``. Quantiles are linear
    (numpy's default).

    >>> latency_stats(orchnb.traces(), by="model")   # doctest: +SKIP
    """
    sel, cols = _select(df, by, kind)
    g = sel.groupby(cols, sort=False, dropna=True)
    out = g["_lat"].agg(
        count="count", mean_ms="mean", p50_ms=lambda s: s.quantile(0.5),
        p95_ms=lambda s: s.quantile(0.95), max_ms="max",
    )
    first = g["start"].min()
    return out.loc[first.sort_values(kind="stable").index].reset_index()


def latency(
    df: pd.DataFrame,
    *,
    by: str | list[str] = "step",
    kind: str | None = None,
    max_points: int = st.MAX_POINTS,
    log_y: bool = False,
) -> go.Figure:
    """Box plot of latency per step across runs; p50 and p95 marked and written under each box.

    With up to ``max_points`` spans every observation is drawn as a point next to its box;
    above that, boxes are drawn from precomputed quartiles (Tukey whiskers, clipped to the data)
    so the figure stays small whatever the number of runs. ``by`` may be ``"model"`` or a list
    such as ``["pipeline", "step"]``.

    >>> fig = latency(orchnb.traces())                   # doctest: +SKIP
    >>> fig = latency(orchnb.traces(), by="model", log_y=True)  # doctest: +SKIP
    """
    sel, cols = _select(df, by, kind)
    stats = latency_stats(df, by=by, kind=kind)
    label = " · ".join(cols)
    what = str(sel["kind"].iloc[0]) if len(sel) and sel["kind"].nunique() == 1 else "all"
    fig = st.new_figure(
        f"Latency per {label} ({what} spans, {st.plural(len(sel), 'observation')})",
        x="latency (ms)", y=None, height=int(min(max(360, 150 + 56 * len(stats)), 2000)),
    )
    if sel.empty:
        return _empty(fig)
    keys = [tuple(r) for r in stats[cols].itertuples(index=False)]
    names = [" · ".join(str(k) for k in key) for key in keys]
    cmap = st.colors_for(df, cols, names)
    aggregate = len(sel) > max_points
    groups = {(k if isinstance(k, tuple) else (k,)): g for k, g in sel.groupby(cols, sort=False)}
    for key, name in zip(keys, names, strict=True):
        _add_box(fig, groups[key]["_lat"].to_numpy(dtype="float64"), name, cmap[name], aggregate)
    _add_percentiles(fig, stats, names)
    if aggregate:
        fig.add_annotation(
            text=f"{st.plural(len(sel), 'span')}: boxes from precomputed quartiles", xref="paper",
            yref="paper", x=0, y=1.02, xanchor="left", yanchor="bottom", showarrow=False,
            font={"size": 11, "color": "#666"},
        )
    fig.update_xaxes(type="log" if log_y else "linear")
    if not log_y:
        _clip_outliers(fig, sel["_lat"].to_numpy(dtype="float64"), stats)
    return fig


def _clip_outliers(fig: go.Figure, lat: Any, stats: pd.DataFrame) -> None:
    """One very slow call would squash every box against zero: when the slowest observation is
    over 3x the largest p95, the axis ends just past that p95 and a note says what is off it."""
    import numpy as np

    p95 = float(np.nanmax(stats["p95_ms"])) if len(stats) else 0.0
    top = float(np.nanmax(lat)) if len(lat) else 0.0
    if not p95 > 0 or top <= 3 * p95:
        return
    end = p95 * 1.3
    off = int(np.sum(lat > end))
    fig.update_xaxes(range=[0, end])
    fig.add_annotation(
        text=f"{st.plural(off, 'slower observation')} off the chart, up to {st.fmt_ms(top)} "
             "(latency(..., log_y=True) shows all)", xref="paper", yref="paper", x=1, y=1.02,
        xanchor="right", yanchor="bottom", showarrow=False, font={"size": 11, "color": "#666"})


def _add_box(fig: go.Figure, vals: Any, name: str, color: str, aggregate: bool) -> None:
    """One box: every point when not ``aggregate``, else precomputed quartiles and fences."""
    import numpy as np
    import plotly.graph_objects as go

    common = {"name": name, "orientation": "h", "marker_color": color,
              "line_color": color, "showlegend": False, "hoverinfo": "x+name"}
    if aggregate:
        q1, med, q3 = np.quantile(vals, [0.25, 0.5, 0.75])
        iqr = q3 - q1
        lo = float(vals[vals >= q1 - 1.5 * iqr].min())
        hi = float(vals[vals <= q3 + 1.5 * iqr].max())
        fig.add_trace(go.Box(y=[name], q1=[q1], median=[med], q3=[q3], lowerfence=[lo],
                             upperfence=[hi], **common))
    else:
        few = len(vals) <= 200
        fig.add_trace(go.Box(
            x=vals, y=[name] * len(vals), boxpoints="all" if few else "outliers",
            jitter=0.35, pointpos=0, marker={"size": 5, "opacity": 0.6, "color": color},
            **{k: v for k, v in common.items() if k != "marker_color"},
        ))


def _add_percentiles(fig: go.Figure, stats: pd.DataFrame, names: list[str]) -> None:
    """p95 and p50 markers on each box, written into the tick labels too; axes and legend."""
    import numpy as np
    import plotly.graph_objects as go

    fig.add_trace(go.Scatter(
        y=names, x=stats["p95_ms"], mode="markers", name="p95",
        marker={"symbol": "line-ns", "size": 26, "line": {"width": 3, "color": "#D62728"}},
        customdata=np.stack([stats["p50_ms"], stats["p95_ms"], stats["count"]], axis=1),
        hovertemplate="<b>%{y}</b><br>p50 %{customdata[0]:,.0f} ms<br>"
        "p95 %{customdata[1]:,.0f} ms<br>n = %{customdata[2]:,}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        y=names, x=stats["p50_ms"], mode="markers", name="p50 (median)",
        marker={"symbol": "line-ns", "size": 26, "line": {"width": 3, "color": "#2A3F5F"}},
        hoverinfo="skip",
    ))
    ticks = [
        f"{n}<br><span style='font-size:11px;color:#555'>p50 {st.fmt_ms(a)} · "
        f"p95 {st.fmt_ms(b)}</span>"
        for n, a, b in zip(names, stats["p50_ms"], stats["p95_ms"], strict=True)
    ]
    fig.update_yaxes(tickmode="array", tickvals=names, ticktext=ticks, autorange="reversed",
                     title_text=None)
    fig.update_xaxes(ticksuffix=" ms", separatethousands=True, rangemode="tozero")
    fig.update_layout(legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02,
                              "yanchor": "bottom"}, boxgap=0.35)


def _empty(fig: go.Figure) -> go.Figure:
    fig.add_annotation(text="no spans to show", xref="paper", yref="paper", x=0.5, y=0.5,
                       showarrow=False, font={"size": 14, "color": "#888"})
    return fig
