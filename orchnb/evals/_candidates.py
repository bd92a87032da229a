"""Several candidate routers on the same data: one summary table, the cost–accuracy Pareto front,
and threshold sweeps for embedding routers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import plural
from . import _charts
from . import _metrics as m
from ._checks import check_eval_knobs, check_labels
from ._costs import DEFAULT_OUTPUT_TOKENS, RouterCosts
from ._evaluate import (
    announce,
    check_router,
    evaluate,
    prepare,
    refuse_over,
    routes_of,
    run_eval,
)
from ._html import comparison_html
from ._reports import ReportSet

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ..engine import Budget
    from ._report import EvalReport


def compare_routers(
    candidates: Any,
    data: Any,
    *,
    text: str = "text",
    label: str = "label",
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
    executor: Any = None,
) -> Comparison:
    """Evaluate several routers (different classifier models, prompts, embedding thresholds)
    on the same rows; returns a :class:`Comparison` (one summary row each, Pareto front).

    ``candidates`` is ``{name: router}`` or a list of routers (named by ``router.name``). All
    estimates are made first; ``max_usd`` caps their total. Other options as
    :func:`evaluate`.

    >>> cmp = orchnb.compare_routers({"mini": r1, "4o": r2}, tickets)   # doctest: +SKIP
    >>> cmp.summary; cmp.plot_cost_accuracy()                           # doctest: +SKIP
    """
    check_eval_knobs("compare_routers", text=text, label=label, concurrency=concurrency,
                     sample=sample, seed=seed, n_boot=n_boot, level=level,
                     output_tokens=output_tokens, max_usd=max_usd, budget=budget,
                     baseline=baseline, cache=cache, progress=progress,
                     full_pipeline=full_pipeline)
    named = _named(candidates)
    for name, router in named.items():
        check_router(router, f"compare_routers: candidate '{name}'")
    if executor is not None:  # executor="ray": checked before any estimate or call
        from ._remote import as_executor

        executor = as_executor(executor, "compare_routers")
    df = prepare(data, text=text, label=label, sample=sample, seed=seed)
    texts = df[text].astype(str).tolist()
    estimates = {}
    for name, router in named.items():
        check_labels(f"compare_routers: candidate '{name}'", router, df, label)
        costs = RouterCosts(router, texts, output_tokens)
        estimates[name] = costs.estimate(routes_of(router, df[label]) if full_pipeline else None)
        announce(name, estimates[name], progress)
    total = sum(e.usd for e in estimates.values())
    refuse_over(plural(len(named), "candidate"), total, max_usd)
    reports: dict[str, EvalReport] = {}
    spent = 0.0
    for name, router in named.items():
        left = None if max_usd is None else max(max_usd - spent, 0.0)
        reports[name] = run_eval(
            router, df, text=text, label=label, full_pipeline=full_pipeline,
            concurrency=concurrency, progress=progress, cache=cache, budget=budget, max_usd=left,
            baseline=baseline, seed=seed, n_boot=n_boot, level=level,
            output_tokens=output_tokens, estimate=estimates[name], candidate=name,
            executor=executor)
        paid = reports[name].cost_usd
        spent += 0.0 if math.isnan(paid) else paid
    return Comparison(reports)


def _named(candidates: Any) -> dict[str, Any]:
    if isinstance(candidates, Mapping):
        named = {str(k): v for k, v in candidates.items()}
    elif isinstance(candidates, (list, tuple)):
        named = {}
        for router in candidates:
            base = str(getattr(router, "name", f"router{len(named) + 1}"))
            name, i = base, 2
            while name in named:
                name, i = f"{base}#{i}", i + 1
            named[name] = router
    else:
        raise SpecError("compare_routers: give the candidates as {name: router} or a list of "
                        "routers")
    if not named:
        raise SpecError("compare_routers: no candidates given")
    return named


def sweep_threshold(router: Any, data: Any, thresholds: Any = None, *, text: str = "text",
                    label: str = "label", progress: bool = False, **options: Any
                    ) -> pd.DataFrame:
    """Accuracy and abstention rate of an embedding router against its threshold.

    Similarities are computed once (one eval); each threshold is then a cheap recount.
    ``options`` are :func:`evaluate`'s (``cache``, ``concurrency``, ``sample``...).

    >>> sweep_threshold(semantic, tickets, [0.1, 0.2, 0.3])   # doctest: +SKIP
    """
    report = evaluate(router, data, text=text, label=label, progress=progress, **options)
    return report.threshold_sweep(thresholds)  # type: ignore[union-attr]


class Comparison(ReportSet["EvalReport"]):
    """Candidate routers evaluated on the same rows.

    ``summary`` has one row per candidate (accuracy and its interval, F1, defaults, latency,
    cost per 1k queries, savings, ``pareto``); ``reports[name]`` (or ``cmp[name]``) is each
    candidate's :class:`EvalReport`.

    >>> cmp.summary.sort_values("cost_per_1k")   # doctest: +SKIP
    """

    def __init__(self, reports: Mapping[str, EvalReport]):
        self.reports = dict(reports)

    @property
    def summary(self) -> pd.DataFrame:
        """One row per candidate; ``pareto`` marks the cost–accuracy front."""
        import pandas as pd

        s = pd.concat([r.summary for r in self.reports.values()])
        s["pareto"] = m.pareto_front(s["cost_per_1k"].astype(float).tolist(),
                                     s["accuracy"].astype(float).tolist())
        return s

    @property
    def pareto(self) -> list[str]:
        """Candidates on the front: none is both cheaper (or as cheap) and more accurate."""
        s = self.summary
        return [str(n) for n in s.index[s["pareto"]]]

    @property
    def best(self) -> str:
        """The most accurate candidate (the cheaper one on a tie)."""
        s = self.summary.sort_values(["accuracy", "cost_per_1k"], ascending=[False, True])
        return str(s.index[0])

    def plot_cost_accuracy(self) -> go.Figure:
        """Cost per 1k queries against accuracy (with its interval), Pareto front marked."""
        return _charts.cost_accuracy(self.summary)

    def plot_quality_share(self) -> go.Figure:
        """RouteLLM-style: quality against the share of traffic sent to the dearest route;
        embedding candidates add their threshold sweep as a curve."""
        curves = {}
        for name, r in self.reports.items():
            if r.predictions["similarity"].notna().any():
                curves[name] = r.threshold_sweep()
        return _charts.quality_share(self.summary, curves)

    def charts(self) -> list[go.Figure]:
        return [self.plot_cost_accuracy(), self.plot_quality_share()]

    def show(self) -> None:
        """Display the table and the charts (in a notebook)."""
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        for fig in self.charts():
            display(fig)

    def __repr__(self) -> str:
        best = self.best
        return (f"<Comparison of {plural(len(self), 'router')}: best {best!r} "
                f"({self.reports[best].accuracy:.1%}); Pareto front: {', '.join(self.pareto)}>")

    def _repr_html_(self) -> str:
        return comparison_html(self)

