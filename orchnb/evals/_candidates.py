"""Several candidate routers on the same rows: one summary table and the cost–accuracy Pareto
front (``Comparison``), made by :func:`compare_candidates` under the public ``compare_routers``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import plural
from . import _charts
from . import _metrics as m
from ._checks import check_labels, check_oos_label
from ._export import Exportable
from ._html import comparison_html
from ._reports import ReportSet
from ._router_eval import estimate_router, run_eval
from ._rows import announce, check_router, load_rows, refuse_over, run_each

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ._options import EvalOptions
    from ._report import EvalReport


def compare_candidates(candidates: Any, data: Any, opts: EvalOptions) -> Comparison:
    """Every candidate router on the same rows (see :func:`orchnb.compare_routers`): all
    estimates first, ``max_usd`` capping their total, then each eval in turn."""
    named = _named(candidates)
    where = {name: f"{opts.entry}: candidate '{name}'" for name in named}
    for name, router in named.items():
        check_router(router, where[name])
    label = opts.label or "label"
    df = load_rows(data, opts, label)
    estimates = {}
    for name, router in named.items():
        check_labels(where[name], router, df, label)
        check_oos_label(where[name], router, opts.oos_label)
        estimates[name] = estimate_router(router, df, opts)
        announce(name, estimates[name], opts.progress)
    refuse_over(plural(len(named), "candidate"), sum(e.usd for e in estimates.values()),
                opts.max_usd)
    reports = run_each(named, opts, lambda name, router, o: run_eval(
        router, df, o, estimates[name], candidate=name), lambda r: r.cost_usd)
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


class Comparison(ReportSet["EvalReport"], Exportable):
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

