"""``compare``: several pipelines on the same rows, side by side, with paired tests and the
decision the seed's advice asks for: the simplest pattern shown not to be worse than the best by
more than a margin (non-inferiority: the lower end of the difference's CI above −margin; a large
p-value never counts as "as good").

Experiments are saved next to the traces (``experiments.sqlite`` in ``orchnb.trace.home()``)
and reopen in a new kernel with :func:`load_experiment`; :func:`experiments` lists them.
"""

from __future__ import annotations

import html
import itertools
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import fmt_usd, plural
from . import _metrics as m
from ._decide import DEFAULT_MARGIN, Verdict, cluster_interval, decide
from ._experiments import read_experiment, save_experiment
from ._export import Exportable
from ._html import NO_MATH
from ._labels import Labels
from ._paired import PairedResult, paired
from ._pipeline_eval import as_pipeline, evaluate_pipeline
from ._repeats import RepeatedScores, evaluate_pipeline_repeats
from ._reports import ReportSet
from ._rows import load_rows, run_each
from ._scores_report import ScoreReport, mean_ci

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from ._judge import Judge
    from ._options import EvalOptions
    from ._scorers import Scorer

SIMPLICITY = {"pipeline": 0, "chain": 0, "router": 1, "mapreduce": 2, "plan_execute": 3,
              "agent": 4, "team": 5}
"""The seed's order: start with a chain; a router, map-reduce, an agent, a team when needed."""


def compare_pipelines(candidates: Any, data: Any, opts: EvalOptions, scorers: list[Scorer], *,
                      alpha: float = 0.05, margin: float = DEFAULT_MARGIN,
                      name: str | None = None, save: bool = True,
                      repeats: int | None = None) -> Experiment:
    """Every candidate on the same rows with the same scorers, ``max_usd`` shared (see
    :func:`orchnb.compare`); the experiment is saved unless ``save=False``. With ``repeats``
    each candidate runs that many times and is reported by its rows' means over the repeats
    (``exp.repeated[name]`` holds the repeats themselves)."""
    named = _modes(candidates, opts.batch)
    if opts.batch == "both":  # neither mode may answer the other from the response cache
        opts = opts.but(cache=False)
    df = load_rows(data, opts, opts.expected)
    repeated: dict[str, RepeatedScores] = {}

    def one(label: str, candidate: tuple[Any, bool], o: EvalOptions) -> ScoreReport:
        pipe, o = candidate[0], o.but(batch=candidate[1])
        if repeats is None:
            return evaluate_pipeline(pipe, data, o, scorers, name=label, df=df)
        repeated[label] = evaluate_pipeline_repeats(pipe, data, repeats, o, scorers,
                                                    name=label, df=df)
        return repeated[label].merged()

    reports = run_each(named, opts, one, lambda r: r.cost_usd + r.judge_usd)
    exp = Experiment(reports, alpha=alpha, margin=margin, name=name)
    exp.repeated = repeated
    if save:
        exp.save()
    return exp


def load_experiment(id_or_name: str) -> Experiment:
    """A saved experiment, by id or by name (the newest of that name).

    >>> exp = orchnb.evals.load_experiment("exp-20260101-120000-abc123")   # doctest: +SKIP
    >>> exp.decision                                                      # doctest: +SKIP
    """
    exp_id, name, created, payload = read_experiment(id_or_name)
    reports = {k: ScoreReport.from_record(r) for k, r in payload["reports"].items()}
    exp = Experiment(reports, alpha=payload["alpha"], name=name, id=exp_id, created=created,
                     margin=payload.get("margin", DEFAULT_MARGIN))
    if isinstance(payload.get("labels"), Mapping):
        exp.labels = Labels.from_ref(payload["labels"])
    return exp


def _modes(candidates: Any, batch: bool | str) -> dict[str, tuple[Any, bool]]:
    """Each candidate with its batch mode; ``"both"``: each one live and in batch mode."""
    if batch != "both":
        return {k: (p, bool(batch)) for k, p in _named(candidates).items()}
    if not isinstance(candidates, (Mapping, list, tuple)):
        candidates = [candidates]
    named = _named(candidates, least=1)
    return {f"{k} · {mode}": (p, mode == "batch") for k, p in named.items()
            for mode in ("live", "batch")}


def _named(candidates: Any, least: int = 2) -> dict[str, Any]:
    if isinstance(candidates, Mapping):
        named = {str(k): as_pipeline(v, str(k)) for k, v in candidates.items()}
    elif isinstance(candidates, (list, tuple)):
        named = {}
        for pipe in candidates:
            p = as_pipeline(pipe)
            base, i = str(p.name), 2
            label = base
            while label in named:
                label, i = f"{base}#{i}", i + 1
            named[label] = p
    else:
        raise SpecError("compare: give the candidates as a list of pipelines or "
                        "{name: pipeline}")
    if len(named) < least:
        raise SpecError("compare: give at least two candidates; use orchnb.evaluate for one")
    return named


class Experiment(ReportSet["ScoreReport"], Exportable):
    """Candidates evaluated on the same rows (what :func:`~orchnb.compare` returns).

    ``table`` one row per candidate; ``tests`` one row per pair and scorer (p-values);
    ``verdicts`` one row per pair and scorer deciding by confidence interval and ``margin``
    (better / worse / equivalent / inconclusive, with the rows that would tell); ``decision``
    a sentence with its evidence; ``reports[name]`` each candidate's
    :class:`~orchnb.evals.ScoreReport`; ``plot_pareto()`` cost against quality.

    >>> exp.table[["pattern", "exact", "cost_per_1k", "p50_ms"]]   # doctest: +SKIP
    """

    def __init__(self, reports: Mapping[str, ScoreReport], *, alpha: float = 0.05,
                 name: str | None = None, id: str | None = None, created: float | None = None,
                 margin: float = DEFAULT_MARGIN):
        if not reports:
            raise SpecError("Experiment: no reports")
        self.reports = dict(reports)
        self.alpha = alpha
        self.margin = _check_margin(margin)
        """Points by which two candidates may differ and still count as equivalent."""
        first = next(iter(self.reports.values()))
        self.scorer_names = first.scorer_names
        self.primary = self.scorer_names[0]
        self.name = name or " vs ".join(self.reports)
        self.id = id
        self.created = created or time.time()
        self.labels: Any = None
        """People's labels shown beside the candidates (:meth:`attach_labels`)."""
        self.repeats = int(first.meta.get("repeats", 1))
        """Runs of each candidate per row (``compare(..., repeats=N)``): scores are the rows'
        means over them and verdicts resample rows with their repeats."""
        self.repeated: dict[str, RepeatedScores] = {}
        """Each candidate's repeats (per-row spread, flipping rows), when run in this kernel."""
        self._tests: dict[tuple[str, str, str], PairedResult] = {}
        self._verdicts: dict[tuple[str, str, str], Verdict] = {}

    # -- tables -----------------------------------------------------------------------------------
    @property
    def table(self) -> pd.DataFrame:
        """One row per candidate: pattern, each scorer's mean and interval, errors, p50/p95
        latency, cost per 1,000 inputs (list price), paid, and ``pareto`` (on the
        cost–quality front of the first scorer)."""
        import pandas as pd

        t = pd.DataFrame([r.row() for r in self.reports.values()],
                         index=pd.Index(list(self.reports), name="candidate"))
        t["pareto"] = m.pareto_front(t["cost_per_1k"].astype(float).tolist(),
                                     t[self.primary].astype(float).tolist())
        if self.labels is not None:
            people = self.labels.pass_rates(self)
            t = t.join(people[[c for c in people.columns if c != "people_ci_low"
                               and c != "people_ci_high"]])
        return t

    def attach_labels(self, labels: Any) -> Experiment:
        """Show people's labels (a :class:`~orchnb.evals.Labels` or the ``orchnb.label``
        widget) beside the candidates: ``table`` gains ``labelled``, ``people_pass`` and each
        judge's κ / accuracy against people (``labels.pass_rates(exp)`` has the intervals).
        :meth:`save` keeps a reference to them, so :func:`load_experiment` shows them again."""
        self.labels = getattr(labels, "labels", labels)
        return self

    def test(self, a: str, b: str, scorer: str | None = None) -> PairedResult:
        """The paired test of ``a`` against ``b`` on ``scorer`` (the first by default)."""
        scorer = scorer or self.primary
        key = (a, b, scorer)
        if key not in self._tests:
            ra, rb = self.reports[a], self.reports[b]
            if len(ra.scores) != len(rb.scores) or not ra.scores.index.equals(rb.scores.index):
                raise SpecError(f"compare: '{a}' and '{b}' were not scored on the same rows")
            self._tests[key] = paired(ra.scores[scorer].to_numpy(dtype=float),
                                      rb.scores[scorer].to_numpy(dtype=float),
                                      n_boot=max(ra.n_boot, 2000), level=ra.level, seed=ra.seed)
        return self._tests[key]

    @property
    def tests(self) -> pd.DataFrame:
        """Each pair (a, b) and scorer: mean difference a − b with its interval, the paired
        bootstrap p and McNemar's exact p (0/1 scores), the discordant rows, and ``p`` (McNemar's
        when it applies)."""
        import pandas as pd

        rows = []
        for a, b in itertools.combinations(self.reports, 2):
            for s in self.scorer_names:
                r = self.test(a, b, s)
                rows.append({"a": a, "b": b, "scorer": s, "diff": r.diff, "ci_low": r.ci[0],
                             "ci_high": r.ci[1], "p_bootstrap": r.p_bootstrap,
                             "p_mcnemar": r.p_mcnemar, "a_only": r.a_only, "b_only": r.b_only,
                             "n": r.n, "p": r.p, "significant": r.p < self.alpha})
        return pd.DataFrame(rows)

    # -- the decision -----------------------------------------------------------------------------
    @property
    def best(self) -> str:
        """The candidate with the highest mean first score (the cheaper one on a tie)."""
        t = self.table
        t = t.assign(_c=t["cost_per_1k"].fillna(math.inf))
        return str(t.sort_values([self.primary, "_c"], ascending=[False, True]).index[0])

    def simplicity_order(self) -> list[str]:
        """Candidates simplest first: by pattern (chain, router, map-reduce, plan-execute,
        agent, team), then cheaper first."""
        t = self.table

        def key(n: str) -> tuple[int, float]:
            c = t.loc[n, "cost_per_1k"]
            return (SIMPLICITY.get(str(t.loc[n, "pattern"]), 3), math.inf if c != c else c)

        return sorted(self.reports, key=key)

    def verdict(self, a: str, b: str, scorer: str | None = None) -> Verdict:
        """``a`` against ``b`` on ``scorer`` (the first by default), decided by the
        ``1 - alpha`` interval of the paired difference and ``margin``."""
        scorer = scorer or self.primary
        key = (a, b, scorer)
        if key not in self._verdicts:
            ra, rb = self.reports[a], self.reports[b]
            self.test(a, b, scorer)  # the same rows, or a clear error
            iv = cluster_interval(ra.scores[scorer].to_numpy(dtype=float),
                                  rb.scores[scorer].to_numpy(dtype=float), self.repeats,
                                  level=1 - self.alpha, n_boot=max(ra.n_boot, 2000),
                                  seed=ra.seed)
            self._verdicts[key] = decide(a, b, scorer, iv, margin=self.margin)
        return self._verdicts[key]

    @property
    def verdicts(self) -> pd.DataFrame:
        """Each pair (a, b) and scorer: ``difference`` a − b, ``ci_low``/``ci_high`` (the
        ``1 - alpha`` interval) and ``margin``, all in points; ``verdict`` (better, worse,
        equivalent: the whole CI inside ±margin, or inconclusive); ``rows_needed`` (rows
        that would decide an inconclusive pair at 80% power, else missing); ``rows``;
        ``detectable`` (the smallest difference these rows detect at 80% power, points);
        ``test`` (the interval's method).

        >>> exp.verdicts.query("verdict == 'worse'")   # doctest: +SKIP
        """
        import pandas as pd

        rows = [self.verdict(a, b, s).row() for a, b in itertools.combinations(self.reports, 2)
                for s in self.scorer_names]
        df = pd.DataFrame(rows)
        df["rows_needed"] = df["rows_needed"].astype("Int64")
        return df

    @property
    def choice(self) -> str:
        """The simplest candidate shown not worse than the best by more than ``margin`` points
        on the first scorer (the lower end of its difference's CI above −margin); the best
        when no simpler one is."""
        best = self.best
        for c in self.simplicity_order():
            if c == best or self.verdict(c, best).interval.low > -self.margin / 100:
                return c
        return best

    @property
    def decision(self) -> str:
        """The choice as a sentence with its evidence: the test, the interval, the margin."""
        best, choice, s = self.best, self.choice, self.primary
        rb = self.reports[best]
        if choice != best:
            v = self.verdict(choice, best)
            cost = _cost_ratio(self.reports[choice].cost_per_1k, rb.cost_per_1k)
            return (f"{choice} is not worse than {best} by more than {self.margin:g} points on "
                    f"{s} (non-inferiority: the CI's lower end is above −{self.margin:g}): "
                    f"{v.ci_text()}; {cost}")
        order = self.simplicity_order()
        simpler = order[:order.index(best)]
        head = f"{best} scores best on {s} ({rb.mean(s):.3g})"
        if not simpler:
            others = [c for c in self.reports if c != best]
            if not others:
                return head
            return (f"{head} and is the simplest candidate; "
                    f"{_against(self.verdict(others[0], best))}{self._dearer(best)}")
        bits = "; ".join(_against(self.verdict(c, best)) for c in simpler)
        return (f"{head}; no simpler candidate is shown within {self.margin:g} points of it: "
                f"{bits}{self._dearer(best)}")

    def _dearer(self, best: str) -> str:
        """'; it costs 66× as much as X ...' when the winner is at least twice the cheapest
        other candidate's price (a person weighs that against the gain)."""
        costs = {c: float(r.cost_per_1k) for c, r in self.reports.items()}
        others = {c: v for c, v in costs.items() if c != best and v > 0 and not math.isnan(v)}
        if not others or math.isnan(costs[best]):
            return ""
        cheap = min(others, key=others.__getitem__)
        ratio = costs[best] / others[cheap]
        if ratio < 2:
            return ""
        times = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.1f}"
        return (f"; it costs {times}× as much as {cheap} ({fmt_usd(costs[best])} against "
                f"{fmt_usd(others[cheap])} per 1k inputs)")

    # -- pairwise judge ---------------------------------------------------------------------------
    def prefer(self, judge: Judge, a: str | None = None, b: str | None = None, *,
               cache: bool | None = None, progress: bool = False) -> pd.DataFrame:
        """Pairwise A/B preferences of an LLM judge, each row asked in both orders (a win only
        when both orders agree). One row per pair: a_wins, b_wins, ties, a_win_rate (ties
        count half) with a bootstrap interval, and ``consistent`` (share of rows where the
        order did not change the judge's answer). ``a``/``b`` pick one pair."""
        import numpy as np
        import pandas as pd

        pairs = [(a, b)] if a and b else list(itertools.combinations(self.reports, 2))
        rows = []
        for x, y in pairs:
            rx, ry = self.reports[x], self.reports[y]
            pref, detail, _ = judge.prefer(rx.scores["input"].tolist(),
                                           rx.scores["output"].tolist(),
                                           ry.scores["output"].tolist(),
                                           cache=cache, progress=progress)
            v = np.asarray(pref, dtype=float)
            mean, lo, hi = mean_ci(v, n_boot=rx.n_boot, level=rx.level, seed=rx.seed)
            consistent = [d.get("consistent") for d in detail if "consistent" in d]
            rows.append({"a": x, "b": y, "a_wins": int(np.sum(v == 1)),
                         "b_wins": int(np.sum(v == 0)), "ties": int(np.sum(v == 0.5)),
                         "failed": int(np.isnan(v).sum()), "a_win_rate": mean, "ci_low": lo,
                         "ci_high": hi, "consistent": (sum(consistent) / len(consistent))
                         if consistent else math.nan})
        return pd.DataFrame(rows)

    # -- charts -----------------------------------------------------------------------------------
    def plot_pareto(self, scorer: str | None = None) -> go.Figure:
        """Cost per 1,000 inputs (x) against a scorer's mean (y, with its interval); the
        candidates no other beats on both are starred and joined."""
        import plotly.graph_objects as go

        s = scorer or self.primary
        t = self.table.reset_index()
        front = m.pareto_front(t["cost_per_1k"].astype(float).tolist(),
                               t[s].astype(float).tolist())
        t["front"] = front
        fig = go.Figure()
        for on in (True, False):
            part = t[t["front"] == on]
            if part.empty:
                continue
            fig.add_trace(go.Scatter(
                x=part["cost_per_1k"], y=part[s], mode="markers+text",
                # the marker already says "on the front"; the pattern only when not the name
                text=[c if c == p else f"{c} ({p})" for c, p in
                      zip(part["candidate"], part["pattern"])], textposition="top center",
                cliponaxis=False,
                name="Pareto front" if on else "dominated",
                marker={"size": 14 if on else 10, "symbol": "star" if on else "circle"},
                error_y={"type": "data", "symmetric": False,
                         "array": part[f"{s}_ci_high"] - part[s],
                         "arrayminus": part[s] - part[f"{s}_ci_low"]}))
        line = t[t["front"]].sort_values("cost_per_1k")
        if len(line) > 1:
            fig.add_trace(go.Scatter(x=line["cost_per_1k"], y=line[s], mode="lines",
                                     line={"dash": "dash", "color": "#59A14F"},
                                     showlegend=False, hoverinfo="skip"))
        # the decision is a paragraph (in the report above the chart): the title names the choice
        fig.update_layout(title=f"Cost against {s} · choice: {self.choice}",
                          xaxis_title="cost per 1,000 inputs (USD, list price)",
                          yaxis_title=s, template="plotly_white", height=460)
        return fig

    def charts(self) -> list[go.Figure]:
        return [self.plot_pareto()]

    def show(self) -> None:
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        for fig in self.charts():
            display(fig)

    # -- persistence ------------------------------------------------------------------------------
    def save(self) -> str:
        """Store the experiment next to the traces; returns its id."""
        self.id = save_experiment(self)
        return self.id

    # -- display ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"<Experiment {self.name!r}: {plural(len(self), 'candidate')} × "
                f"{plural(next(iter(self.reports.values())).n, 'row')}; {self.decision}>")

    def _repr_html_(self) -> str:
        e = html.escape
        t = self.table
        cols = ["pattern"]
        for s in self.scorer_names:
            t[s] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                    zip(t[s], t[f"{s}_ci_low"], t[f"{s}_ci_high"])]
            cols.append(s)
        t["cost_per_1k"] = [fmt_usd(x) for x in t["cost_per_1k"]]
        t["p50 / p95 ms"] = [f"{a:,.1f} / {b:,.1f}" + _cached_note(self.reports[c].scores)
                             for c, a, b in zip(t.index, t["p50_ms"], t["p95_ms"])]
        cols += ["errors", "p50 / p95 ms", "cost_per_1k", "pareto"]
        cols += [c for c in ("labelled", "people_pass") if c in t.columns]
        v = self.verdicts
        v = v[v["scorer"] == self.primary].drop(columns=["scorer"])
        # to_html's na_rep does not reach nullable integers: a decided pair shows "", not <NA>
        v["rows_needed"] = ["" if n is None or n != n else f"{int(n):,}"
                            for n in v["rows_needed"].astype(object).where(
                                v["rows_needed"].notna(), None)]
        return (f"<div class='{NO_MATH}'><div style='font-size:115%;margin-bottom:6px'>"
                f"<b>Experiment · {e(self.name)}</b>" + (f" ({e(self.id)})" if self.id else "")
                + f"</div><p><b>Decision:</b> {e(self.decision)}</p>"
                + t[cols].to_html(escape=True)
                + f"<p>Paired differences on {e(self.primary)} (a − b, points, "
                f"{1 - self.alpha:.0%} CI, margin ±{self.margin:g}):</p>"
                + v.to_html(escape=True, index=False, na_rep="", float_format=lambda x: f"{x:.3g}")
                + "</div>")


def _cached_note(scores: pd.DataFrame) -> str:
    """' (cached)' when every call was answered from the response cache (its latency is no
    model's), ' (N% of calls cached)' when some were."""
    if "calls" not in scores or "cached_calls" not in scores:  # an older saved experiment
        return ""
    calls, cached = scores["calls"].sum(), scores["cached_calls"].sum()
    if not calls or not cached:
        return ""
    return " (cached)" if cached >= calls else f" ({cached / calls:.0%} of calls cached)"


def _check_margin(margin: Any) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not (
            0 < margin < 100):
        raise SpecError(f"compare: margin must be a number of points between 0 and 100, e.g. "
                        f"2 for two points of accuracy; got {margin!r}")
    return float(margin)


def _against(v: Verdict) -> str:
    """A simpler candidate against the best, in a clause."""
    what = {"worse": "is worse", "better": "is better", "equivalent":
            f"is equivalent within ±{v.margin * 100:g} points",
            "inconclusive": "is not shown better, worse or equivalent"}[v.verdict]
    tail = f"; {v.needed_text()}" if v.verdict == "inconclusive" else ""
    return f"{v.a} {what} ({v.ci_text()}{tail})"


def _cost_ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b):
        return "(cost unknown: a price is missing)"
    if a == 0 and b > 0:
        return f"at no cost (against {fmt_usd(b)} per 1k inputs)"
    if b == 0:
        return "and both cost nothing" if a == 0 else f"at {fmt_usd(a)} per 1k inputs"
    return f"at {a / b:.0%} of its cost"
