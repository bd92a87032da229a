"""Cost split by token class, and what the cost levers saved against the same calls.

Each model call's recorded cost is split into what its input, output, cache reads, cache
writes (5-minute and 1-hour) cost, at the rates the engine priced it with (batch calls are one
``batch`` class). Two counterfactuals price the same calls: ``uncached_usd`` with their cache
reads and writes as plain input (the prompt cache's saving is ``uncached_usd - cost_usd``,
negative while writes have not paid off yet), and ``list_usd`` at list price (no prompt cache,
no batch, no service tier). Response-cache hits cost nothing and are left out of both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd

SPLIT = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "batch")
"""The classes a cost is split into (the ``<class>_usd`` columns)."""
CLASS_LABELS = {"input": "input", "output": "output", "cache_read": "cache read",
                "cache_write": "cache write (5 min)", "cache_write_1h": "cache write (1 h)",
                "batch": "batch"}
CLASS_COLORS = {"input": "#4E79A7", "output": "#F28E2B", "cache_read": "#A0CBE8",
                "cache_write": "#E15759", "cache_write_1h": "#B07AA1", "batch": "#59A14F"}
_CLASSES = SPLIT[:-1]


def _col(c: pd.DataFrame, name: str, default: object = 0) -> pd.Series:
    import pandas as pd

    if name in c.columns:
        return c[name]
    return pd.Series(default, index=c.index)


def _rates(keys: pd.DataFrame) -> dict[tuple, tuple[dict | None, dict | None]]:
    """(actual rates, list rates) per distinct (provider, model, batch, tier) of the calls."""
    from orchnb.models import class_rates, price_ref

    out: dict[tuple, tuple[dict | None, dict | None]] = {}
    for key in keys.drop_duplicates().itertuples(index=False, name=None):
        provider, model, batch, tier = key
        ref = price_ref(f"{provider}:{model}")
        if ref is None:  # a free sim model
            zero = dict.fromkeys(_CLASSES, 0.0)
            out[key] = (zero, zero)
            continue
        p, _, m = ref.partition(":")
        out[key] = (class_rates(p, m, batch=bool(batch), service_tier=tier or None),
                    class_rates(p, m))
    return out


def class_costs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per model call (same index): ``<class>_usd`` for :data:`SPLIT`, and
    ``uncached_usd`` / ``list_usd``; NaN where the price is unknown.

    >>> class_costs(run.trace.df)[["cache_read_usd", "list_usd"]]   # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    c = df[df["kind"] == "model"]
    num = {k: st.numeric(_col(c, k)).fillna(0).to_numpy() for k in (
        "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens",
        "cache_write_1h_tokens")}
    w = np.minimum(num["cache_write_tokens"], num["input_tokens"])
    w1h = np.minimum(num["cache_write_1h_tokens"], w)
    read = np.minimum(num["cached_tokens"], num["input_tokens"] - w)
    tokens = {"input": num["input_tokens"] - read - w, "output": num["output_tokens"],
              "cache_read": read, "cache_write": w - w1h, "cache_write_1h": w1h}
    batch = _col(c, "batch", False).astype("boolean").fillna(False).to_numpy(dtype=bool)
    # "" for no tier: pandas would turn a None key into NaN (a tier the table does not know)
    tier = [t if isinstance(t, str) else "" for t in _col(c, "service_tier", None)]
    keys = pd.DataFrame({"p": _col(c, "provider", "").astype(str),
                         "m": _col(c, "model", "").astype(str), "b": batch, "t": tier})
    table = _rates(keys)
    looked = [table[k] for k in keys.itertuples(index=False, name=None)]
    nan = dict.fromkeys(_CLASSES, np.nan)
    act = {k: np.array([(r[0] or nan)[k] for r in looked], dtype=float) for k in _CLASSES}
    lst = {k: np.array([(r[1] or nan)[k] for r in looked], dtype=float) for k in _CLASSES}
    raw = {k: tokens[k] * act[k] for k in _CLASSES}
    total = sum(raw.values())
    cost = st.numeric(c["cost_usd"]).where(~st.unpriced_mask(c)).to_numpy()
    hit = _col(c, "cached", False).astype("boolean").fillna(False).to_numpy(dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(total > 0, cost / total, 0.0)  # the engine's figure is the truth
    scale = np.where(np.isnan(cost), np.nan, np.where(hit, 0.0, scale))
    out = pd.DataFrame(index=c.index)
    for k in _CLASSES:
        out[f"{k}_usd"] = np.where(batch, 0.0, raw[k] * scale)
    out["batch_usd"] = np.where(batch, total * scale, 0.0)
    plain_in = tokens["input"] + read + w
    out["uncached_usd"] = (plain_in * act["input"] + tokens["output"] * act["output"]) * scale
    out["list_usd"] = (num["input_tokens"] * lst["input"] + tokens["output"] * lst["output"]
                       ) * scale
    out.loc[np.isnan(cost), :] = np.nan
    return out


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
    fig.update_layout(barmode="stack", legend_title_text="cost class")  # type: ignore[attr-defined]
