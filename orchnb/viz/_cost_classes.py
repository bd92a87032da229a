"""Cost split by token class in tables and charts, and what the cost levers saved.

The split itself is the trace's (:func:`orchnb.trace.class_costs`): each model call's recorded
cost by input, output, cache reads, cache writes (5-minute, 1-hour) and batch, and the same
calls priced without their prompt cache (``uncached_usd``) and at list price (``list_usd``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchnb.trace import SPLIT, class_costs
from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd

CLASS_LABELS = {"input": "input", "output": "output", "cache_read": "cache read",
                "cache_write": "cache write (5 min)", "cache_write_1h": "cache write (1 h)",
                "batch": "batch"}
CLASS_COLORS = {"input": "#4E79A7", "output": "#F28E2B", "cache_read": "#A0CBE8",
                "cache_write": "#E15759", "cache_write_1h": "#B07AA1", "batch": "#59A14F"}


def _col(c: pd.DataFrame, name: str, default: object = 0) -> pd.Series:
    import pandas as pd

    return c[name] if name in c.columns else pd.Series(default, index=c.index)


def class_table(df: pd.DataFrame, *, by: str | list[str] = "step") -> pd.DataFrame:
    """Per group (step, model...): model calls, ``cost_usd`` and its split by class, the
    prompt cache's ``cache_hit_rate`` (cached / input tokens of the calls made) and
    ``cache_saved_usd``, ``list_usd`` and ``saved_usd`` (list price minus cost: every lever).

    >>> class_table(run.trace.df)   # doctest: +SKIP
    """
    import pandas as pd

    cols = [by] if isinstance(by, str) else list(by)
    c = df[df["kind"] == "model"].dropna(subset=cols)
    parts = class_costs(c)
    made = ~_col(c, "cached", False).astype("boolean").fillna(False)
    frame = c[cols].assign(**{k: parts[k].to_numpy() for k in parts.columns}).assign(
        _calls=1, _cost=st.numeric(c["cost_usd"]).where(~st.unpriced_mask(c)),
        _in=st.numeric(c["input_tokens"]).fillna(0).where(made, 0),
        _read=st.numeric(c["cached_tokens"]).fillna(0).where(made, 0),
        _write=st.numeric(_col(c, "cache_write_tokens")).fillna(0).where(made, 0))
    g = frame.groupby(cols, sort=False)
    out = pd.DataFrame({"calls": g["_calls"].sum(), "cost_usd": g["_cost"].sum(min_count=1)})
    for k in SPLIT:
        out[f"{k}_usd"] = g[f"{k}_usd"].sum(min_count=1)
    out["cached_tokens"] = g["_read"].sum().astype("int64")
    out["cache_write_tokens"] = g["_write"].sum().astype("int64")
    inp = g["_in"].sum()
    out["cache_hit_rate"] = (out["cached_tokens"] / inp).where(inp > 0)
    out["cache_saved_usd"] = g["uncached_usd"].sum(min_count=1) - out["cost_usd"]
    out["list_usd"] = g["list_usd"].sum(min_count=1)
    out["saved_usd"] = out["list_usd"] - out["cost_usd"]
    return out.reset_index()


def class_bars(fig: object, df: pd.DataFrame, cols: list[str]) -> None:
    """One stacked bar trace per cost class on ``fig`` (``viz.cost(..., color="class")``)."""
    import plotly.graph_objects as go

    t = class_table(df, by=cols)
    labels = [" · ".join(str(v) for v in r) for r in t[cols].itertuples(index=False)]
    for k in SPLIT:
        vals = t[f"{k}_usd"]
        if not (vals.fillna(0) > 0).any():
            continue  # a class no call has: no legend entry
        fig.add_trace(go.Bar(  # type: ignore[attr-defined]
            name=CLASS_LABELS[k], orientation="h", y=labels, x=vals,
            marker_color=CLASS_COLORS[k], customdata=[st.fmt_usd(v) for v in vals],
            hovertemplate=f"<b>%{{y}}</b><br>{CLASS_LABELS[k]}: %{{customdata}}"
            "<extra></extra>"))
    fig.update_layout(barmode="stack", legend_title_text="cost class",  # type: ignore[attr-defined]
                      legend_traceorder="normal")
