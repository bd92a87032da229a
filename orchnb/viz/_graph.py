"""The pattern graph derived from traces: steps as nodes, control flow as edges.

A node is a position in the span tree (the path of pattern / step / tool names from the run
down, ignoring item and iteration), so the 50 map calls of a map-reduce or the iterations of an
agent fold into one node. Edges: ``contains`` (parent → child) and ``then`` (a sibling that
started right after another). Model calls are folded into their step.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_SYMBOLS = {"run": "square", "pattern": "diamond", "step": "circle", "tool": "hexagon"}
_NEEDS = ("run_id", "span_id", "parent_id", "kind", "step", "start", "latency_ms", "cost_usd")


def _name(x: Any) -> str:
    if x.kind == "run":
        return str(x.pipeline)
    if x.kind == "pattern":
        return f"{x.pattern}: {x.step}" if x.pattern != x.step else str(x.step)
    if x.kind == "tool" and not st.is_missing(getattr(x, "tool", None)):
        return f"tool {x.tool}"
    return str(x.step)


def graph_data(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and edges of the pattern graph, aggregated over every run in ``df``.

    Nodes (index ``node``): name, kind, depth, parent, instances, runs, mean_ms, p95_ms,
    mean_cost_usd (cost of the calls beneath one instance; NaN when unpriced), unpriced_calls,
    tokens, repeats (most instances in one parent, e.g. agent iterations or map items).
    Edges: source, target, kind (``contains`` or ``then``), count.

    >>> nodes, edges = graph_data(orchnb.traces())   # doctest: +SKIP
    """
    st.require(df, _NEEDS, "graph")
    d = df.reset_index(drop=True)
    cols = [c for c in ("run_id", "span_id", "parent_id", "kind", "step", "pipeline", "pattern",
                        "tool") if c in d.columns]
    recs = list(d[cols].astype(object).itertuples(index=False))
    pos = {(str(x.run_id), str(x.span_id)): i for i, x in enumerate(recs)}
    parent = [
        None if st.is_missing(x.parent_id) else pos.get((str(x.run_id), str(x.parent_id)))
        for x in recs
    ]
    key = _node_keys(recs, parent)
    info, lats = _collect_nodes(recs, key, parent, st.latency_ms(d).to_numpy())
    _add_call_totals(info, recs, key, parent, d)
    then = _order_siblings(info, recs, key, parent, st.epoch_ms(d["start"]).to_numpy())
    return _frames(info, lats, then)


def _node_keys(recs: list[Any], parent: list[int | None]) -> list[str | None]:
    """Path key of every span, in span order; model spans fold into their parents."""
    key: list[str | None] = [None] * len(recs)

    def node_of(i: int) -> str | None:  # path key, memoised; model spans fold into parents
        chain, j = [], i
        while j is not None and key[j] is None and len(chain) <= len(recs):  # cycle guard
            chain.append(j)
            j = parent[j]
        base = key[j] if j is not None else ""
        for j in reversed(chain):
            x = recs[j]
            p = parent[j]
            if x.kind == "model":
                key[j] = key[p] if p is not None else f"{base}/model"
            else:
                base = (key[p] if p is not None else "") + "/" + f"{x.kind}:{_name(x)}"
                key[j] = base
            base = key[j]
        return key[i]

    for i in range(len(recs)):
        node_of(i)
    return key


def _collect_nodes(
    recs: list[Any], key: list[str | None], parent: list[int | None], lat: Any
) -> tuple[dict[str, dict[str, Any]], dict[str, list[float]]]:
    """One info record per node (instances, runs, parent) and its latencies."""
    import numpy as np

    info: dict[str, dict[str, Any]] = {}
    lats: dict[str, list[float]] = defaultdict(list)
    for i, x in enumerate(recs):
        k = key[i]
        if x.kind == "model" or k is None:
            continue
        p = parent[i]
        n = info.setdefault(k, {
            "name": _name(x), "kind": x.kind, "depth": k.count("/") - 1,
            "parent": key[p] if p is not None else None, "instances": 0, "runs": set(),
            "cost": 0.0, "priced": 0, "unpriced_calls": 0, "tokens": 0.0, "first": np.inf,
        })
        n["instances"] += 1
        n["runs"].add(x.run_id)
        lats[k].append(lat[i])
    return info, lats


def _add_call_totals(
    info: dict[str, dict[str, Any]], recs: list[Any], key: list[str | None],
    parent: list[int | None], d: pd.DataFrame,
) -> None:
    """Costs and tokens of calls, added to every ancestor node once."""
    import numpy as np

    cost = st.numeric(d["cost_usd"]).to_numpy()
    unpriced = st.unpriced_mask(d).to_numpy()
    tok = (st.numeric(d["input_tokens"]).fillna(0) + st.numeric(d["output_tokens"]).fillna(0)
           ).to_numpy() if "input_tokens" in d.columns else np.zeros(len(d))
    for i, x in enumerate(recs):
        if x.kind not in st.CALL_KINDS:
            continue
        seen, j = set(), i
        while j is not None:
            k = key[j]
            if k in info and k not in seen:
                seen.add(k)
                n = info[k]
                n["tokens"] += tok[i]
                if unpriced[i]:
                    n["unpriced_calls"] += 1
                elif not np.isnan(cost[i]):
                    n["cost"] += cost[i]
                    n["priced"] += 1
            j = parent[j]


def _order_siblings(
    info: dict[str, dict[str, Any]], recs: list[Any], key: list[str | None],
    parent: list[int | None], starts: Any,
) -> dict[tuple[str, str], int]:
    """Sibling order: sets first position and repeats on ``info``, returns "then" edge counts."""
    kids: dict[int | None, list[int]] = defaultdict(list)
    for i, x in enumerate(recs):
        if x.kind != "model" and key[i] in info:
            kids[parent[i]].append(i)
    then: dict[tuple[str, str], int] = defaultdict(int)
    for p, ch in kids.items():
        if p is None:  # run spans: separate runs, not control flow; order pipelines by start
            ch.sort(key=lambda i: (starts[i], i))
            for rank, i in enumerate(ch):
                info[key[i]]["first"] = min(info[key[i]]["first"], rank)
            continue
        ch.sort(key=lambda i: (starts[i], i))
        counts: dict[str, int] = defaultdict(int)
        for rank, i in enumerate(ch):
            k = key[i]
            counts[k] += 1
            info[k]["first"] = min(info[k]["first"], rank)
        for k, c in counts.items():
            info[k]["repeats"] = max(info[k].get("repeats", 1), c)
        for a, b in itertools.pairwise(ch):
            if key[a] != key[b]:
                then[(key[a], key[b])] += 1
    return then


def _frames(
    info: dict[str, dict[str, Any]], lats: dict[str, list[float]],
    then: dict[tuple[str, str], int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nodes and edges frames from the aggregated records."""
    import numpy as np
    import pandas as pd

    nodes = pd.DataFrame([
        {"node": k, "name": n["name"], "kind": n["kind"], "depth": n["depth"],
         "parent": n["parent"], "instances": n["instances"], "runs": len(n["runs"]),
         "mean_ms": float(np.nanmean(lats[k])) if np.isfinite(lats[k]).any() else np.nan,
         "p95_ms": st.quantile(lats[k], 0.95),
         "mean_cost_usd": n["cost"] / n["instances"]
         if n["priced"] or not n["unpriced_calls"] else np.nan,
         "unpriced_calls": n["unpriced_calls"], "tokens": int(n["tokens"]),
         "repeats": n.get("repeats", 1), "order": n["first"]}
        for k, n in info.items()
    ]).set_index("node") if info else pd.DataFrame()
    edges = [{"source": n["parent"], "target": k, "kind": "contains", "count": n["instances"]}
             for k, n in info.items() if n["parent"] is not None]
    edges += [{"source": a, "target": b, "kind": "then", "count": c} for (a, b), c in then.items()]
    return nodes, pd.DataFrame(edges, columns=["source", "target", "kind", "count"])


def _layout(nodes: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Tidy tree: leaves on consecutive slots, parents centred over their children."""
    children: dict[str | None, list[str]] = defaultdict(list)
    for k, row in nodes.sort_values(["order", "name"], kind="stable").iterrows():
        parent = row["parent"] if row["parent"] in nodes.index else None
        children[parent].append(str(k))
    xy: dict[str, tuple[float, float]] = {}
    slot = [0.0]

    def place(k: str, depth: int) -> float:
        ch = children.get(k, [])
        if not ch:
            x = slot[0]
            slot[0] += 1
        else:
            xs = [place(c, depth + 1) for c in ch]
            x = (xs[0] + xs[-1]) / 2
        xy[k] = (x, -depth)
        return x

    for root in children.get(None, []):
        place(root, 0)
        slot[0] += 0.5  # gap between pipelines
    return xy


def graph(
    df: pd.DataFrame, *, color: str = "latency", run_id: str | None = None, max_nodes: int = 300
) -> go.Figure:
    """Draw the pattern graph from traces, nodes coloured by mean latency or mean cost.

    ``color`` is ``"latency"`` (mean ms per instance) or ``"cost"`` (mean USD of the calls
    beneath one instance; nodes whose calls are all unpriced are grey). Pass ``run_id`` for one
    run only. Dashed grey lines are containment, arrows are the order steps ran in (width ∝ how
    often). Deeper levels are dropped beyond ``max_nodes`` nodes.

    >>> graph(orchnb.traces(), color="cost").show()   # doctest: +SKIP
    """
    if color not in ("latency", "cost"):
        raise ValueError(f"graph: color must be 'latency' or 'cost', not {color!r}")
    if run_id is not None:
        df = df[df["run_id"].astype(str) == str(run_id)]
    nodes, edges = graph_data(df)
    title = f"Pattern graph · coloured by mean {color}"
    if nodes.empty:
        fig = st.new_figure(title)
        fig.add_annotation(text="no spans to draw", xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False)
        return fig
    depth_cap = nodes["depth"].max()
    while len(nodes) > max_nodes and depth_cap > 0:
        depth_cap -= 1
        nodes = nodes[nodes["depth"] <= depth_cap]
    edges = edges[edges["source"].isin(nodes.index) & edges["target"].isin(nodes.index)]
    xy = _layout(nodes)
    levels = int(nodes["depth"].max()) + 1
    fig = st.new_figure(title, height=int(150 + 150 * levels))
    _draw_contains(fig, edges, xy)
    _draw_then(fig, edges, nodes, xy)
    cmax = _draw_nodes(fig, nodes, xy, color)
    _style_graph(fig, nodes, color, cmax, levels, max(x for x, _ in xy.values()) + 1)
    return fig


def _draw_contains(fig: go.Figure, edges: pd.DataFrame, xy: dict[str, tuple[float, float]]) -> None:
    """Containment: one dashed trace."""
    import plotly.graph_objects as go

    cx: list[float | None] = []
    cy: list[float | None] = []
    for e in edges[edges["kind"] == "contains"].itertuples(index=False):
        (x0, y0), (x1, y1) = xy[e.source], xy[e.target]
        cx += [x0, x1, None]
        cy += [y0, y1, None]
    fig.add_trace(go.Scatter(x=cx, y=cy, mode="lines", name="contains", hoverinfo="skip",
                             line={"color": "#C8CED6", "width": 1.2, "dash": "dot"}))


def _draw_then(
    fig: go.Figure, edges: pd.DataFrame, nodes: pd.DataFrame, xy: dict[str, tuple[float, float]]
) -> None:
    """Control flow: curved arrows between siblings, a hover marker at each midpoint."""
    import numpy as np
    import plotly.graph_objects as go

    then = edges[edges["kind"] == "then"]
    top = float(then["count"].max()) if len(then) else 1.0
    mid_x, mid_y, mid_text = [], [], []
    for e in then.itertuples(index=False):
        (x0, y0), (x1, y1) = xy[e.source], xy[e.target]
        bend = 0.12 + 0.08 * abs(x1 - x0) if abs(x1 - x0) > 1.01 else 0.0
        t = np.linspace(0, 1, 24)
        px = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * (x0 + x1) / 2 + t**2 * x1
        py = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * (y0 + bend) + t**2 * y1
        w = 1.2 + 3.0 * float(e.count) / top
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines", showlegend=False, hoverinfo="skip",
                                 line={"color": "#5B6B7F", "width": w}))
        k = 19  # arrow head a little before the target marker
        fig.add_annotation(x=px[k], y=py[k], ax=px[k - 3], ay=py[k - 3], xref="x", yref="y",
                           axref="x", ayref="y", showarrow=True, arrowhead=2, arrowsize=1.2,
                           arrowwidth=max(1.2, w * 0.6), arrowcolor="#5B6B7F", text="")
        mid_x.append(px[12])
        mid_y.append(py[12])
        mid_text.append(f"{nodes.loc[e.source, 'name']} → {nodes.loc[e.target, 'name']}"
                        f"<br>{st.plural(int(e.count), 'time')}")
    if mid_x:
        fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", name="then (run order)",
                                 marker={"size": 7, "color": "#5B6B7F"},
                                 hovertext=mid_text, hoverinfo="text"))


def _draw_nodes(
    fig: go.Figure, nodes: pd.DataFrame, xy: dict[str, tuple[float, float]], color: str
) -> float:
    """One marker trace per node kind; returns the top of the colour scale."""
    import numpy as np
    import plotly.graph_objects as go

    metric = nodes["mean_ms"] if color == "latency" else nodes["mean_cost_usd"]
    finite = metric[np.isfinite(metric.astype(float))]
    cmax = float(finite.max()) if len(finite) else 1.0
    for kind, part in nodes.groupby("kind", sort=False):
        vals = metric.loc[part.index].astype(float)
        xs = [xy[k][0] for k in part.index]
        ys = [xy[k][1] for k in part.index]
        labels = [st.wrap(n) + (f"<br><i>×{r}</i>" if r > 1 else "")
                  for n, r in zip(part["name"], part["repeats"], strict=True)]
        hover = [_node_hover(row) for row in part.itertuples()]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers+text", name=str(kind), text=labels,
            textposition="bottom center", textfont={"size": 11}, hovertext=hover,
            hoverinfo="text", cliponaxis=False,
            marker={"symbol": _SYMBOLS.get(str(kind), "circle"), "size": 30,
                    "color": vals.fillna(-1.0).tolist(), "coloraxis": "coloraxis",
                    "line": {"width": 2, "color": [
                        st.UNPRICED_COLOR if u and color == "cost" else "white"
                        for u in part["unpriced_calls"]]}},
        ))
    return cmax


def _style_graph(
    fig: go.Figure, nodes: pd.DataFrame, color: str, cmax: float, levels: int, width_slots: float
) -> None:
    """Colour scale, legend, hidden axes and the unpriced note."""
    unit = "ms" if color == "latency" else "USD"
    fig.update_layout(
        coloraxis={"colorscale": [[0, "#D9D9D9"], [1e-9, "#FFF3B0"], [0.5, "#F28E2B"],
                                  [1, "#9E2A2B"]], "cmin": -cmax * 1e-9, "cmax": cmax,
                   "colorbar": {"title": {"text": f"mean {color} ({unit})"},
                                **(st.money_axis([cmax]) if color == "cost" else {}),
                                "ticksuffix": " ms" if color == "latency" else ""}},
        legend={"title": {"text": "node kind"}, "orientation": "h", "y": -0.02, "x": 0,
                "yanchor": "top"}, hovermode="closest",
    )
    fig.update_xaxes(visible=False, range=[-0.7, width_slots - 0.3])
    fig.update_yaxes(visible=False, range=[-levels + 0.45, 0.45])
    if color == "cost" and (nodes["unpriced_calls"] > 0).any():
        fig.add_annotation(text="grey ring: includes unpriced calls (price unknown)",
                           xref="paper", yref="paper", x=1, y=1, xanchor="right",
                           yanchor="bottom", showarrow=False, font={"size": 11, "color": "#666"})


def _node_hover(n: Any) -> str:
    lines = [f"<b>{n.name}</b> ({n.kind})", f"{st.plural(n.instances, 'span')} in "
             f"{st.plural(n.runs, 'run')}" + (f", up to ×{n.repeats} per parent"
                                              if n.repeats > 1 else "")]
    lines.append(f"latency mean {st.fmt_ms(n.mean_ms)} · p95 {st.fmt_ms(n.p95_ms)}")
    cost = st.fmt_usd(n.mean_cost_usd)
    lines.append(f"mean cost {cost}" + (f" (+{st.plural(n.unpriced_calls, 'unpriced call')})"
                                        if n.unpriced_calls else ""))
    lines.append(f"tokens {n.tokens:,}")
    return "<br>".join(lines)
