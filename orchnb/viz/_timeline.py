"""The timeline (waterfall / Gantt) of one run's spans, nested by parent."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_COLUMNS = ("run_id", "span_id", "parent_id", "kind", "step", "start", "end", "latency_ms")


@dataclass
class _Row:
    depth: int
    label: str
    start: float
    end: float
    group: str
    hover: str
    count: int = 1
    error: bool = False
    members: list[int] = field(default_factory=list)
    inner: _Row | None = None
    """A step's single model call, drawn as a thinner bar on the step's own row."""


def pick_run(df: pd.DataFrame, run_id: str | None) -> str:
    """``run_id`` if given (checked), else the run that started last."""
    runs = st.run_order(df)
    if not runs:
        raise ValueError("the trace DataFrame is empty: there is no run to draw")
    if run_id is None:
        return runs[-1]
    if run_id not in runs:
        known = ", ".join(runs[-5:])
        raise ValueError(f"run {run_id!r} is not in the trace; latest runs: {known}")
    return run_id


def timeline(
    df: pd.DataFrame,
    run_id: str | None = None,
    *,
    color: str = "kind",
    max_bars: int = st.MAX_POINTS,
) -> go.Figure:
    """Waterfall of one run: one bar per span, indented by depth, rows in start order.

    Parallel fan-out (map-reduce items, gathered calls) shows as overlapping bars. Failed spans
    are drawn red, whatever ``color`` says. Above ``max_bars`` spans, groups of sibling spans with
    the same step and kind collapse into one band ("map ×5,000") spanning first start to last
    end, so a 100k-span run still draws quickly.

    ``color`` is ``"kind"`` (run/pattern/step/model/tool), ``"step"``, ``"model"`` or
    ``"status"``. ``run_id`` defaults to the most recent run.

    >>> fig = timeline(run.trace.df)            # doctest: +SKIP
    >>> fig.update_layout(height=900).show()    # doctest: +SKIP
    """
    st.require(df, _COLUMNS, "timeline")
    if color not in ("kind", "step", "model", "status"):
        raise ValueError(f"timeline: color must be kind, step, model or status, not {color!r}")
    rid = pick_run(df, run_id)
    r = df[df["run_id"].astype(str) == rid].reset_index(drop=True)
    s_ms, e_ms = _span_times(r)
    slim = r.drop(columns=[c for c in ("start", "end", "input", "output", "meta") if c in r])
    recs = list(slim.itertuples(index=False))
    rows = _layout_rows(recs, s_ms, e_ms, color, collapse=len(recs) > max_bars)
    truncated = 0
    if len(rows) > max_bars:
        truncated = len(rows) - max_bars
        rows = rows[:max_bars]

    fig = _draw(rows, color, df)
    run_rec = next((x for x in recs if x.kind == "run"), recs[0])
    peak = _peak_concurrency(s_ms, e_ms, r["kind"].isin(st.CALL_KINDS).to_numpy())
    title = f"Timeline · {run_rec.pipeline} · run {rid[:12]} · {st.fmt_ms(float(e_ms.max()))}"
    title += f" · {st.plural(len(recs), 'span')}"
    if peak > 1:
        title += f" · up to {peak} calls in parallel"
    fig.update_layout(title_text=title)
    _annotate(fig, r, len(recs), truncated, max_bars)
    return fig


def _span_times(r: pd.DataFrame) -> tuple[Any, Any]:
    """Start and end of each span in ms since the run's first start; open spans end last."""
    import numpy as np
    import pandas as pd

    start = pd.to_datetime(r["start"], utc=True)
    t0 = start.min()
    s_ms = ((start - t0) / pd.Timedelta(milliseconds=1)).astype("float64").to_numpy()
    lat = st.latency_ms(r).to_numpy()
    e_ms = s_ms + np.nan_to_num(lat, nan=0.0)
    if np.isnan(lat).any():  # still running: draw to the last known end
        e_ms = np.where(np.isnan(lat), np.nanmax(e_ms), e_ms)
    return s_ms, e_ms


def _annotate(fig: go.Figure, r: pd.DataFrame, n_recs: int, truncated: int, max_bars: int) -> None:
    """The simulated-latency warning and the collapsed / truncated note."""
    notes = []
    if truncated or n_recs > max_bars:
        note = f"{n_recs:,} spans: sibling fan-out collapsed into bands"
        if truncated:
            note += f"; {truncated:,} more rows not shown"
        notes.append(note)
    if "simulated" in r.columns and (r["simulated"].astype("boolean") == True).any():  # noqa: E712
        # sim: models answer offline with configured latencies: say so, as everywhere else
        fig.add_annotation(text="simulated calls (sim: models): latencies are configured, "
                           "not measured", xref="paper", yref="paper", x=0, y=1.0,
                           yanchor="bottom", xanchor="left", showarrow=False,
                           font={"size": 11, "color": "#7A5B00"}, bgcolor="#FFF3CD")
    for note in notes:
        fig.add_annotation(text=note, xref="paper", yref="paper", x=1, y=1.0, yanchor="bottom",
                           xanchor="right", showarrow=False, font={"size": 11, "color": "#666"})


def _layout_rows(recs: list[Any], s_ms: Any, e_ms: Any, color: str, *, collapse: bool
                 ) -> list[_Row]:
    """Depth-first rows (children by start); with ``collapse``, sibling groups become bands."""
    index = {str(x.span_id): i for i, x in enumerate(recs)}
    children: dict[int, list[int]] = defaultdict(list)
    roots: list[int] = []
    for i, x in enumerate(recs):
        p = None if st.is_missing(x.parent_id) else index.get(str(x.parent_id))
        (roots if p is None else children[p]).append(i)
    order = lambda i: (s_ms[i], i)  # noqa: E731
    rows: list[_Row] = []
    stack: list[tuple[list[int], int]] = [(sorted(roots, key=order)[::-1], 0)]
    while stack:
        nodes, depth = stack.pop()
        if not nodes:
            continue
        i = nodes.pop()
        stack.append((nodes, depth))
        kids = sorted(children.get(i, []), key=order)
        x = recs[i]
        row = _span_row(x, i, depth, s_ms, e_ms, color)
        rows.append(row)
        if len(kids) == 1 and x.kind == "step" and recs[kids[0]].kind in st.CALL_KINDS:
            k = kids[0]
            if not children.get(k):  # a step with one call: draw the call on the step's row
                row.inner = _span_row(recs[k], k, depth + 1, s_ms, e_ms, color)
                callee = recs[k].model if recs[k].kind == "model" else recs[k].tool
                if not st.is_missing(callee):
                    row.label += f" · {str(callee).split(':')[-1]}"
                continue
        if not kids:
            continue
        if collapse:
            singles, bands = _split_bands(kids, recs)
            for members in bands:
                rows.append(_band(members, recs, s_ms, e_ms, depth + 1, color, children))
            kids = singles
        stack.append((kids[::-1], depth + 1))
    if collapse:  # bands were appended before their earlier-starting siblings: re-sort per parent
        rows = _resort(rows)
    return rows


def _span_row(x: Any, i: int, depth: int, s_ms: Any, e_ms: Any, color: str) -> _Row:
    return _Row(depth, st.span_label(x), float(s_ms[i]), float(e_ms[i]), _group(x, color),
                st.span_hover(x, offset_ms=float(s_ms[i])), error=x.status in st.ERROR_STATUSES,
                members=[i])


def _resort(rows: list[_Row]) -> list[_Row]:
    """Order each run of consecutive same-depth siblings by start, keeping subtrees attached."""
    out: list[_Row] = []

    def block(i: int) -> int:  # end index (exclusive) of the subtree starting at i
        j = i + 1
        while j < len(rows) and rows[j].depth > rows[i].depth:
            j += 1
        return j

    def walk(i: int, stop: int) -> None:
        blocks = []
        while i < stop:
            j = block(i)
            blocks.append((i, j))
            i = j
        for a, b in sorted(blocks, key=lambda ab: rows[ab[0]].start):
            out.append(rows[a])
            walk(a + 1, b)

    walk(0, len(rows))
    return out


def _split_bands(kids: list[int], recs: list[Any]) -> tuple[list[int], list[list[int]]]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k in kids:
        groups[(str(recs[k].kind), str(recs[k].step))].append(k)
    singles = [k for k in kids if len(groups[(str(recs[k].kind), str(recs[k].step))]) == 1]
    return singles, [g for g in groups.values() if len(g) > 1]


def _band(members: list[int], recs: list[Any], s_ms: Any, e_ms: Any, depth: int, color: str,
          children: dict[int, list[int]]) -> _Row:
    import numpy as np

    first = recs[members[0]]
    n_desc, stack = 0, list(members)
    while stack:
        kids = children.get(stack.pop(), [])
        n_desc += len(kids)
        stack.extend(kids)
    lat = np.array([e_ms[m] - s_ms[m] for m in members])
    errors = sum(recs[m].status in st.ERROR_STATUSES for m in members)
    a, z = float(min(s_ms[m] for m in members)), float(max(e_ms[m] for m in members))
    label = f"{st.span_label(first).split(' [')[0]} ×{len(members):,}"
    hover = (
        f"<b>{label}</b> (collapsed)<br>{first.kind} spans: {len(members):,}"
        f" (+{n_desc:,} nested)<br>from +{st.fmt_ms(a)} to +{st.fmt_ms(z)}"
        f"<br>latency p50 {st.fmt_ms(st.quantile(lat, 0.5))}"
        f" · p95 {st.fmt_ms(st.quantile(lat, 0.95))}"
        f"<br>errors: {errors}"
    )
    return _Row(depth, label, a, z, _group(first, color), hover, count=len(members),
                error=errors > 0, members=list(members))


_OTHER = "(other spans)"


def _group(x: Any, color: str) -> str:
    v = getattr(x, color, None)
    return str(v) if not st.is_missing(v) else _OTHER


def _draw(rows: list[_Row], color: str, df: pd.DataFrame) -> go.Figure:
    """Bars per colour group; colours come from every run in ``df`` so they match other charts."""
    import plotly.graph_objects as go

    n = len(rows)
    fixed = {"kind": st.KIND_COLORS, "status": st.STATUS_COLORS}.get(color, {})
    values = df[color].dropna().unique() if color in df.columns else []
    cmap = st.color_map(values, {**fixed, _OTHER: "#C9CED6"})
    height = int(min(max(360, 22 * n + 160), 2400))
    span = max((row.end for row in rows), default=0.0)
    unit, div = ("s", 1000.0) if span > 60_000 else ("ms", 1.0)
    fig = st.new_figure("", x=f"time since run start ({unit})", height=height)
    groups: dict[tuple[str, bool], list[tuple[int, _Row, tuple[float, float]]]] = defaultdict(list)
    for y, (row, box) in enumerate(zip(rows, _boxes(rows, span / 250), strict=True)):
        for bar, inner in ((row, False), (row.inner, True)):
            if bar is None:
                continue
            key = "error" if bar.error and color != "status" else bar.group
            key = f"{key} (collapsed)" if bar.count > 1 else key
            groups[(key, inner)].append((y, bar, box[inner]))
    order = [*fixed, _OTHER, "error"]
    rank = lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1])  # noqa: E731
    shown: set[str] = set()
    for key, inner in sorted(groups, key=rank):
        bars = groups[(key, inner)]
        base = key.split(" (collapsed)")[0]
        c = st.STATUS_COLORS["error"] if base == "error" else cmap.get(base, st.UNPRICED_COLOR)
        band = key.endswith("(collapsed)")
        fig.add_trace(go.Bar(
            name=key, legendgroup=key, showlegend=key not in shown, orientation="h",
            y=[y for y, _, _ in bars], base=[a / div for _, _, (a, _) in bars],
            x=[(z - a) / div for _, _, (a, z) in bars],
            marker={"color": c, "opacity": 0.55 if band else 0.95,
                    "line": {"width": 1 if band else 0, "color": c}},
            text=[f"×{b.count:,}" for _, b, _ in bars] if band else None,
            textposition="inside", insidetextanchor="start",
            hovertext=[b.hover for _, b, _ in bars], hoverinfo="text",
            width=0.34 if inner else 0.72,
        ))
        shown.add(key)
    show = n <= 150
    size = 12 if n <= 80 else 10
    width = max((len(st.short(w.label, 44)) * size * 0.6 + 14 * w.depth for w in rows), default=80)
    left = int(min(width + 24, 460)) if show else 40
    for y, row in enumerate(rows if show else []):  # left-aligned, indented row labels
        fig.add_annotation(
            text=st.short(row.label, 44), xref="paper", x=0, yref="y", y=y, xanchor="left",
            xshift=-left + 8 + 14 * row.depth, showarrow=False, font={"size": size},
            hovertext=row.hover,
        )
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False,
                     title_text=None, range=None)
    fig.update_xaxes(rangemode="tozero", ticksuffix=f" {unit}", separatethousands=True)
    fig.update_layout(barmode="overlay", bargap=0.2, legend_title_text=color,
                      hovermode="closest", margin={"l": left})
    return fig


def _boxes(rows: list[_Row], min_ms: float) -> list[tuple[tuple[float, float], ...]]:
    """Where each row's bar (and its inner call's bar) is drawn: at least ``min_ms`` wide so a
    0 ms span stays visible, but never past its parent's drawn end (rows are depth-first, so the
    parent is the nearest earlier row one level up; an inner call's parent is its own row)."""

    def fit(a: float, z: float, lo: float, hi: float) -> tuple[float, float]:
        z = min(max(z, a + min_ms), hi)
        return (max(lo, min(a, z - min_ms)), z)

    out = []
    stack: list[tuple[int, float, float]] = []  # (depth, drawn start, drawn end) of ancestors
    for row in rows:
        while stack and stack[-1][0] >= row.depth:
            stack.pop()
        lo, hi = (stack[-1][1], stack[-1][2]) if stack else (-math.inf, math.inf)
        box = fit(row.start, row.end, lo, hi)
        stack.append((row.depth, *box))
        inner = fit(row.inner.start, row.inner.end, *box) if row.inner is not None else box
        out.append((box, inner))
    return out


def _peak_concurrency(s_ms: Any, e_ms: Any, mask: Any) -> int:
    """Largest number of calls running at one instant."""
    import numpy as np

    s, e = s_ms[mask], e_ms[mask]
    if len(s) == 0:
        return 0
    ev = np.concatenate([np.stack([s, np.ones_like(s)], 1), np.stack([e, -np.ones_like(e)], 1)])
    ev = ev[np.lexsort((ev[:, 1], ev[:, 0]))]  # ends (-1) before starts at the same instant
    return int(np.cumsum(ev[:, 1]).max())
