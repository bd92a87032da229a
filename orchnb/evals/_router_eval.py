"""One router over labelled rows: estimate, refuse above the cap, run, report.

By default only the classifier runs on each row (cheap); ``full_pipeline`` runs each row's route
too. Per-row results are read back from the run's spans (``_collect``) into the predictions
DataFrame an :class:`EvalReport` is made of.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..exceptions import BudgetExceeded, RunCancelled
from ._checks import check_labels, check_oos_label
from ._collect import PROMPT_CACHE, router_columns
from ._costs import CostEstimate, RouterCosts
from ._remote import RouterRow
from ._report import EvalReport
from ._rows import announce, check_router, load_rows, refuse_over, routes_of, rows_run

if TYPE_CHECKING:
    import pandas as pd

    from ..engine import Run
    from ._options import EvalOptions


def evaluate_router(router: Any, data: Any, opts: EvalOptions) -> EvalReport:
    """The router's eval on ``data`` (see :func:`orchnb.evaluate`)."""
    label = opts.label or "label"
    df = load_rows(data, opts, label)
    check_router(router)
    check_labels(opts.entry, router, df, label)
    check_oos_label(opts.entry, router, opts.oos_label)
    estimate = estimate_router(router, df, opts)
    announce(router.name, estimate, opts.progress)
    refuse_over(router.name, estimate.usd, opts.max_usd)
    return run_eval(router, df, opts, estimate)


def estimate_router(router: Any, df: pd.DataFrame, opts: EvalOptions) -> CostEstimate:
    """What the eval will cost before the response cache: the classifier on every row, and in
    a full-pipeline eval each row's route (its true label's)."""
    costs = RouterCosts(router, df[opts.text].astype(str).tolist(), opts.output_tokens)
    label = opts.label or "label"
    return costs.estimate(routes_of(router, df[label]) if opts.full_pipeline else None)


def run_eval(router: Any, df: pd.DataFrame, opts: EvalOptions, estimate: CostEstimate,
             candidate: str | None = None) -> EvalReport:
    """Run the rows and build the report (the estimate was already made and checked)."""
    label = opts.label or "label"
    texts = df[opts.text].astype(str).tolist()
    labels = df[label].astype(str).tolist()
    run = _router_run(router, texts, opts, candidate or router.name)
    started = time.perf_counter()
    try:
        run.run_sync()
    except (BudgetExceeded, RunCancelled) as e:
        raise _stopped(e, router, run, texts, labels, opts.full_pipeline) from None
    wall = time.perf_counter() - started
    rows = router_columns(run, len(texts), router.classifier.name, opts.full_pipeline)
    predictions = frame(df, texts, labels, rows, opts.text, label)
    observed = rows.pop("_observed") if opts.full_pipeline else None
    setup_usd = rows.pop("_setup_usd")
    costs = RouterCosts(router, texts, opts.output_tokens, observed)
    return EvalReport(candidate or router.name, router, predictions, costs, run=run,
                      estimate=estimate, full_pipeline=opts.full_pipeline,
                      baseline=opts.baseline, seed=opts.seed, n_boot=opts.n_boot,
                      level=opts.level, wall_s=wall, setup_usd=setup_usd,
                      oos_label=opts.oos_label)


def _router_run(router: Any, texts: list[str], opts: EvalOptions, name: str) -> Run:
    clf = router.classifier
    # Embedding classifiers: the examples once, then every query in batched calls (spans
    # under the run, reported apart), not one embedding call per row.
    prefetch = getattr(clf, "prefetch", None)
    meta = {"router": router.name, "rows": len(texts), "full_pipeline": opts.full_pipeline,
            "concurrency": opts.concurrency}
    return rows_run(router, RouterRow(router, opts.full_pipeline), texts, opts, name=name,
                    meta=meta, warm=prefetch, cool=clf.forget if prefetch is not None else None)


def frame(df: pd.DataFrame, texts: list[str], labels: list[str], cols: dict[str, Any],
          text: str, label: str) -> pd.DataFrame:
    """The predictions DataFrame (one row per input row, the input's index kept)."""
    import numpy as np
    import pandas as pd

    def col(name: str, numeric: bool = False) -> pd.Series:
        s = pd.Series(cols[name], index=df.index, dtype=object)
        return pd.to_numeric(s, errors="coerce") if numeric else s

    route = col("route")
    out = pd.DataFrame({
        "text": texts, "label": labels, "route": route, "raw_label": col("raw_label"),
        "confidence": col("confidence", numeric=True),
        "defaulted": col("defaulted").fillna(False).astype(bool),
        "correct": (route.to_numpy() == np.asarray(labels, dtype=object)),
        **{k: cols[k] for k in ("latency_ms", "cost_usd", "service_ms", "saved_usd",
                                "cached_calls", "calls", "classifier_usd", "route_usd",
                                "batch_calls", "batch_saved_usd", *PROMPT_CACHE)},
        "similarity": col("similarity", numeric=True), "score": col("score", numeric=True),
        "reason": col("reason"), "error": col("error"),
    }, index=df.index)
    if any(o is not None for o in cols["output"]):
        out["output"] = cols["output"]
    for c in df.columns:
        if c not in (text, label) and c not in out.columns:
            out[c] = df[c]
    return out


def _stopped(e: BaseException, router: Any, run: Run, texts: list[str], labels: list[str],
             full: bool) -> BaseException:
    """The budget / cancel error, saying how far the eval got, with the finished rows."""
    import pandas as pd

    rows = router_columns(run, len(texts), router.classifier.name, full)
    done = [i for i, d in enumerate(rows["done"]) if d and rows["route"][i] is not None]
    partial = frame(pd.DataFrame(index=range(len(texts))), texts, labels, rows, "text",
                    "label").iloc[done]
    msg = (f"evaluate '{router.name}': stopped after {len(done):,} of {len(texts):,} rows: {e}. "
           f"The finished rows are in err.predictions, the trace in err.run.trace.df")
    err: BaseException = (BudgetExceeded(msg, limit=getattr(e, "limit", "usd"))
                          if isinstance(e, BudgetExceeded) else RunCancelled(msg))
    err.run = run  # type: ignore[attr-defined]
    err.predictions = partial  # type: ignore[attr-defined]
    return err
