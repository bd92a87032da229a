"""``evaluate``: a router over labelled rows, inside one traced engine run.

All rows run in one run (``eval:ROUTER`` in the traces) through ``ctx.gather`` with bounded
concurrency: every classification (or whole routed pipeline) is a span tagged with its row, so
the eval is traced, budgeted, cached and cancellable like any run, and 10,000 rows on ``sim:``
models take a second or two. Per-row results are read back from the spans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..engine import Budget, Run, RunContext, as_text
from ..exceptions import BudgetExceeded, RunCancelled, SpecError
from ..trace import Span, plural
from ._checks import check_eval_knobs, check_labels
from ._costs import DEFAULT_OUTPUT_TOKENS, RouterCosts, is_router
from ._data import load_data

if TYPE_CHECKING:
    import pandas as pd

    from ._candidates import Comparison
    from ._compare import Experiment
    from ._report import EvalReport
    from ._scores_report import ScoreReport

log = logging.getLogger("orchnb.evals")


def evaluate(
    router: Any,
    data: Any,
    *,
    text: str = "text",
    label: str | None = None,
    expected: str | None = None,
    scorers: Any = None,
    name: str | None = None,
    full_pipeline: bool = False,
    concurrency: int = 16,
    progress: bool = True,
    cache: bool | None = None,
    budget: Budget | None = None,
    max_usd: float | None = None,
    baseline: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    output_tokens: float = DEFAULT_OUTPUT_TOKENS,
    repeats: int | None = None,
    executor: Any = None,
) -> EvalReport | Comparison | ScoreReport | Experiment:
    """Evaluate a pipeline on data: any pattern with scorers, or a router's routing.

    **Any pipeline** (``expected=`` or ``scorers=`` given, or not a router): every row's
    ``text`` runs through the whole pipeline in one traced run, ``concurrency`` rows at a time,
    and each output is scored: built-ins by name (``"exact"``, ``"iexact"``, ``"contains"``,
    ``"regex:PATTERN"``, ``"json:FIELD"``, ``"numeric[:TOL]"``), Python functions
    ``(output, expected[, row]) -> float | bool`` and :func:`orchnb.judge` (LLM as judge).
    Returns a :class:`~orchnb.evals.ScoreReport` (``.scores``, ``.summary``, ``.failures``).
    With ``expected`` and no scorers, ``"exact"`` is used.

    >>> grader = orchnb.judge("openai:gpt-4o-mini", "Correct and concise")  # doctest: +SKIP
    >>> report = orchnb.evaluate(chain, data, text="question", expected="answer",
    ...                          scorers=["exact", grader])                  # doctest: +SKIP

    **Routers** (``label=``, the default column ``"label"``): returns an :class:`EvalReport`.

    By default only the classifier runs (cheap); ``full_pipeline=True`` runs each row's route
    too. Rows run ``concurrency`` at a time in one traced run with a progress bar
    (``progress=False`` hides it and the printed cost estimate). Before any call the cost is
    estimated (``report.estimate``); ``max_usd`` refuses to start above it and also caps the
    run's spend, as ``budget`` does. Repeated evals are answered by the response cache and, for
    local embedders, the disk cache of vectors (``cache=False`` bypasses both; the default,
    ``None``, follows the pipeline's own ``cache=`` and then the session's).
    ``baseline="openai:gpt-4o"`` adds the saving against sending every query to that model.
    ``sample=N`` evaluates a seeded random sample of N rows.
    ``executor="ray"`` (either form) runs the rows on a Ray cluster (``orchnb[ray]``) in
    batches, traced live into this kernel's store: the same report as in the kernel.

    ``repeats=N`` with a function ``seed -> router`` (drawing the router's examples with that
    seed) evaluates N draws and reports mean ± sd (a :class:`~orchnb.evals.RepeatedReport`).

    Give several routers (a dict ``{name: router}`` or a list) to compare them: see
    :func:`compare_routers`.

    >>> report = orchnb.evaluate(triage, orchnb.evals.load_tickets())   # doctest: +SKIP
    >>> report.accuracy, report.accuracy_ci, report.per_route            # doctest: +SKIP
    """
    if repeats is not None:
        from ._repeats import evaluate_repeats

        return evaluate_repeats(router, data, repeats, text=text, label=label,  # type: ignore[return-value]
                                full_pipeline=full_pipeline, concurrency=concurrency,
                                progress=progress, cache=cache, budget=budget, max_usd=max_usd,
                                sample=sample, seed=seed, n_boot=n_boot, level=level)
    many = isinstance(router, (Mapping, list, tuple))
    members = list(router.values()) if isinstance(router, Mapping) else (
        list(router) if many else [router])
    if expected is not None or scorers is not None or not all(map(is_router, members)):
        if expected is None and label is None and scorers is None:
            odd = next(x for x in members if not is_router(x))
            raise SpecError(f"evaluate: {type(odd).__name__} {getattr(odd, 'name', odd)!r} is "
                            f"not a router, so its outputs are scored: give expected='COLUMN' "
                            f"(scored 'exact') or scorers=[...]")
        options = dict(text=text, expected=expected or label, scorers=scorers,
                       concurrency=concurrency, progress=progress, cache=cache, budget=budget,
                       max_usd=max_usd, sample=sample, seed=seed, n_boot=n_boot, level=level,
                       executor=executor)
        if many:
            from ._compare import compare

            return compare(router, data, **options)  # type: ignore[return-value]
        from ._pipeline_eval import evaluate_pipeline

        return evaluate_pipeline(router, data, name=name, **options)  # type: ignore[return-value]
    label = label or "label"
    check_eval_knobs("evaluate", text=text, label=label, concurrency=concurrency,
                     sample=sample, seed=seed, n_boot=n_boot, level=level,
                     output_tokens=output_tokens, max_usd=max_usd, budget=budget,
                     baseline=baseline, cache=cache, progress=progress,
                     full_pipeline=full_pipeline)
    if many:
        from ._candidates import compare_routers

        return compare_routers(router, data, text=text, label=label, full_pipeline=full_pipeline,
                               concurrency=concurrency, progress=progress, cache=cache,
                               budget=budget, max_usd=max_usd, baseline=baseline, sample=sample,
                               seed=seed, n_boot=n_boot, level=level, output_tokens=output_tokens,
                               executor=executor)
    df = prepare(data, text=text, label=label, sample=sample, seed=seed)
    check_router(router)
    if executor is not None:  # a bad executor fails before the estimate, and before any call
        from ._remote import as_executor

        executor = as_executor(executor, f"evaluate '{router.name}'")
    check_labels("evaluate", router, df, label)
    costs = RouterCosts(router, df[text].astype(str).tolist(), output_tokens)
    estimate = costs.estimate(routes_of(router, df[label]) if full_pipeline else None)
    announce(router.name, estimate, progress)
    refuse_over(router.name, estimate.usd, max_usd)
    return run_eval(router, df, text=text, label=label, full_pipeline=full_pipeline,
                    concurrency=concurrency, progress=progress, cache=cache, budget=budget,
                    max_usd=max_usd, baseline=baseline, seed=seed, n_boot=n_boot, level=level,
                    output_tokens=output_tokens, estimate=estimate, executor=executor)


def prepare(data: Any, *, text: str, label: str, sample: int | None, seed: int) -> pd.DataFrame:
    df = load_data(data, text=text, label=label)
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed)
    return df


def check_router(router: Any, what: str = "evaluate") -> None:
    if not is_router(router):
        kind = type(router).__name__
        raise SpecError(f"{what}: {kind} {getattr(router, 'name', router)!r} is not a router; "
                        f"evaluate needs an orchnb.Router (a classifier and routes)")


def routes_of(router: Any, labels: Sequence[str]) -> list[str]:
    """The route each true label should take (labels that are no route: the default)."""
    fallback = router.default or next(iter(router.routes))
    return [x if x in router.routes else fallback for x in map(str, labels)]


def announce(name: str, estimate: Any, show: bool) -> None:
    log.info("eval of %s: %s", name, estimate)
    if show:
        print(f"{name}: {estimate}")


def refuse_over(name: str, usd: float, max_usd: float | None) -> None:
    if max_usd is not None and usd > max_usd:  # NaN (unknown price) compares False: not refused
        raise BudgetExceeded(
            f"evaluate '{name}': the estimated cost ${usd:,.4f} is over max_usd=${max_usd:,.4f}; "
            f"nothing was run. Raise max_usd, evaluate a sample (sample=200) or use a cheaper "
            f"classifier", limit="usd")


def run_eval(router: Any, df: pd.DataFrame, *, text: str, label: str, full_pipeline: bool,
             concurrency: int, progress: bool, cache: bool | None, budget: Budget | None,
             max_usd: float | None, baseline: str | None, seed: int, n_boot: int, level: float,
             output_tokens: float, estimate: Any, candidate: str | None = None,
             executor: Any = None) -> EvalReport:
    """Run the rows and build the report (the estimate was already made and checked)."""
    from ._report import EvalReport

    if concurrency < 1:
        raise SpecError(f"evaluate: concurrency must be at least 1, got {concurrency}")
    texts = df[text].astype(str).tolist()
    labels = df[label].astype(str).tolist()
    if max_usd is not None:
        cap = max_usd if budget is None or budget.max_usd is None else min(budget.max_usd, max_usd)
        budget = replace(budget or Budget(), max_usd=cap)
    run = _make_run(router, texts, full_pipeline, concurrency, progress, cache, budget, candidate,
                    executor)
    started = time.perf_counter()
    try:
        run.run_sync()
    except (BudgetExceeded, RunCancelled) as e:
        raise _stopped(e, router, run, texts, labels, full_pipeline) from None
    wall = time.perf_counter() - started
    rows = collect(run, len(texts), router.classifier.name, full_pipeline)
    predictions = frame(df, texts, labels, rows, text, label)
    observed = rows.pop("_observed") if full_pipeline else None
    setup_usd = rows.pop("_setup_usd")
    costs = RouterCosts(router, texts, output_tokens, observed)
    return EvalReport(candidate or router.name, router, predictions, costs, run=run,
                      estimate=estimate, full_pipeline=full_pipeline, baseline=baseline,
                      seed=seed, n_boot=n_boot, level=level, wall_s=wall, setup_usd=setup_usd)


def _make_run(router: Any, texts: list[str], full: bool, concurrency: int, progress: bool,
              cache: bool | None, budget: Budget | None, candidate: str | None,
              executor: Any = None) -> Run:
    outputs: list[Any] = [None] * len(texts)
    name = candidate or router.name

    async def one(ctx: RunContext, i: int) -> None:
        x = texts[i]
        try:
            if full:
                outputs[i] = await router.invoke(ctx, x, {"run_input": x})
            else:
                await router.classify(ctx, x, {"run_input": x})
        except (BudgetExceeded, RunCancelled):
            raise
        except Exception:
            pass  # the row's error is in its spans; the report lists it

    async def body(ctx: RunContext, _: Any) -> list[Any]:
        root = ctx.current_span()
        root.meta = {"eval": {"router": router.name, "rows": len(texts),
                              "full_pipeline": full, "concurrency": concurrency}}
        if executor is not None:  # executor="ray": the rows on Ray workers (see _remote)
            from ._remote import RouterRow, rows_on_ray

            return await rows_on_ray(ctx, RouterRow(router, full), router, texts,
                                     executor=executor, concurrency=concurrency,
                                     label=f"eval {name}")
        clf = router.classifier
        prefetch = getattr(clf, "prefetch", None)
        try:
            if prefetch is not None:
                # Embedding classifiers: the examples once, then every query in batched calls
                # (spans under the run, reported apart), not one embedding call per row.
                await prefetch(ctx, texts)
            await ctx.gather([lambda i=i: one(ctx, i) for i in range(len(texts))],
                             concurrency=concurrency, progress=f"eval {name}")
        finally:
            if prefetch is not None:
                clf.forget()
        return outputs

    router.check_models()  # every model of the router (and its routes) callable: before paying
    return router.new_run(plural(len(texts), "row"), body=body, name=f"eval:{name}", pattern="eval",
                          cache=cache, budget=budget, progress=progress)


def collect(run: Run, n: int, classifier: str, full: bool) -> dict[str, Any]:
    """Per-row columns read from the run's spans.

    Each span is attributed to its row through its ancestor that is a child of the run span
    (the row's classify span, or its router span in a full-pipeline eval), so nested fan-outs
    inside a route do not confuse rows.
    """
    import math

    spans = list(run.trace.spans)
    root = next((s for s in reversed(spans) if s.kind == "run"), None)
    if root is None:  # interrupted before the run span ended: treat it as having no rows done
        spans, root = [], Span(run.id, "", None, run.pipeline, "eval", "", "run")
    by_id = {s.span_id: s for s in spans}
    top: dict[str, Any] = {}  # span_id -> its row's top span

    def top_of(span: Any) -> Any:
        chain = []
        s = span
        while s.parent_id != root.span_id:
            hit = top.get(s.span_id)
            if hit is not None:
                break
            chain.append(s)
            s = by_id.get(s.parent_id)  # type: ignore[assignment]
            if s is None:
                return None
        else:
            hit = s
        for c in chain:
            top[c.span_id] = hit
        return hit

    tops: list[Any] = [None] * n
    for s in spans:
        if s.parent_id == root.span_id and s.item is not None and s.item < n:
            tops[s.item] = s
            top[s.span_id] = s
    clf: list[Any] = list(tops) if not full else [None] * n
    row_of = {id(t): i for i, t in enumerate(tops) if t is not None}
    if full:
        for s in spans:
            if s.kind == "step" and s.step == classifier and s.route is not None:
                parent = by_id.get(s.parent_id)  # type: ignore[arg-type]
                i = row_of.get(id(parent)) if parent is not None else None
                if i is not None and clf[i] is None:
                    clf[i] = s
    clf_ids = {s.span_id for s in clf if s is not None}
    nan = math.nan
    cost = [0.0] * n
    saved = [0.0] * n
    clf_usd = [0.0] * n
    route_usd = [0.0] * n
    calls = [0] * n
    service = [0.0] * n
    cached = [0] * n
    out_tokens: dict[str, list[int]] = {}
    setup = {"examples": 0.0, "queries": 0.0, "queries_listed": 0.0}
    for s in spans:
        if s.kind != "model":
            continue
        if s.parent_id == root.span_id and s.item is None:  # an embedding classifier's batches
            c = nan if s.cost_usd is None else s.cost_usd
            listed = c + (s.saved_usd or 0.0) if s.cached else c
            if s.step.endswith(":examples"):
                setup["examples"] += listed
            else:
                setup["queries"] += c
                setup["queries_listed"] += listed
            continue
        t = top_of(s)
        i = row_of.get(id(t)) if t is not None else None
        if i is None:
            continue
        c = nan if s.cost_usd is None else s.cost_usd
        listed = c + (s.saved_usd or 0.0) if s.cached else c
        cost[i] += c
        if not s.cached and s.latency_ms is not None:
            service[i] += s.latency_ms
        saved[i] += (s.saved_usd or 0.0) if s.cached else 0.0
        calls[i] += 1
        cached[i] += bool(s.cached)
        if s.parent_id in clf_ids:
            clf_usd[i] += listed
        else:
            route_usd[i] += listed
            if s.output_tokens is not None and not (s.meta or {}).get("embedding"):
                out_tokens.setdefault(s.step, []).append(s.output_tokens)
    cols: dict[str, Any] = {k: [None] * n for k in (
        "route", "raw_label", "confidence", "defaulted", "reason", "similarity", "score",
        "error")}
    latency = [nan] * n
    for i, (t, c) in enumerate(zip(tops, clf)):
        if t is not None:
            latency[i] = t.latency_ms if t.latency_ms is not None else nan
            if t.status != "ok":
                cols["error"][i] = t.error or t.status
        if c is None:
            continue
        meta = c.meta or {}
        cols["route"][i] = c.route
        cols["raw_label"][i] = c.raw_label
        cols["confidence"][i] = c.confidence
        cols["defaulted"][i] = bool(meta.get("defaulted", False))
        cols["reason"][i] = meta.get("reason")
        cols["similarity"][i] = meta.get("similarity")
        cols["score"][i] = meta.get("score", meta.get("similarity"))
    if n and (setup["queries"] or setup["queries_listed"]):
        # Batched query embeddings: each row's share (they are per-query costs).
        for i in range(n):
            cost[i] += setup["queries"] / n
            clf_usd[i] += setup["queries_listed"] / n
    outputs = run.output if isinstance(run.output, list) else [None] * n
    cols.update(latency_ms=latency, service_ms=service, cost_usd=cost, saved_usd=saved,
                classifier_usd=clf_usd, route_usd=route_usd, calls=calls, cached_calls=cached,
                output=[None if o is None else as_text(o) for o in outputs],
                done=[t is not None for t in tops], _setup_usd=setup["examples"],
                _observed={k: sum(v) / len(v) for k, v in out_tokens.items()})
    return cols


def frame(df: pd.DataFrame, texts: list[str], labels: list[str], cols: dict[str, Any],
          text: str, label: str) -> pd.DataFrame:
    """The predictions DataFrame (one row per input row, the input's index kept)."""
    import numpy as np
    import pandas as pd

    route = pd.Series(cols["route"], index=df.index, dtype=object)
    out = pd.DataFrame({
        "text": texts,
        "label": labels,
        "route": route,
        "raw_label": pd.Series(cols["raw_label"], index=df.index, dtype=object),
        "confidence": pd.to_numeric(pd.Series(cols["confidence"], index=df.index,
                                              dtype=object), errors="coerce"),
        "defaulted": pd.Series(cols["defaulted"], index=df.index, dtype=object)
        .fillna(False).astype(bool),
        "correct": (route.to_numpy() == np.asarray(labels, dtype=object)),
        "latency_ms": cols["latency_ms"],
        "cost_usd": cols["cost_usd"],
        "service_ms": cols["service_ms"],
        "saved_usd": cols["saved_usd"],
        "cached_calls": cols["cached_calls"],
        "calls": cols["calls"],
        "classifier_usd": cols["classifier_usd"],
        "route_usd": cols["route_usd"],
        "similarity": pd.to_numeric(pd.Series(cols["similarity"], index=df.index, dtype=object),
                                    errors="coerce"),
        "score": pd.to_numeric(pd.Series(cols["score"], index=df.index, dtype=object),
                               errors="coerce"),
        "reason": pd.Series(cols["reason"], index=df.index, dtype=object),
        "error": pd.Series(cols["error"], index=df.index, dtype=object),
    }, index=df.index)
    if any(o is not None for o in cols["output"]):
        out["output"] = cols["output"]
    extra = [c for c in df.columns if c not in (text, label) and c not in out.columns]
    for c in extra:
        out[c] = df[c]
    return out


def _stopped(e: BaseException, router: Any, run: Run, texts: list[str], labels: list[str],
             full: bool) -> BaseException:
    """The budget / cancel error, saying how far the eval got, with the finished rows."""
    import pandas as pd

    rows = collect(run, len(texts), router.classifier.name, full)
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
