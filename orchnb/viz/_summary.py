"""Summary tables (per run, per pipeline, per session) and side-by-side run comparison."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchnb.trace import prompt_cache
from orchnb.viz import _style as st
from orchnb.viz._cost_classes import class_table

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

UNFINISHED = "unfinished"
"""A run whose span says ``running``: the store writes a run's span when it starts and again
when it ends, so a run paused at a step (``pipe.start``, a playground) and one still going read
the same; none of them has finished, so that is what it says. A run whose process died reads
``crashed`` (``orchnb.traces()`` checks the writer's heartbeat)."""

_NEEDS = ("run_id", "span_id", "parent_id", "pipeline", "kind", "status", "start", "latency_ms",
          "cost_usd", "input_tokens", "output_tokens", "cached_tokens", "attempt")


def _per_run(df: pd.DataFrame) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    d = df.assign(_lat=st.latency_ms(df))
    runs = st.run_order(d)
    root = d[d["kind"] == "run"].drop_duplicates("run_id").set_index("run_id")
    g = d.groupby("run_id", sort=False)
    start, end = g["start"].min(), g["end"].max() if "end" in d.columns else g["start"].max()
    wall = ((pd.to_datetime(end, utc=True) - pd.to_datetime(start, utc=True))
            / pd.Timedelta(milliseconds=1)).astype("float64")
    c = st.calls(d)
    unpriced = st.unpriced_mask(c)
    c = c.assign(_cost=st.numeric(c["cost_usd"]).where(~unpriced), _up=unpriced.astype(int),
                 _model=(c["kind"] == "model").astype(int),
                 _retry=(st.numeric(c["attempt"]) - 1).clip(lower=0).fillna(0))
    cg = c.groupby("run_id", sort=False)
    # errors: failed spans none of whose children failed (root causes, not their parents)
    bad = d[d["status"].isin(st.ERROR_STATUSES)]
    bad = bad[~bad["span_id"].isin(set(bad["parent_id"].dropna()))]
    out = pd.DataFrame(index=pd.Index(runs, name="run_id"))
    out["pipeline"] = g["pipeline"].first()
    out["start"] = pd.to_datetime(start, utc=True).dt.floor("s")  # a table, not a log: seconds
    out["status"] = root["status"] if len(root) else "unknown"
    out["calls"] = cg.size()
    out["model_calls"] = cg["_model"].sum()
    out["tool_calls"] = out["calls"] - out["model_calls"]
    for col in ("input_tokens", "output_tokens", "cached_tokens"):
        out[col] = cg[col].apply(lambda s: st.numeric(s).sum())
    out["cost_usd"] = cg["_cost"].sum(min_count=1)
    out["unpriced_calls"] = cg["_up"].sum()
    out["latency_ms"] = root["_lat"].reindex(out.index).fillna(wall) if len(root) else wall
    out["call_p50_ms"] = cg["_lat"].quantile(0.5)
    out["call_p95_ms"] = cg["_lat"].quantile(0.95)
    out["errors"] = bad.groupby("run_id").size()
    out["retries"] = cg["_retry"].sum()
    ints = ["calls", "model_calls", "tool_calls", "input_tokens", "output_tokens",
            "cached_tokens", "unpriced_calls", "errors", "retries"]
    out[ints] = out[ints].fillna(0).astype("int64")
    no_calls = out["calls"] == 0
    out.loc[no_calls, "cost_usd"] = out.loc[no_calls, "cost_usd"].fillna(0.0)
    if "batch" in c.columns:  # batch mode: calls answered by a provider batch, and the saving
        b = c[c["batch"].fillna(False).astype(bool) & (c["status"] == "ok")]
        bg = b.groupby("run_id", sort=False)
        out["batch_calls"] = bg.size().reindex(out.index).fillna(0).astype("int64")
        saved = st.numeric(b["saved_usd"]) if "saved_usd" in b.columns else b["_cost"] * 0
        out["batch_saved_usd"] = saved.groupby(b["run_id"]).sum().reindex(out.index).fillna(0.0)
    out["status"] = out["status"].fillna("unknown").replace({"running": UNFINISHED})
    _add_prompt_cache(d, out)
    return out.replace({np.inf: np.nan})


def _add_prompt_cache(d: pd.DataFrame, out: pd.DataFrame) -> None:
    """Each run's prompt-cache hit rate (cache reads / input tokens of the calls made) and
    what the prompt cache saved (negative while writes have not paid off; NaN: unpriced)."""
    pc = prompt_cache(d)
    # by position: a frame concatenated from several traces may repeat index labels
    g = pc.groupby(d.loc[d["kind"] == "model", "run_id"].to_numpy(), sort=False)
    prompt = g["prompt_tokens"].sum().reindex(out.index).fillna(0)
    out["cache_hit_rate"] = (g["cache_read_tokens"].sum().reindex(out.index) / prompt
                             ).where(prompt > 0)
    saved = g["prompt_cache_saved_usd"].sum(min_count=1).reindex(out.index)
    has = g.size().reindex(out.index).fillna(0) > 0
    out["cache_saved_usd"] = saved.where(has, 0.0)  # no model call: saved nothing


def summary(df: pd.DataFrame, *, by: str = "run") -> pd.DataFrame:
    """One row per run (``by="run"``), per pipeline or per session, with totals and percentiles.

    Per run: pipeline, start (UTC, to the second), status (``unfinished`` for a run that has
    not ended when read: paused at a step, still going, or its kernel stopped; the store cannot
    tell these apart), calls (model + tool), tokens, cost_usd (priced calls only;
    NaN when every call is unpriced), unpriced_calls, latency_ms (wall time), call p50/p95 (ms),
    errors (failed spans that are root causes) and retries (sum of ``attempt - 1``); with a
    ``batch`` column, batch_calls and batch_saved_usd (what batch mode saved against list
    price); the prompt cache's ``cache_hit_rate`` (cache reads / input tokens of the calls
    made) and ``cache_saved_usd`` (against the same calls without it: negative while cache
    writes have not paid off, NaN when a price is unknown), as ``by="step"`` has them.
    Per pipeline / session: runs, failed_runs and run p50/p95 latency as well. A session is a
    ``session_id`` column's value when there is one, else the whole frame. Per step: the model
    calls' cost split by class, the prompt cache's hit rate and what it saved, and what every
    cost lever saved against list price (see :func:`orchnb.viz.class_table`).

    >>> summary(orchnb.traces(), by="pipeline")   # doctest: +SKIP
    """
    import pandas as pd

    st.require(df, _NEEDS, "summary")
    if by == "step":
        return class_table(df, by="step").set_index("step")
    if by not in ("run", "pipeline", "session"):
        raise ValueError(f"summary: by must be 'run', 'step', 'pipeline' or 'session', "
                         f"not {by!r}")
    runs = _per_run(df)
    if by == "run":
        return runs
    if by == "pipeline":
        key = runs["pipeline"]
        calls_key = st.calls(df)["pipeline"]
    elif "session_id" in df.columns:
        sess = df.groupby("run_id")["session_id"].first()
        key = sess.reindex(runs.index)
        calls_key = st.calls(df)["session_id"]
    else:
        key = pd.Series("all", index=runs.index)
        calls_key = pd.Series("all", index=st.calls(df).index)
    g = runs.groupby(key.rename(by), sort=False)
    out = g.agg(runs=("pipeline", "size"), first_start=("start", "min"),
                calls=("calls", "sum"), input_tokens=("input_tokens", "sum"),
                output_tokens=("output_tokens", "sum"), cached_tokens=("cached_tokens", "sum"),
                cost_usd=("cost_usd", lambda s: s.sum(min_count=1)),
                unpriced_calls=("unpriced_calls", "sum"))
    out["failed_runs"] = g["status"].apply(lambda s: int((s.isin(st.ERROR_STATUSES)).sum()))
    out["run_p50_ms"] = g["latency_ms"].quantile(0.5)
    out["run_p95_ms"] = g["latency_ms"].quantile(0.95)
    lat = st.latency_ms(st.calls(df)).groupby(calls_key.rename(by))
    out["call_p50_ms"] = lat.quantile(0.5)
    out["call_p95_ms"] = lat.quantile(0.95)
    out["errors"] = g["errors"].sum()
    out["retries"] = g["retries"].sum()
    return out


def summary_table(df: pd.DataFrame, *, by: str = "run") -> Styler:
    """:func:`summary` as a styled table (``$``, ms, thousands; errors red, unpriced amber).

    The result is a pandas ``Styler``: it renders as HTML in a notebook, and ``.to_html()``
    gives the HTML.

    >>> summary_table(orchnb.traces())   # doctest: +SKIP
    """
    t = summary(df, by=by)
    if by == "step":
        return _step_table(t)
    money = {c: (lambda v: st.fmt_usd(v) if not st.is_missing(v) else "unpriced")
             for c in t.columns if c.endswith("_usd")}
    rates = {c: "{:.0%}" for c in ("cache_hit_rate",) if c in t.columns}
    ms = {c: st.fmt_ms for c in t.columns if c.endswith("_ms")}
    ints = {c: "{:,}" for c in t.columns if str(t[c].dtype) == "int64"}
    dates = {c: (lambda v: "" if st.is_missing(v) else v.strftime("%Y-%m-%d %H:%M:%S"))
             for c in ("start", "first_start") if c in t.columns}
    total = t["cost_usd"].sum()
    n_up = int(t["unpriced_calls"].sum())
    caption = f"orchnb summary by {by} · {st.plural(len(t), by)} · {st.fmt_usd(total)}"
    if n_up:
        caption += f" + {st.plural(n_up, 'unpriced call')}"
    if "status" in t.columns and (t["status"] == UNFINISHED).any():
        caption += (" · unfinished: not ended when read (paused at a step, still going, or its "
                    "kernel stopped)")
    sty = t.style.format({**ints, **ms, **money, **rates, **dates}, na_rep="–"
                         ).set_caption(caption)
    warn = "background-color: #FFF4CE; color: #7A5B00"

    def _flag(v: Any, css: str) -> str:
        return css if not st.is_missing(v) and v > 0 else ""

    sty = sty.map(_flag, css="color: #D62728; font-weight: 600", subset=["errors"])
    sty = sty.map(_flag, css=warn, subset=["unpriced_calls", "retries"])
    sty = sty.map(lambda v: warn if st.is_missing(v) else "", subset=["cost_usd"])
    if "status" in t.columns:
        sty = sty.map(lambda v: f"color: {st.STATUS_COLORS.get(str(v), '#2A3F5F')}",
                      subset=["status"])
    bars = [c for c in ("cost_usd", "latency_ms", "run_p95_ms")  # an all-zero column: no bars
            if c in t.columns and st.numeric(t[c]).max() > 0]
    sty = sty.bar(subset=bars, color="#C6DDF0", vmin=0, height=60, width=55)
    # JupyterLab's MathJax would typeset the text between two amounts ("$0.01 … $0.02") as math
    sty = sty.set_table_attributes('class="tex2jax_ignore mathjax_ignore"')
    return sty.set_table_styles([
        {"selector": "", "props": f"font-family: {st.FONT}; font-size: 13px;"},
        {"selector": "caption", "props": "caption-side: top; font-weight: 600; text-align: left;"
                                         " padding-bottom: 6px;"},
        {"selector": "th", "props": "text-align: left; font-weight: 600;"},
        {"selector": "td", "props": "text-align: right; padding: 2px 8px;"
                                    " font-variant-numeric: tabular-nums;"},
    ])


def _step_table(t: pd.DataFrame) -> Styler:
    """The per-step cost-lever table: money, hit rate as a percentage, savings in green."""
    money = {c: (lambda v: "–" if st.is_missing(v) else st.fmt_usd(v))
             for c in t.columns if c.endswith("_usd")}
    saved, spent = t["saved_usd"].sum(), t["cost_usd"].sum()
    caption = (f"cost levers by step · paid {st.fmt_usd(spent)} · saved {st.fmt_usd(saved)} "
               f"against list price")
    ints = {c: "{:,}" for c in ("calls", "cached_tokens", "cache_write_tokens")}
    sty = t.style.format({**money, **ints, "cache_hit_rate": "{:.0%}"}, na_rep="–"
                         ).set_caption(caption)
    sty = sty.map(lambda v: "color: #2E7D32; font-weight: 600"
                  if not st.is_missing(v) and v > 0 else "",
                  subset=["cache_saved_usd", "saved_usd"])
    return sty.set_table_attributes('class="tex2jax_ignore mathjax_ignore"')


def _rows_of(df: pd.DataFrame, run_id: str) -> list[dict[str, Any]]:
    """Step spans (and router pattern spans) of one run in start order, with direct call cost."""
    r = df[df["run_id"].astype(str) == run_id]
    r = r.assign(_ms=st.epoch_ms(r["start"]), latency_ms=st.latency_ms(r)).sort_values(
        ["_ms"], kind="stable")
    parent = dict(zip(r["span_id"].astype(str), r["parent_id"], strict=True))
    kind = dict(zip(r["span_id"].astype(str), r["kind"], strict=True))
    cost: dict[str, float] = defaultdict(float)
    n_unpriced: dict[str, int] = defaultdict(int)
    unpriced = st.unpriced_mask(r)
    for sid, c, up in zip(r["span_id"].astype(str), st.numeric(r["cost_usd"]), unpriced,
                          strict=True):
        if kind[sid] not in st.CALL_KINDS or (c != c and not up):
            continue
        p = parent.get(sid)
        while not st.is_missing(p) and kind.get(str(p)) in st.CALL_KINDS:
            p = parent.get(str(p))
        if st.is_missing(p):
            continue
        if up:
            n_unpriced[str(p)] += 1
        else:
            cost[str(p)] += float(c)
    route = r["route"] if "route" in r.columns else None
    keep = (r["kind"] == "step") | ((r["kind"] == "pattern") & route.notna()
                                    if route is not None else False)
    seen: dict[tuple, int] = defaultdict(int)
    out: list[dict[str, Any]] = []
    for x in r[keep].itertuples(index=False):
        item, it = getattr(x, "item", None), getattr(x, "iteration", None)
        name = str(x.step)
        if not st.is_missing(item):
            name += f"[{int(item)}]"
        elif not st.is_missing(it):
            name += f" (iter {int(it)})"
        seen[name] += 1
        label = name if seen[name] == 1 else f"{name} #{seen[name]}"
        out.append({"step": label, "output": getattr(x, "output", None),
                    "route": getattr(x, "route", None),
                    "cost_usd": _step_cost(str(x.span_id), cost, n_unpriced),
                    "latency_ms": x.latency_ms, "status": x.status})
    return out


def compare_runs(df: pd.DataFrame, run_ids: Sequence[str]) -> pd.DataFrame:
    """Runs side by side, one row per step (aligned by step name and order), one column per
    field and run: output, route, cost_usd, latency_ms, status.

    Works across pipelines (steps missing in a run are NaN). The ``diverges`` column flags rows
    where outputs or routes differ; ``result.attrs["first_divergence"]`` names the first such
    step (None if the runs agree) and ``attrs["divergence_reason"]`` says why ("output",
    "route" or "missing"). The first row, ``(run)``, is the runs' final output, total cost and
    wall time.

    >>> cmp = compare_runs(orchnb.traces(), [run_a.id, run_b.id])   # doctest: +SKIP
    >>> cmp.attrs["first_divergence"]                               # doctest: +SKIP
    'draft'
    """
    import pandas as pd

    st.require(df, ("run_id", "span_id", "parent_id", "kind", "step", "start"), "compare_runs")
    ids = [str(r) for r in run_ids]
    known = set(df["run_id"].astype(str))
    if len(ids) < 2:
        raise ValueError("compare_runs: give at least two run ids")
    missing = [r for r in ids if r not in known]
    if missing:
        raise ValueError(f"compare_runs: unknown run id(s) {', '.join(missing)}; "
                         f"known: {', '.join(sorted(known)[:10])}")
    per = {rid: {row["step"]: row for row in _rows_of(df, rid)} for rid in ids}
    order = _merged_order([list(per[rid]) for rid in ids])
    runs = summary(df[df["run_id"].astype(str).isin(ids)], by="run")
    root = df[(df["kind"] == "run") & df["run_id"].astype(str).isin(ids)].set_index("run_id")
    fields = ["output", "route", "cost_usd", "latency_ms", "status"]
    data: dict[tuple[str, str], list[Any]] = {(f, r): [] for f in fields for r in ids}
    for rid in ids:
        out = root["output"].get(rid) if "output" in root.columns else None
        vals = {"output": out, "route": None, "cost_usd": runs.loc[rid, "cost_usd"],
                "latency_ms": runs.loc[rid, "latency_ms"], "status": runs.loc[rid, "status"]}
        for f in fields:
            data[(f, rid)].append(vals[f])
    diverges, first, reason = [_differs([data[("output", r)][0] for r in ids])], None, None
    for step in order:
        rows = [per[r].get(step) for r in ids]
        for f in fields:
            for rid, row in zip(ids, rows, strict=True):
                data[(f, rid)].append(None if row is None else row[f])
        why = ("missing" if any(row is None for row in rows)
               else "route" if _differs([row["route"] for row in rows])
               else "output" if _differs([row["output"] for row in rows]) else None)
        diverges.append(why is not None)
        if why and first is None:
            first, reason = step, why
    out = pd.DataFrame(data, index=pd.Index(["(run)", *order], name="step"))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["field", "run_id"])
    out[("diverges", "")] = diverges
    out.attrs.update(first_divergence=first, divergence_reason=reason, run_ids=ids)
    return out


def _merged_order(step_lists: list[list[str]]) -> list[str]:
    """Merge step orders: a new step goes just before the next known one."""
    order: list[str] = []
    for steps in step_lists:
        for i, step in enumerate(steps):
            if step in order:
                continue
            after = next((order.index(x) for x in steps[i + 1 :] if x in order), len(order))
            order.insert(after, step)
    return order


def _step_cost(sid: str, cost: dict[str, float], n_unpriced: dict[str, int]) -> float:
    """Priced cost of a step's own calls; NaN when it has only unpriced calls, never $0."""
    if sid in cost:
        return cost[sid]
    return float("nan") if n_unpriced.get(sid) else 0.0


def _differs(values: list[Any]) -> bool:
    norm = {None if st.is_missing(v) else str(v) for v in values}
    return len(norm) > 1
