"""A trace's model calls' cost split by token class, and the same calls priced without levers.

Each model call's recorded cost is split into what its input, output, cache reads, cache
writes (5-minute and 1-hour) cost, at the rates the engine priced it with (batch calls are one
``batch`` class). Two counterfactuals price the same calls: ``uncached_usd`` with their cache
reads and writes as plain input (the prompt cache's saving is ``uncached_usd - cost_usd``,
negative while writes have not paid off yet), and ``list_usd`` at list price (no prompt cache,
no batch, no service tier). Response-cache hits cost nothing and are left out of both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._format import fmt_usd

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from ._span import Span

SPLIT = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "batch")
"""The classes a cost is split into (the ``<class>_usd`` columns)."""
_CLASSES = SPLIT[:-1]


def _col(c: pd.DataFrame, name: str, default: object = 0) -> pd.Series:
    import pandas as pd

    if name in c.columns:
        return c[name]
    return pd.Series(default, index=c.index)


def _num(s: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(s, errors="coerce").astype("float64")


def unpriced(c: pd.DataFrame) -> pd.Series:
    """Model calls whose price is unknown: ``priced`` False or ``cost_usd`` NaN."""
    m = _num(c["cost_usd"]).isna()
    if "priced" in c.columns:
        m = m | (c["priced"].astype("boolean") == False)  # noqa: E712
    return m.fillna(False).astype(bool)


def _rates(keys: pd.DataFrame) -> dict[tuple, tuple[dict | None, dict | None]]:
    """(actual rates, list rates) per distinct (provider, model, batch, tier) of the calls."""
    from ..models import class_rates, price_ref

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
    num = {k: _num(_col(c, k)).fillna(0).to_numpy() for k in (
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
    cost = _num(c["cost_usd"]).where(~unpriced(c)).to_numpy()
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


_PRICED_BY = ("kind", "provider", "model", "input_tokens", "output_tokens", "cached_tokens",
              "cache_write_tokens", "cache_write_1h_tokens", "batch", "service_tier", "cached",
              "priced", "cost_usd")


def calls_frame(spans: Iterable[Span]) -> pd.DataFrame:
    """The columns :func:`class_costs` and :func:`prompt_cache` read, for these spans only: a
    tenth of the time of the whole trace frame (no text columns) for a big eval."""
    import pandas as pd

    rows = [tuple(getattr(s, k) for k in _PRICED_BY) for s in spans]
    df = pd.DataFrame.from_records(rows, columns=list(_PRICED_BY))
    return df.astype({"cost_usd": "float64"})


def prompt_cache(df: pd.DataFrame) -> pd.DataFrame:
    """Per model call (same index as :func:`class_costs`): ``prompt_tokens`` (input tokens of
    calls made; a response-cache hit made none), ``cache_read_tokens``, ``cache_write_tokens``
    and ``prompt_cache_saved_usd``: ``uncached_usd - cost_usd``, negative while the writes
    have not paid off yet, NaN where the price is unknown.

    >>> prompt_cache(run.trace.df).sum()   # doctest: +SKIP
    """
    import numpy as np
    import pandas as pd

    c = df[df["kind"] == "model"]
    made = ~_col(c, "cached", False).astype("boolean").fillna(False).to_numpy(dtype=bool)
    inp = np.where(made, _num(_col(c, "input_tokens")).fillna(0).to_numpy(), 0.0)
    w = np.minimum(np.where(made, _num(_col(c, "cache_write_tokens")).fillna(0), 0.0), inp)
    read = np.minimum(np.where(made, _num(_col(c, "cached_tokens")).fillna(0), 0.0), inp - w)
    cost = _num(c["cost_usd"]).where(~unpriced(c)).to_numpy()
    return pd.DataFrame({"prompt_tokens": inp.astype("int64"),
                         "cache_read_tokens": read.astype("int64"),
                         "cache_write_tokens": w.astype("int64"),
                         "prompt_cache_saved_usd": class_costs(c)["uncached_usd"] - cost},
                        index=c.index)


def prompt_cache_note(prompt_tokens: float, read_tokens: float, write_tokens: float,
                      saved_usd: float) -> str:
    """What the prompt cache did, as a person reads it; "" when it read and wrote nothing.

    >>> prompt_cache_note(4000, 3000, 0, 0.0027)
    'prompt cache: 75% of prompt tokens read from cache, saved $0.0027'
    >>> prompt_cache_note(4000, 0, 3000, -0.00075).split(", ")[1]
    'cost $0.00075 more (writes not paid off yet)'
    >>> prompt_cache_note(4000, 3000, 0, float("nan"))
    'prompt cache: 75% of prompt tokens read from cache, saving unpriced'
    """
    if not (read_tokens or write_tokens):
        return ""
    rate = read_tokens / prompt_tokens if prompt_tokens else 0.0
    if saved_usd != saved_usd:  # NaN: a call with no known price
        money = "saving unpriced"
    elif saved_usd < 0:
        money = f"cost {fmt_usd(-saved_usd)} more (writes not paid off yet)"
    else:
        money = f"saved {fmt_usd(saved_usd)}"
    return f"prompt cache: {rate:.0%} of prompt tokens read from cache, {money}"
