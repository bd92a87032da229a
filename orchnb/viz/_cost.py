"""Token and USD cost by step and by model, and cumulative cost over runs.

Costs and tokens are summed over the calls (model and tool spans) only, so nested step and
pattern spans never count twice. A model call without a known price is *unpriced*: it adds
nothing to a USD total and is always shown as such ("3 unpriced calls"), never as $0. A call
whose provider reported no usage has estimated tokens (``usage_estimated``): counted, and
flagged in the token chart (hatched bars, "estimated" in the hover text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchnb.viz import _style as st
from orchnb.viz._cost_classes import class_bars

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_NEEDS = ("run_id", "kind", "step", "model", "start", "cost_usd", "input_tokens",
          "output_tokens", "cached_tokens")


def _calls(df: pd.DataFrame) -> pd.DataFrame:
    st.require(df, _NEEDS, "cost")
    c = st.calls(df)
    return c.assign(
        _cost=st.numeric(c["cost_usd"]).where(~st.unpriced_mask(c)),
        _unpriced=st.unpriced_mask(c).astype(int),
        _in=st.numeric(c["input_tokens"]).fillna(0),
        _out=st.numeric(c["output_tokens"]).fillna(0),
        _cached=st.numeric(c["cached_tokens"]).fillna(0),
        _est=(c["usage_estimated"].astype("boolean").fillna(False).astype(int)
              if "usage_estimated" in c.columns else 0),
    )


def cost_table(df: pd.DataFrame, *, by: str | list[str] = "step") -> pd.DataFrame:
    """Calls, tokens and USD per group, most expensive first.

    ``cost_usd`` sums the priced calls (NaN when none of the group's calls is priced);
    ``unpriced_calls`` counts the calls whose price is unknown, ``estimated_calls`` those whose
    tokens are estimated (the provider reported no usage).

    >>> cost_table(orchnb.traces(), by="model")   # doctest: +SKIP
    """
    import pandas as pd

    cols = [by] if isinstance(by, str) else list(by)
    c = _calls(df).dropna(subset=cols)
    g = c.groupby(cols, sort=False)
    out = pd.DataFrame({
        "calls": g.size(),
        "input_tokens": g["_in"].sum().astype("int64"),
        "output_tokens": g["_out"].sum().astype("int64"),
        "cached_tokens": g["_cached"].sum().astype("int64"),
        "cost_usd": g["_cost"].sum(min_count=1),
        "unpriced_calls": g["_unpriced"].sum().astype("int64"),
        "estimated_calls": g["_est"].sum().astype("int64"),
    })
    out = out.sort_values("cost_usd", ascending=False, na_position="last", kind="stable")
    return out.reset_index()


def _label(t: pd.DataFrame, cols: list[str]) -> list[str]:
    return [" · ".join(str(v) for v in r) for r in t[cols].itertuples(index=False)]


def _unpriced_note(fig: go.Figure, n: int) -> None:
    if n:
        fig.add_annotation(
            text=f"⚠ {st.plural(n, 'unpriced call')}: price unknown, not included in totals",
            xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom",
            showarrow=False, font={"size": 12, "color": "#7A5B00"}, bgcolor="#FFF4CE",
        )


def cost(
    df: pd.DataFrame, *, by: str | list[str] = "step", color: str | None = None
) -> go.Figure:
    """Horizontal bars of USD per step (or ``by="model"``), most expensive on top.

    ``color="model"`` (with ``by="step"``) stacks each step's bar by model; ``color="class"``
    by token class (input, output, cache read, cache writes, batch). Groups with unpriced
    calls get a grey ✕ marker and "n unpriced" text; a group whose calls are all unpriced gets no
    bar at all, never a $0 one.

    >>> cost(orchnb.traces(), by="model").show()   # doctest: +SKIP
    """
    cols = [by] if isinstance(by, str) else list(by)
    name = " · ".join(cols)
    t = cost_table(df, by=cols)
    labels = _label(t, cols)
    total, unpriced = t["cost_usd"].sum(), int(t["unpriced_calls"].sum())
    title = f"Cost by {name} · total {st.fmt_usd(total)}"
    if unpriced:
        title += f" + {st.plural(unpriced, 'unpriced call')}"
    fig = st.new_figure(title, x="cost (USD)", y=None,
                        height=int(min(max(320, 140 + 44 * len(t)), 1800)))
    if color == "class":  # input / output / cache read / cache writes / batch
        class_bars(fig, df, cols)
    elif color and color not in cols:
        _stacked_bars(fig, df, cols, color)
    else:
        _plain_bars(fig, df, t, cols, labels)
    n_up = _unpriced_markers(fig, t, cols)
    _unpriced_note(fig, unpriced)
    order = labels[::-1]
    fig.update_yaxes(categoryorder="array", categoryarray=order, title_text=None,
                     ticklabelstandoff=14 if n_up else 0)
    fig.update_xaxes(rangemode="tozero", **st.money_axis(t["cost_usd"]))  # stacks sum to these
    # Below the x-axis title, not on it.
    fig.update_layout(legend={"orientation": "h", "y": -0.3, "x": 0, "yanchor": "top"},
                      margin={"b": 90})
    return fig


def _stacked_bars(fig: go.Figure, df: pd.DataFrame, cols: list[str], color: str) -> None:
    """One bar trace per value of ``color``, stacked within each group of ``cols``."""
    import numpy as np
    import plotly.graph_objects as go

    sub = cost_table(df, by=[*cols, color])
    cmap = st.colors_for(df, [color], sub[color].astype(str))
    for value, part in sub.groupby(color, sort=True):
        part = part[part["cost_usd"].notna()]
        fig.add_trace(go.Bar(
            name=str(value), orientation="h", y=_label(part, cols), x=part["cost_usd"],
            marker_color=cmap[str(value)],
            customdata=np.column_stack([part[["calls", "input_tokens", "output_tokens"]],
                                        [st.fmt_usd(v) for v in part["cost_usd"]]]),
            hovertemplate=f"<b>%{{y}}</b><br>{color}: {value}<br>cost %{{customdata[3]}}<br>"
            "calls %{customdata[0]}<br>tokens %{customdata[1]:,} in / "
            "%{customdata[2]:,} out<extra></extra>",
        ))
    fig.update_layout(barmode="stack", legend_title_text=color)


def _plain_bars(
    fig: go.Figure, df: pd.DataFrame, t: pd.DataFrame, cols: list[str], labels: list[str]
) -> None:
    """One bar per priced group; all-unpriced groups get no bar."""
    import plotly.graph_objects as go

    cmap = st.colors_for(df, cols, labels)
    priced = t["cost_usd"].notna().to_numpy()
    shown = [lb for lb, p in zip(labels, priced, strict=True) if p]
    fig.add_trace(go.Bar(
        name="cost (USD)", orientation="h", y=shown, x=t.loc[priced, "cost_usd"],
        marker_color=[cmap[lb] for lb in shown],
        text=[st.fmt_usd(v) for v in t.loc[priced, "cost_usd"]], textposition="auto",
        customdata=t.loc[priced, ["calls", "input_tokens", "output_tokens",
                                  "unpriced_calls"]].to_numpy(),
        hovertemplate="<b>%{y}</b><br>cost %{text}<br>calls %{customdata[0]} "
        "(%{customdata[3]} unpriced)<br>tokens %{customdata[1]:,} in / "
        "%{customdata[2]:,} out<extra></extra>", showlegend=False,
    ))


def _unpriced_markers(fig: go.Figure, t: pd.DataFrame, cols: list[str]) -> int:
    """A grey ✕ and "n unpriced" on groups with unpriced calls; returns how many groups."""
    import plotly.graph_objects as go

    up = t[t["unpriced_calls"] > 0]
    if len(up):
        fig.add_trace(go.Scatter(
            name="unpriced calls (price unknown)", y=_label(up, cols), x=[0] * len(up),
            mode="markers+text", marker={"symbol": "x-thin-open", "size": 14,
                                         "color": st.UNPRICED_COLOR, "line": {"width": 2}},
            text=[f"  {n} unpriced" for n in up["unpriced_calls"]], textposition="middle right",
            textfont={"color": "#555", "size": 11}, cliponaxis=False,
            hovertemplate="<b>%{y}</b><br>%{text}: price unknown<extra></extra>",
        ))
    return len(up)


def tokens(df: pd.DataFrame, *, by: str | list[str] = "step") -> go.Figure:
    """Stacked bars of tokens per step (or model): uncached input, cached input, output.

    Groups holding calls with estimated usage (no usage reported) are hatched and say so.

    >>> tokens(run.trace.df, by="model")   # doctest: +SKIP
    """
    import plotly.graph_objects as go

    cols = [by] if isinstance(by, str) else list(by)
    t = cost_table(df, by=cols)
    t = t.assign(_total=t["input_tokens"] + t["output_tokens"]).sort_values(
        "_total", ascending=False, kind="stable")
    labels = _label(t, cols)
    cached = t["cached_tokens"].clip(upper=t["input_tokens"])
    parts = [("input (uncached)", t["input_tokens"] - cached, st.TOKEN_COLORS["input"]),
             ("input (cached)", cached, st.TOKEN_COLORS["cached"]),
             ("output", t["output_tokens"], st.TOKEN_COLORS["output"])]
    total, n_calls = int(t["_total"].sum()), int(t["calls"].sum())
    n_est = int(t["estimated_calls"].sum())
    title = f"Tokens by {' · '.join(cols)} · {total:,} tokens in {st.plural(n_calls, 'call')}"
    if n_est:
        title += f" ({n_est} estimated)"
    fig = st.new_figure(title, x="tokens", y=None,
                        height=int(min(max(320, 140 + 44 * len(t)), 1800)))
    est = [f"<br>estimated: {e} of {c} calls reported no usage" if e else ""
           for e, c in zip(t["estimated_calls"], t["calls"], strict=True)]
    hatch = ["/" if e else "" for e in t["estimated_calls"]]
    for name, vals, color in parts:
        fig.add_trace(go.Bar(
            name=name, orientation="h", y=labels, x=vals, customdata=est,
            marker={"color": color, "pattern": {"shape": hatch, "fillmode": "overlay",
                                                "fgcolor": "rgba(0,0,0,0.35)"}},
            hovertemplate=f"<b>%{{y}}</b><br>{name}: %{{x:,}} tokens%{{customdata}}"
            "<extra></extra>",
        ))
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": 1.0, "x": 1,
                                               "xanchor": "right", "yanchor": "bottom",
                                               "traceorder": "normal"})
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], title_text=None)
    fig.update_xaxes(separatethousands=True, rangemode="tozero")
    return fig


def cumulative_cost(df: pd.DataFrame, *, max_points: int = st.MAX_POINTS) -> go.Figure:
    """Cumulative USD over runs in start order, one marker per run coloured by pipeline.

    Runs with unpriced calls are ringed in grey and counted in a note; their unpriced calls add
    nothing to the total. Above ``max_points`` runs the line is thinned to ``max_points`` points
    and drawn with WebGL.

    >>> cumulative_cost(orchnb.traces())   # doctest: +SKIP
    """
    import numpy as np
    import plotly.graph_objects as go

    r = _per_run_cost(df)
    n_up_calls, n_up_runs = int(r["unpriced"].sum()), int((r["unpriced"] > 0).sum())
    title = f"Cumulative cost over {st.plural(len(r), 'run')} · {st.fmt_usd(r['cum'].iloc[-1])}"
    fig = st.new_figure(title, x="run (in start order)", y="cumulative cost (USD)", height=440)
    big = len(r) > max_points
    shown = r.iloc[np.unique(np.linspace(0, len(r) - 1, max_points).astype(int))] if big else r
    scatter = go.Scattergl if big else go.Scatter
    fig.add_trace(scatter(
        x=shown["n"], y=shown["cum"], mode="lines", name="cumulative", showlegend=False,
        line={"color": "#9AA5B1", "width": 2}, hoverinfo="skip",
    ))
    _run_markers(fig, shown, st.colors_for(df, ["pipeline"], r["pipeline"].astype(str)), scatter)
    up = shown[shown["unpriced"] > 0]
    if len(up):
        fig.add_trace(scatter(
            x=up["n"], y=up["cum"], mode="markers", name="run with unpriced calls",
            marker={"symbol": "circle-open", "size": 14, "color": st.UNPRICED_COLOR,
                    "line": {"width": 2}}, hoverinfo="skip",
        ))
    if n_up_calls:
        fig.add_annotation(
            text=f"⚠ {st.plural(n_up_calls, 'unpriced call')} in {st.plural(n_up_runs, 'run')}"
            ": price unknown, not included", xref="paper", yref="paper", x=0, y=1.0,
            xanchor="left", yanchor="bottom", showarrow=False,
            font={"size": 12, "color": "#7A5B00"}, bgcolor="#FFF4CE",
        )
    fig.update_yaxes(rangemode="tozero", **st.money_axis(r["cum"]))
    fig.update_xaxes(rangemode="tozero")
    fig.update_layout(legend_title_text="pipeline", hovermode="closest")
    return fig


def _per_run_cost(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run in start order: start, pipeline, cost, unpriced, calls, cum, n."""
    import numpy as np

    c = _calls(df)
    runs = st.run_order(df)
    first = df.groupby("run_id", sort=False).agg(start=("start", "min"), pipeline=("pipeline",
                                                                                 "first"))
    per = c.groupby("run_id", sort=False).agg(cost=("_cost", "sum"), unpriced=("_unpriced", "sum"),
                                              calls=("kind", "size"))
    r = first.join(per).loc[runs].fillna({"cost": 0.0, "unpriced": 0, "calls": 0})
    r["cum"] = r["cost"].cumsum()
    r["n"] = np.arange(1, len(r) + 1)
    return r


def _run_markers(fig: go.Figure, shown: pd.DataFrame, cmap: dict[str, str], scatter: Any) -> None:
    """One marker trace per pipeline, a hover card per run."""
    import numpy as np
    import pandas as pd

    size = 8 if len(shown) <= 100 else 5 if len(shown) <= 400 else 3
    for pipe, part in shown.groupby("pipeline", sort=True):
        start = pd.to_datetime(part["start"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
        fig.add_trace(scatter(
            x=part["n"], y=part["cum"], mode="markers", name=str(pipe),
            marker={"color": cmap[str(pipe)], "size": size},
            customdata=np.stack([part.index.astype(str), start,
                                 [st.fmt_usd(v) for v in part["cost"]], part["unpriced"],
                                 part["calls"], [st.fmt_usd(v) for v in part["cum"]]], axis=1),
            hovertemplate="run %{customdata[0]}<br>%{customdata[1]} UTC<br>"
            "run cost %{customdata[2]} (%{customdata[3]} unpriced of %{customdata[4]} "
            "calls)<br>cumulative %{customdata[5]}<extra>%{fullData.name}</extra>",
        ))
