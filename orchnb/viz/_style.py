"""Shared look and helpers for the charts: one template, stable colours, units, hover text.

Public as ``orchnb.viz.style`` so that charts outside this package (the evals' reports) look
like these: a step, a model or a status has the same colour in every figure drawn from the
same DataFrame.

>>> from orchnb.viz import style
>>> fig = style.new_figure("cost by step")                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..trace import fmt_usd, plural

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

MAX_POINTS = 2000
"""Above this many bars/points a chart aggregates (or switches to WebGL)."""

FONT = "Inter, 'Segoe UI', 'Helvetica Neue', Helvetica, Arial, sans-serif"

PALETTE: tuple[str, ...] = (
    "#4E79A7", "#F28E2B", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
    "#A0CBE8", "#FFBE7D", "#8CD17D", "#499894", "#F1CE63", "#D4A6C8", "#86BCB6", "#FABFD2",
)
"""Categorical colours (Tableau 20 without its reds and greys, kept for errors and unpriced)."""

KIND_COLORS = {
    "run": "#4E79A7",
    "pattern": "#A0CBE8",
    "step": "#F28E2B",
    "model": "#59A14F",
    "tool": "#B07AA1",
}
STATUS_COLORS = {
    "ok": "#59A14F",
    "running": "#BAB0AC",
    "paused": "#1565C0",
    "unfinished": "#1565C0",
    "error": "#D62728",
    "cancelled": "#8C8C8C",
    "budget_exceeded": "#E377C2",
    "max_iterations": "#FF7F0E",
    "crashed": "#7B1FA2",
}
ERROR_STATUSES = frozenset({"error", "cancelled", "budget_exceeded", "max_iterations",
                            "crashed"})
UNPRICED_COLOR = "#8C8C8C"
TOKEN_COLORS = {"input": "#4E79A7", "cached": "#A0CBE8", "output": "#F28E2B"}
CALL_KINDS = ("model", "tool")


def template() -> go.layout.Template:
    """The orchnb Plotly template: plotly_white, our font, palette and hover label."""
    import plotly.graph_objects as go
    import plotly.io as pio

    base = pio.templates["plotly_white"]
    t = go.layout.Template(base)
    t.layout.update(
        font={"family": FONT, "size": 13, "color": "#2A3F5F"},
        title={"font": {"size": 17}, "x": 0.01, "xanchor": "left"},
        colorway=list(PALETTE),
        hoverlabel={"bgcolor": "white", "font": {"family": FONT, "size": 12}},
        legend={"bgcolor": "rgba(255,255,255,0.8)", "font": {"size": 12}},
        margin={"l": 80, "r": 30, "t": 70, "b": 60},
    )
    return t


def new_figure(
    title: str, *, x: str | None = None, y: str | None = None, height: int | None = None
) -> go.Figure:
    """An empty figure with our template, a title and axis titles (units included by callers)."""
    import plotly.graph_objects as go

    fig = go.Figure(layout={"template": template(), "title": {"text": title}})
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    if height is not None:
        fig.update_layout(height=height)
    return fig


def require(df: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    """Raise a ValueError naming the columns ``where`` needs but ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{where}: the DataFrame lacks column(s) {', '.join(missing)}; "
            "pass a trace DataFrame (run.trace.df or orchnb.traces())"
        )


def color_map(values: Iterable[Any], fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Stable colour per value: ``fixed`` first, then the palette in sorted order of the rest."""
    out = dict(fixed or {})
    rest = sorted({str(v) for v in values if not is_missing(v)} - set(out))
    for i, v in enumerate(rest):
        out[v] = PALETTE[i % len(PALETTE)]
    return out


def colors_for(df: pd.DataFrame, cols: Sequence[str], labels: Iterable[str]) -> dict[str, str]:
    """Colours for chart labels, stable across every chart of ``df``: for a single column the map
    is built from all of that column's values in ``df``, not only those the chart shows."""
    labels = list(labels)
    if len(cols) == 1 and cols[0] in df.columns:
        cmap = color_map(df[cols[0]].dropna().unique())
        extra = color_map([lb for lb in labels if lb not in cmap])
        return {lb: cmap.get(lb) or extra[lb] for lb in labels}
    return color_map(labels)


def is_missing(v: Any) -> bool:
    """True for None, NaN, NaT and pandas NA."""
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, NaT
    except (TypeError, ValueError):  # pd.NA raises on bool()
        return True


def calls(df: pd.DataFrame) -> pd.DataFrame:
    """Model and tool spans (the calls; costs and tokens live on them)."""
    return df[df["kind"].isin(CALL_KINDS)]


def unpriced_mask(df: pd.DataFrame) -> pd.Series:
    """Model spans whose price is unknown: ``priced`` is False or ``cost_usd`` is NaN."""
    import pandas as pd

    cost = pd.to_numeric(df["cost_usd"], errors="coerce")
    m = (df["kind"] == "model") & cost.isna()
    if "priced" in df.columns:
        m = m | ((df["kind"] == "model") & (df["priced"].astype("boolean") == False))  # noqa: E712
    return m.fillna(False).astype(bool)


def numeric(s: pd.Series) -> pd.Series:
    """A column as float64 (NA → NaN)."""
    import pandas as pd

    return pd.to_numeric(s, errors="coerce").astype("float64")


def latency_ms(df: pd.DataFrame) -> pd.Series:
    """``latency_ms``, falling back to ``end - start`` where it is missing."""
    import pandas as pd

    lat = numeric(df["latency_ms"]) if "latency_ms" in df.columns else None
    if "start" in df.columns and "end" in df.columns:
        span = (pd.to_datetime(df["end"], utc=True) - pd.to_datetime(df["start"], utc=True)) / (
            pd.Timedelta(milliseconds=1)
        )
        span = span.astype("float64")
        lat = span if lat is None else lat.fillna(span)
    if lat is None:
        raise ValueError("the DataFrame has neither latency_ms nor start/end")
    return lat


def epoch_ms(s: pd.Series) -> pd.Series:
    """A datetime (or epoch seconds) column as float milliseconds since the epoch."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(s):
        return s.astype("float64") * 1000.0
    t = pd.to_datetime(s, utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)).astype("float64")


def run_order(df: pd.DataFrame) -> list[str]:
    """Run ids ordered by their first span's start."""
    first = df.groupby("run_id", sort=False)["start"].min().sort_values(kind="stable")
    return [str(r) for r in first.index]


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default) of finite values; NaN when empty."""
    import numpy as np

    a = np.asarray(values, dtype="float64")
    a = a[np.isfinite(a)]
    return float(np.quantile(a, q)) if a.size else math.nan


def money_axis(values: Iterable[Any]) -> dict[str, Any]:
    """Axis (or colour bar) settings for USD: ``$0.0001``, ``$0.25``, ``$1,200``, never Plotly's
    SI prefixes (``$100µ``). Enough decimals for ticks about a twentieth of the largest value
    apart; ``~`` drops the trailing zeros.

    >>> money_axis([0.00035])["tickformat"]
    ',.6~f'
    """
    top = max((abs(float(v)) for v in values if not is_missing(v)), default=0.0)
    decimals = 2 if not math.isfinite(top) or top <= 0 else min(
        12, max(2, 1 - math.floor(math.log10(top / 20))))
    return {"tickprefix": "$", "tickformat": f",.{decimals}~f", "exponentformat": "none"}


def fmt_ms(x: float | None) -> str:
    """``340 ms`` / ``1.25 s`` / ``2.1 min``."""
    if x is None or is_missing(x):
        return "–"
    x = float(x)
    if x < 1000:
        return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"
    if x < 60_000:
        return f"{x / 1000:.2f} s"
    return f"{x / 60_000:.1f} min"


def fmt_int(x: Any) -> str:
    """``12,345`` or ``–`` for missing."""
    return "–" if is_missing(x) else f"{int(x):,}"


def short(text: Any, n: int = 40) -> str:
    """``text`` on one line, cut to ``n`` characters with an ellipsis."""
    s = "" if is_missing(text) else " ".join(str(text).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def wrap(text: str, width: int = 14) -> str:
    """Break ``text`` into ``<br>``-separated lines of about ``width`` characters."""
    words: list[str] = []
    for w in text.split(" "):  # long snake_case / kebab-case words break after _ or -
        while len(w) > width and any(c in w[1:width] for c in "_-"):
            cut = max(w.rfind(c, 1, width) for c in "_-") + 1
            words.append(w[:cut])
            w = w[cut:]
        words.append(w)
    lines, cur = [], ""
    for w in words:
        glue = "" if cur.endswith(("_", "-")) else " "
        if cur and len(cur) + len(glue) + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur}{glue}{w}" if cur else w
    lines.append(cur)
    return "<br>".join(lines)


def span_label(row: Any) -> str:
    """A readable name for one span (a row or namedtuple with the trace columns)."""
    kind = getattr(row, "kind", None)
    step = getattr(row, "step", None)
    if kind == "run":
        name = f"run {getattr(row, 'pipeline', '') or ''}".strip()
    elif kind == "pattern":
        pat = getattr(row, "pattern", None)
        name = f"{pat}: {step}" if not is_missing(pat) and pat != step else str(step)
    elif kind == "model":
        model = getattr(row, "model", None)
        name = str(model) if not is_missing(model) else f"{step} call"
    elif kind == "tool":
        tool = getattr(row, "tool", None)
        name = f"tool {tool}" if not is_missing(tool) else f"{step} tool"
    else:
        name = str(step)
    item, it = getattr(row, "item", None), getattr(row, "iteration", None)
    if not is_missing(item):
        name += f" [item {int(item)}]"
    elif not is_missing(it):
        name += f" [iter {int(it)}]"
    return name


def span_hover(row: Any, label: str | None = None, offset_ms: float | None = None) -> str:
    """Hover text for one span: name, kind, status, timing, model, tokens, cost."""
    lines = [f"<b>{label or span_label(row)}</b>"]
    status = getattr(row, "status", None)
    lines.append(f"{row.kind} · {status}")
    lat = getattr(row, "latency_ms", None)
    if offset_ms is not None:
        lines.append(f"start +{fmt_ms(offset_ms)} · took {fmt_ms(lat)}")
    else:
        lines.append(f"took {fmt_ms(lat)}")
    step = getattr(row, "step", None)
    if row.kind in CALL_KINDS and not is_missing(step):
        lines.append(f"step: {step}")
    model = getattr(row, "model", None)
    if not is_missing(model):
        sim = " (simulated)" if getattr(row, "simulated", None) is True else ""
        lines.append(f"model: {model}{sim}")
    tin, tout = getattr(row, "input_tokens", None), getattr(row, "output_tokens", None)
    if not (is_missing(tin) and is_missing(tout)):
        cached = getattr(row, "cached_tokens", None)
        est = getattr(row, "usage_estimated", None)
        note = " (estimated: no usage reported)" if not is_missing(est) and est else ""
        lines.append(
            f"tokens: {fmt_int(tin)} in / {fmt_int(tout)} out / {fmt_int(cached)} cached{note}"
        )
    if row.kind == "model":
        cost = getattr(row, "cost_usd", None)
        priced = getattr(row, "priced", None)
        if is_missing(cost) or priced is False:
            lines.append("cost: <i>unpriced</i>")
        else:
            lines.append(f"cost: {fmt_usd(cost)}")
    attempt = getattr(row, "attempt", None)
    if not is_missing(attempt) and int(attempt) > 1:
        lines.append(f"attempts: {int(attempt)}")
    route = getattr(row, "route", None)
    if not is_missing(route):
        lines.append(f"route: {route}")
    err = getattr(row, "error", None)
    if not is_missing(err):
        lines.append(f"error: {short(err, 80)}")
    return "<br>".join(lines)

__all__ = ["fmt_usd", "plural"]  # plural: the trace layer's, used by every chart here
