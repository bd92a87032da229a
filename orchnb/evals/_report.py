"""``EvalReport``: what a router eval found, as numbers, DataFrames and charts."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..trace import fmt_usd, plural
from ..viz import NO_ROUTE
from . import _charts
from . import _metrics as m
from ._costs import describe_classifier
from ._export import Exportable
from ._html import report_html
from ._oos import OutOfScope
from ._route_money import RouteMoney
from ._sweep import threshold_sweep
from ._totals import RowTotals

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ..engine import Run
    from ._costs import CostEstimate, RouterCosts


MIN_ROWS_PER_CLASS = 30
"""Below this many rows per class the macro-F1 interval is withheld (see ``macro_f1_ci``)."""


class EvalReport(RowTotals, RouteMoney, OutOfScope, Exportable):
    """The result of :func:`~orchnb.evaluate` on one router.

    Numbers: ``accuracy`` (+ ``accuracy_ci``, a seeded percentile bootstrap), ``macro_f1``,
    ``weighted_f1``, ``defaulted`` (rows whose classification fell back to the default route:
    unknown label or abstention), ``errors``, ``latency_p50_ms`` / ``latency_p95_ms``,
    ``cost_per_1k`` (classifier plus routes, at list price: cached calls counted at what they
    would cost), ``saving_usd`` / ``saving_pct`` (against sending every query to the dearest
    route, ``expensive_route``) and ``baseline_saving_*`` (against ``baseline``). What this eval
    actually paid is ``cost_usd``; ``saved_usd`` is what the response cache saved.

    Tables: ``predictions`` (one row per input), ``misroutes``, ``per_route``, ``averages``,
    ``confusion`` / ``confusion_normalized``, ``summary``. Charts (Plotly figures):
    ``plot_confusion()``, ``plot_routes()``, ``plot_flow()``, ``plot_threshold()``,
    ``plot_quality_share()``; ``show()`` displays them all.

    >>> report = orchnb.evaluate(triage, orchnb.evals.load_tickets())   # doctest: +SKIP
    >>> report.per_route                                                  # doctest: +SKIP
    """

    def __init__(self, name: str, router: Any, predictions: pd.DataFrame, costs: RouterCosts,
                 *, run: Run | None = None, estimate: CostEstimate | None = None,
                 full_pipeline: bool = False, baseline: str | None = None, seed: int = 0,
                 n_boot: int = 1000, level: float = 0.95, wall_s: float = math.nan,
                 setup_usd: float = 0.0, include_no_route: bool = False,
                 oos_label: str | None = None):
        import numpy as np

        self.name = name
        self.router = router
        self.predictions = predictions
        """One row per input: text, label, route, raw_label, confidence, defaulted, correct,
        latency_ms, cost_usd (paid), saved_usd, cached_calls, calls, classifier_usd and
        route_usd (list price), similarity (embedding routers), reason, error, the data's
        other columns, and output (full-pipeline evals)."""
        self.run = run
        """The eval's engine run (``report.run.trace.df`` is its trace)."""
        self.estimate = estimate
        """The cost estimate made before the eval started."""
        self.full_pipeline = full_pipeline
        self.baseline = baseline
        self.wall_s = wall_s
        self.setup_usd = setup_usd
        """One-off cost of embedding the classifier's examples (not in ``cost_per_1k``)."""
        self.include_no_route = include_no_route
        """Whether macro averages count "(no route)" (failed rows) as a class; by default
        they do not (sklearn's ``labels=`` without it), as ``macro_note`` says."""
        self.n_boot, self.level, self.seed = n_boot, level, seed
        self._oos_label = oos_label
        self._costs = costs
        y_true = predictions["label"].astype(str).tolist()
        y_pred = predictions["route"].where(predictions["route"].notna(), NO_ROUTE)
        y_pred = y_pred.astype(str).tolist()
        self._y_pred = y_pred
        self.labels = m.label_order(y_true, y_pred, list(router.routes))
        """Labels in the tables: the routes (in the router's order), then other true labels."""
        k = len(self.labels)
        t, p = m.encode(y_true, self.labels), m.encode(y_pred, self.labels)
        self._cm = m.confusion(t, p, k)
        self._scores = m.scores(self._cm)
        skip = (self.labels.index(NO_ROUTE) if NO_ROUTE in self.labels and not include_no_route
                else None)
        self._skip = skip
        self.bootstrap = m.bootstrap(t, p, k, n_boot=n_boot, level=level, seed=seed, skip=skip)
        self._route_rows = {r: costs.route_rows(r) for r in router.routes}
        self._lat = predictions["latency_ms"].to_numpy(dtype=float)
        self._pred_arr = np.asarray(y_pred, dtype=object)

    # -- accuracy ---------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Rows evaluated."""
        return len(self.predictions)

    @property
    def accuracy(self) -> float:
        """Share of rows routed to their label's route (sklearn's ``accuracy_score``)."""
        return float(self.predictions["correct"].mean())

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """Bootstrap percentile interval of accuracy (``level``, ``seed`` as given)."""
        return self.bootstrap.accuracy

    @property
    def macro_f1_ci(self) -> tuple[float, float]:
        """Bootstrap interval of macro F1; withheld (NaN, NaN) with fewer than
        ``MIN_ROWS_PER_CLASS`` rows per class, where it was measured to under-cover (57% at
        300 rows over 77 classes, 84.5% at 1,000): ``macro_f1_ci_note`` says so."""
        if self.macro_f1_ci_note:
            return (math.nan, math.nan)
        return self.bootstrap.macro_f1

    @property
    def macro_f1_ci_note(self) -> str:
        """Why the macro-F1 interval is withheld ("" when it is given)."""
        support = self.per_route["support"]
        classes = int((support > 0).sum())
        per = self.n / classes if classes else 0.0
        if classes > 1 and per < MIN_ROWS_PER_CLASS:
            return (f"macro-F1 interval withheld: {per:.1f} rows per class (< "
                    f"{MIN_ROWS_PER_CLASS}); a bootstrap interval of macro F1 under-covers "
                    f"with few rows per class")
        return ""

    @property
    def macro_f1(self) -> float:
        """Unweighted mean F1 over the labels ("(no route)" left out unless
        ``include_no_route``; see ``macro_note``)."""
        return self._scores.macro(self._skip)[2]

    @property
    def macro_note(self) -> str:
        """What the macro averages cover."""
        if NO_ROUTE not in self.labels:
            return "macro averages over all labels"
        if self._skip is None:
            return f"macro averages count {NO_ROUTE!r} (failed rows) as a class"
        return f"macro averages leave out {NO_ROUTE!r} (failed rows still count as wrong)"

    @property
    def weighted_f1(self) -> float:
        return self._scores.weighted()[2]

    @property
    def defaulted(self) -> int:
        """Rows whose classification defaulted (unknown label, unparseable answer, abstention)."""
        return int(self.predictions["defaulted"].sum())

    @property
    def defaulted_rate(self) -> float:
        return self.defaulted / self.n if self.n else math.nan

    @property
    def errors(self) -> int:
        """Rows that failed (no classification, or their route raised)."""
        return int(self.predictions["error"].notna().sum())

    @property
    def accuracy_answered(self) -> float:
        """Accuracy on the rows that neither defaulted nor failed: what the classifier got
        right when it gave an answer (a defaulted row whose label happens to be the default
        route counts as right in ``accuracy``, not here)."""
        p = self.predictions
        keep = ~p["defaulted"] & p["route"].notna()
        return float(p.loc[keep, "correct"].mean()) if keep.any() else math.nan

    @property
    def answered(self) -> int:
        """Rows that neither defaulted nor failed."""
        p = self.predictions
        return int((~p["defaulted"] & p["route"].notna()).sum())

    @property
    def defaulted_correct(self) -> int:
        """Defaulted rows counted right only because their label is the default route."""
        p = self.predictions
        return int((p["defaulted"] & p["correct"]).sum())

    def _defaulted_text(self) -> str:
        """"95.8% on the 270 answered rows; 30 defaulted (10.0%) to technical, 12 of them
        counted right" — empty when nothing defaulted."""
        if not self.defaulted:
            return ""
        to = f" to {self.router.default}" if self.router.default is not None else ""
        return (f"{_fmt_acc(self.accuracy_answered)} on the {self.answered:,} answered rows; "
                f"{self.defaulted:,} defaulted ({self.defaulted_rate:.1%}){to}, "
                f"{self.defaulted_correct:,} of them counted right by the default")

    # -- latency ----------------------------------------------------------------------------------
    @property
    def latency_p50_ms(self) -> float:
        """Median latency of a row (its classify span, or its whole route in full mode)."""
        return m.percentiles(self._lat, [50])[0]

    @property
    def latency_p95_ms(self) -> float:
        return m.percentiles(self._lat, [95])[0]

    @property
    def service_p50_ms(self) -> float:
        """Median time a row spent in its own model calls (cache hits excluded). Latency minus
        this is waiting: for a worker, a thread, the event loop (queueing at concurrency >1).
        Batched embeddings (``setup``) are not in any row."""
        return m.percentiles(self.predictions["service_ms"].to_numpy(dtype=float), [50])[0]

    @property
    def _rows(self) -> pd.DataFrame:
        return self.predictions

    @property
    def simulated(self) -> bool:
        return bool(self.run is not None and self.run.simulated)

    @property
    def examples_in_data(self) -> int:
        """Evaluated rows whose text is one of the classifier's own examples (an embedding
        router evaluated on its training rows looks better than it is)."""
        examples = getattr(self.router.classifier, "examples", None)
        if not examples:
            return 0
        known = {t.strip().casefold() for v in examples.values() for t in v}
        return int(self.predictions["text"].astype(str).str.strip().str.casefold()
                   .isin(known).sum())

    # -- tables -----------------------------------------------------------------------------------
    @property
    def per_route(self) -> pd.DataFrame:
        """Precision, recall, F1, support (true rows) and predicted (routed rows) per label."""
        import pandas as pd

        s = self._scores
        return pd.DataFrame({"precision": s.precision, "recall": s.recall, "f1": s.f1,
                             "support": s.support, "predicted": s.predicted},
                            index=pd.Index(self.labels, name="route"))

    @property
    def averages(self) -> pd.DataFrame:
        """Macro (unweighted) and weighted (by support) precision, recall and F1."""
        import pandas as pd

        s = self._scores
        total = int(s.support.sum())
        return pd.DataFrame([[*s.macro(self._skip), total], [*s.weighted(), total]],
                            columns=["precision", "recall", "f1", "support"],
                            index=pd.Index(["macro avg", "weighted avg"], name="average"))

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts: true label (rows) × route taken (columns)."""
        import pandas as pd

        return pd.DataFrame(self._cm, index=pd.Index(self.labels, name="label"),
                            columns=pd.Index(self.labels, name="route"))

    @property
    def confusion_normalized(self) -> pd.DataFrame:
        """The confusion matrix with each true label's row summing to 1."""
        import pandas as pd

        return pd.DataFrame(m.normalized(self._cm), index=pd.Index(self.labels, name="label"),
                            columns=pd.Index(self.labels, name="route"))

    @property
    def misroutes(self) -> pd.DataFrame:
        """The rows sent to the wrong route, with what the classifier actually said."""
        cols = ["text", "label", "route", "raw_label", "confidence", "defaulted", "reason",
                "error"]
        return self.predictions.loc[~self.predictions["correct"], cols]

    @property
    def summary(self) -> pd.DataFrame:
        """The headline numbers as one row (indexed by the router's name)."""
        import pandas as pd

        lo, hi = self.accuracy_ci
        row = {
            "classifier": describe_classifier(self.router),
            "rows": self.n, "accuracy": self.accuracy, "ci_low": lo, "ci_high": hi,
            "answered_accuracy": self.accuracy_answered, "defaulted_share": self.defaulted_rate,
            "macro_f1": self.macro_f1, "weighted_f1": self.weighted_f1,
            "defaulted": self.defaulted, "errors": self.errors,
            "p50_ms": self.latency_p50_ms, "p95_ms": self.latency_p95_ms,
            "service_p50_ms": self.service_p50_ms,
            "cost_per_1k": self.cost_per_1k, "classifier_cost_per_1k": self.classifier_cost_per_1k,
            "expensive_route": self.expensive_route, "expensive_share": self.expensive_share,
            "quality": self.quality, "saving_usd": self.saving_usd, "saving_pct": self.saving_pct,
        }
        if self.baseline:
            row.update(baseline=self.baseline, baseline_saving_usd=self.baseline_saving_usd,
                       baseline_saving_pct=self.baseline_saving_pct)
        if self.oos_label is not None:
            row.update(in_scope_accuracy=self.in_scope_accuracy, oos_precision=self.oos_precision,
                       oos_recall=self.oos_recall, oos_f1=self.oos_f1,
                       abstention_auroc=self.abstention_auroc)
        row.update(setup_usd=self.setup_usd, examples_in_data=self.examples_in_data)
        row.update(paid_usd=self.cost_usd, saved_usd=self.saved_usd,
                   cached_calls=self.cached_calls, batch_calls=self.batch_calls,
                   batch_saved_usd=self.batch_saved_usd,
                   prompt_cache_hit_rate=self.prompt_cache_hit_rate,
                   prompt_cache_saved_usd=self.prompt_cache_saved_usd, simulated=self.simulated)
        return pd.DataFrame([row], index=pd.Index([self.name], name="router"))

    # -- threshold sweep ------------------------------------------------------------------------
    def threshold_sweep(self, thresholds: Any = None) -> pd.DataFrame:
        """Accuracy, abstention rate and cost against an embedding router's threshold, from the
        similarities this eval already computed (no new calls).

        A row abstains (takes the default route) when its score (unrounded: the classifier's
        similarity, or probability for a linear head) is below the
        threshold. Columns: threshold, accuracy, answered_accuracy, abstention_rate, macro_f1,
        expensive_share, quality, cost_per_1k. Default thresholds: 21 steps over the observed
        similarities.

        >>> report.threshold_sweep([0.2, 0.3, 0.4])   # doctest: +SKIP
        """
        return threshold_sweep(self, thresholds)

    # -- charts -----------------------------------------------------------------------------------
    def plot_confusion(self, normalize: bool = True) -> go.Figure:
        """Heatmap of true label × route (colour: share of the label's rows, or counts)."""
        return _charts.confusion(self, normalize=normalize)

    def plot_routes(self) -> go.Figure:
        """Precision, recall and F1 per route, as grouped bars."""
        return _charts.per_route(self)

    def plot_flow(self) -> go.Figure:
        """Sankey from true label to route taken; misroutes in red."""
        from ..viz import route_sankey

        return route_sankey(self.predictions.assign(
            route=self.predictions["route"].where(self.predictions["route"].notna(), NO_ROUTE)))

    def plot_threshold(self, thresholds: Any = None) -> go.Figure:
        """Accuracy and abstention rate against the embedding threshold."""
        return _charts.threshold(self.threshold_sweep(thresholds), self.name,
                                 getattr(self.router.classifier, "threshold", None))

    def plot_risk_coverage(self) -> go.Figure:
        """Risk against coverage as the abstention threshold moves (:meth:`risk_coverage`),
        with the router's threshold marked.

        >>> report.plot_risk_coverage()   # doctest: +SKIP
        """
        return _charts.risk_coverage(self.risk_coverage(), self.name,
                                     getattr(self.router.classifier, "threshold", None))

    def plot_quality_share(self) -> go.Figure:
        """RouteLLM-style: quality against the share of traffic sent to the dearest route
        (with the threshold sweep as a curve for embedding routers)."""
        curves = ({self.name: self.threshold_sweep()}
                  if self.predictions["similarity"].notna().any() else {})
        return _charts.quality_share(self.summary, curves)

    def charts(self) -> list[go.Figure]:
        """The report's charts: confusion heatmap, per-route bars, and for embedding routers
        the threshold sweep (and risk–coverage when out-of-scope rows are labelled)."""
        figs = [self.plot_confusion(), self.plot_routes()]
        if self.predictions["similarity"].notna().any():
            figs.append(self.plot_threshold())
            if self.oos_label is not None:
                figs.append(self.plot_risk_coverage())
        return figs

    def show(self) -> None:
        """Display the headline HTML and every chart (in a notebook)."""
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        for fig in self.charts():
            display(fig)

    @property
    def method_choice(self) -> Any:
        """How an embedding classifier with ``method="auto"`` chose its method (which won, by
        how much, on cross-validation over its examples); None for other classifiers."""
        return getattr(getattr(self.router, "classifier", None), "choice", None)

    # -- display ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lo, hi = self.accuracy_ci
        answered = f" ({self._defaulted_text()})" if self.defaulted else ""
        return (f"<EvalReport {self.name!r}: {plural(self.n, 'row')}, accuracy {self.accuracy:.1%} "
                f"[{lo:.1%}, {hi:.1%}]{answered}, macro F1 {self.macro_f1:.3f}, "
                f"{fmt_usd(self.cost_per_1k)} per 1k queries, {self._saving_text()}>")

    def _saving_text(self) -> str:
        if self.expensive_route is None:
            return f"saving undefined ({self.expensive_note}, so the dearest route is unknown)"
        return f"saving {_fmt_pct(self.saving_pct)} vs all-{self.expensive_route}"

    def _repr_html_(self) -> str:
        return report_html(self)


def _fmt_acc(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1%}"


def _fmt_pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0f}%"
