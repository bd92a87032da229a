"""``ScoreReport``: what an eval of any pipeline found (scores with intervals, cost, latency)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import fmt_usd, plural
from . import _metrics as m
from ._agreement import Corrected
from ._decide import DEFAULT_MARGIN
from ._export import Exportable
from ._gate import Check, check_scores
from ._html import NO_MATH, _box, _ms, _pct
from ._scorers import Scorer
from ._totals import RowTotals, usd_total

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

    from ..engine import Run


def mean_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
            seed: int = 0) -> tuple[float, float, float]:
    """Mean of the non-NaN values and its seeded percentile-bootstrap interval.

    >>> import numpy as np
    >>> mean_ci(np.array([1.0, 0.0, 1.0, 1.0]), n_boot=200)[0]
    0.75
    """
    import numpy as np

    v = values[~np.isnan(values)]
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    if n_boot <= 0:
        return (float(v.mean()), math.nan, math.nan)
    means = m.bootstrap_means(v, n_boot, seed)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return (float(v.mean()), float(lo), float(hi))


class ScoreReport(RowTotals, Exportable):
    """The result of :func:`~orchnb.evaluate` on any pipeline.

    ``scores`` has a row per input (input, expected, output, a column per scorer, status,
    error, latency_ms, service_ms / queue_ms, cost_usd, list_usd, tokens, calls...);
    ``summary`` each scorer's mean with its bootstrap interval; ``failures`` the rows that
    errored or scored below ``pass_mark`` on a scorer. Money: ``cost_per_1k`` is the pipeline
    at list price (cached calls counted at what they would cost), ``cost_usd`` what this eval
    paid, ``judge_usd`` what its judges paid (apart). Charts: ``plot_scores()``,
    ``plot_latency()``; ``show()`` displays everything.

    >>> report = orchnb.evaluate(chain, data, expected="answer")   # doctest: +SKIP
    >>> report.summary                                             # doctest: +SKIP
    """

    pass_mark = 0.5
    """A row fails a scorer below this score (``failures``)."""

    def __init__(self, name: str, scores: pd.DataFrame, scorers: Sequence[Scorer | Mapping],
                 *, meta: Mapping[str, Any] | None = None, run: Run | None = None,
                 judge_runs: Sequence[Run] = (), n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0, pipeline: Any = None):
        self.name = name
        self.scores = scores
        self.scorers = [s if isinstance(s, Mapping) else
                        {"name": s.name, "binary": s.binary, "llm": s.llm} for s in scorers]
        self.meta = dict(meta or {})
        self.run = run
        """The eval's engine run (``report.run.trace.df``); None for a reopened experiment."""
        self.judge_runs = list(judge_runs)
        self.pipeline = pipeline
        self.n_boot, self.level, self.seed = n_boot, level, seed
        self._summary: pd.DataFrame | None = None
        self.calibrations = {s.name: s.judge.calibration for s in scorers
                             if getattr(getattr(s, "judge", None), "calibration", None)
                             is not None}
        """Each calibrated judge's agreement with people (``Judge.calibrate`` / ``align``)."""
        if "judge_usd" not in self.meta:
            self.meta["judge_usd"] = sum(_paid(r) for r in self.judge_runs)

    # -- numbers ----------------------------------------------------------------------------------
    @property
    def scorer_names(self) -> list[str]:
        return [s["name"] for s in self.scorers]

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def summary(self) -> pd.DataFrame:
        """Per scorer: mean, ci_low, ci_high (``level`` percentile bootstrap), rows scored."""
        import pandas as pd

        if self._summary is None:
            rows = []
            for s in self.scorers:
                v = self.scores[s["name"]].to_numpy(dtype=float)
                mean, lo, hi = mean_ci(v, n_boot=self.n_boot, level=self.level, seed=self.seed)
                rows.append({"mean": mean, "ci_low": lo, "ci_high": hi,
                             "scored": int((~pd.isna(v)).sum()), "binary": bool(s["binary"])})
            self._summary = pd.DataFrame(rows, index=pd.Index(self.scorer_names, name="scorer"))
        return self._summary

    def mean(self, scorer: str | None = None) -> float:
        """A scorer's mean (the first scorer by default)."""
        return float(self.summary.loc[scorer or self.scorer_names[0], "mean"])

    def ci(self, scorer: str | None = None) -> tuple[float, float]:
        row = self.summary.loc[scorer or self.scorer_names[0]]
        return (float(row["ci_low"]), float(row["ci_high"]))

    def corrected_pass_rate(self, scorer: str | None = None) -> Corrected:
        """A calibrated judge's pass rate on these rows corrected for its measured TPR / TNR
        (Rogan–Gladen), with its interval, beside the raw one.

        >>> j.calibrate(labels); report = orchnb.evaluate(pipe, data, scorers=[j])  # doctest: +SKIP
        >>> report.corrected_pass_rate("judge")   # doctest: +SKIP
        """
        if not self.calibrations:
            raise SpecError(f"{self.name}: no judge of this report is calibrated; call "
                            f"judge.calibrate(labels) before orchnb.evaluate(...)")
        name = scorer or next(iter(self.calibrations))
        if name not in self.calibrations:
            raise SpecError(f"{self.name}: judge {name!r} is not calibrated; calibrated: "
                            f"{', '.join(self.calibrations)}")
        import numpy as np

        cal = self.calibrations[name]
        v = self.scores[name].to_numpy(dtype=float)
        v = v[~np.isnan(v)]
        raw = float((v >= cal.threshold).mean()) if v.size else math.nan
        return cal.corrected_rate(raw, n=int(v.size)) if v.size else Corrected(
            raw, math.nan, math.nan, math.nan)

    @property
    def errors(self) -> int:
        """Rows whose pipeline run failed."""
        return int((self.scores["status"] != "ok").sum())

    @property
    def failures(self) -> pd.DataFrame:
        """Rows that errored, or scored below ``pass_mark`` on some scorer (with each
        scorer's ``NAME_diff`` / ``NAME_reason``: what differed, what the judge said)."""
        bad = self.scores["status"] != "ok"
        for name in self.scorer_names:
            bad = bad | (self.scores[name] < self.pass_mark)
        return self.scores[bad]

    @property
    def latency_p50_ms(self) -> float:
        """Median wall time of a row (its whole pipeline)."""
        return m.percentiles(self.scores["latency_ms"].to_numpy(dtype=float), [50])[0]

    @property
    def latency_p95_ms(self) -> float:
        return m.percentiles(self.scores["latency_ms"].to_numpy(dtype=float), [95])[0]

    @property
    def service_p50_ms(self) -> float:
        """Median time a row spent in its own calls (model, tool, memory; cache hits excluded):
        latency without the waiting that concurrency adds."""
        return m.percentiles(self.scores["service_ms"].to_numpy(dtype=float), [50])[0]

    @property
    def _rows(self) -> pd.DataFrame:
        return self.scores

    @property
    def list_usd(self) -> float:
        """The pipeline over these rows at list price (cache hits counted at their price)."""
        return usd_total(self.scores["list_usd"])

    @property
    def cost_per_1k(self) -> float:
        """List-price cost of the pipeline per 1,000 inputs (NaN when a price is unknown)."""
        return self.list_usd / self.n * 1000 if self.n else math.nan

    @property
    def batch_calls(self) -> int:
        """Model calls answered through a provider batch (batch mode)."""
        return int(self.scores["batch_calls"].sum()) if "batch_calls" in self.scores else 0

    @property
    def batch_saved_usd(self) -> float:
        """What batch mode saved against the same calls at list price (0 when not batched)."""
        col = self.scores.get("batch_saved_usd")
        return 0.0 if col is None else usd_total(col)

    @property
    def judge_usd(self) -> float:
        """What the judges' calls paid (not part of the pipeline's cost); NaN when a judge
        call had no known price."""
        return float(self.meta.get("judge_usd", 0.0))

    @property
    def tokens(self) -> int:
        return int(self.scores["tokens"].sum())

    @property
    def simulated(self) -> bool:
        return bool(self.meta.get("simulated", False))

    @property
    def pattern(self) -> str:
        return str(self.meta.get("pattern", "pipeline"))

    def row(self) -> dict[str, Any]:
        """The headline numbers as one dict (a row of ``compare``'s table)."""
        out: dict[str, Any] = {"pattern": self.pattern, "rows": self.n}
        for name, r in self.summary.iterrows():
            out[f"{name}"] = r["mean"]
            out[f"{name}_ci_low"] = r["ci_low"]
            out[f"{name}_ci_high"] = r["ci_high"]
        out.update(errors=self.errors, p50_ms=self.latency_p50_ms, p95_ms=self.latency_p95_ms,
                   service_p50_ms=self.service_p50_ms, cost_per_1k=self.cost_per_1k,
                   paid_usd=self.cost_usd, judge_usd=self.judge_usd,
                   cached_calls=self.cached_calls, batch_calls=self.batch_calls,
                   batch_saved_usd=self.batch_saved_usd,
                   prompt_cache_hit_rate=self.prompt_cache_hit_rate,
                   prompt_cache_saved_usd=self.prompt_cache_saved_usd, simulated=self.simulated)
        return out

    # -- charts -----------------------------------------------------------------------------------
    def plot_scores(self) -> go.Figure:
        """Each scorer's mean with its interval, as bars."""
        import plotly.graph_objects as go

        s = self.summary
        fig = go.Figure(go.Bar(
            x=s.index.tolist(), y=s["mean"], marker_color="#4c78a8",
            error_y={"type": "data", "symmetric": False,
                     "array": (s["ci_high"] - s["mean"]).tolist(),
                     "arrayminus": (s["mean"] - s["ci_low"]).tolist()}))
        fig.update_layout(title=f"{self.name}: scores ({self.level:.0%} CI)", yaxis_range=[0, 1.05],
                          yaxis_title="mean score", template="plotly_white", height=360)
        return fig

    def plot_latency(self) -> go.Figure:
        """Row latency: wall time and time in the row's own calls."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for col, label in (("latency_ms", "wall"), ("service_ms", "in calls")):
            fig.add_trace(go.Histogram(x=self.scores[col], name=label, opacity=0.6))
        fig.update_layout(barmode="overlay", title=f"{self.name}: latency per row",
                          xaxis_title="ms", template="plotly_white", height=320)
        return fig

    def charts(self) -> list[go.Figure]:
        return [self.plot_scores(), self.plot_latency()]

    def show(self) -> None:
        """Display the HTML summary and the charts (in a notebook)."""
        from IPython.display import HTML, display

        display(HTML(self._repr_html_()))
        for fig in self.charts():
            display(fig)

    # -- persistence ------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """What is stored for an experiment (JSON-safe)."""
        return {"name": self.name, "scores": self.scores.to_json(orient="split"),
                "scorers": self.scorers, "meta": {k: v for k, v in self.meta.items()
                                                  if isinstance(v, (str, int, float, bool))
                                                  or v is None},
                "n_boot": self.n_boot, "level": self.level, "seed": self.seed}

    def save(self, path: str | Path) -> Path:
        """Write the report's rows and scores to a JSON file (a baseline for :meth:`check`
        and ``python -m orchnb eval ... --baseline FILE``)."""
        import json

        target = Path(path)
        target.write_text(json.dumps(self.to_record()), encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> ScoreReport:
        """A report written by :meth:`save`."""
        import json

        try:
            rec = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_record(rec)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SpecError(f"cannot read a saved eval report from {path}: {e}; write one "
                            f"with report.save(path)") from None

    def check(self, baseline: ScoreReport | str | Path, *,
              margin: float = DEFAULT_MARGIN) -> Check:
        """Compare with an earlier eval of the same rows (a report, or a file written by
        :meth:`save`), each scorer by its paired CI: a regression is a drop whose CI lies
        below 0 and that exceeds ``margin`` points. ``.passed``, ``.exit_code`` (1 on a
        regression), ``.sentence``, ``.table``.

        >>> report.check("baseline.json", margin=2).passed   # doctest: +SKIP
        """
        base = baseline if isinstance(baseline, ScoreReport) else ScoreReport.load(baseline)
        return check_scores(self.scores, base.scores, self.scorer_names, margin=margin,
                            level=self.level, seed=self.seed)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> ScoreReport:
        import io

        import pandas as pd

        scores = pd.read_json(io.StringIO(rec["scores"]), orient="split")
        return cls(rec["name"], scores, rec["scorers"], meta=rec["meta"], n_boot=rec["n_boot"],
                   level=rec["level"], seed=rec["seed"])

    # -- display ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        bits = [f"{n} {self.mean(n):.3f}" for n in self.scorer_names]
        bits += [f"{n} pass rate {self.corrected_pass_rate(n)}" for n in self.calibrations]
        batch = (f", paid {fmt_usd(self.cost_usd)} (batch mode saved "
                 f"{fmt_usd(self.batch_saved_usd)})" if self.batch_calls else "")
        if self.prompt_cache_note:
            batch += f", {self.prompt_cache_note}"
        return (f"<ScoreReport {self.name!r}: {plural(self.n, 'row')}, {', '.join(bits)}, "
                f"{plural(self.errors, 'error')}, {fmt_usd(self.cost_per_1k)} per 1k inputs"
                f"{batch}>")

    def _repr_html_(self) -> str:
        e = html.escape
        boxes = []
        for name, r in self.summary.iterrows():
            unscored = (f" · {int(r['scored']):,} of {self.n:,} rows scored (no expected answer "
                        f"on the rest)" if r["scored"] < self.n else "")
            # one unit per box: a 0/1 score and its interval in percent, others as fractions
            fmt = _pct if r["binary"] else "{:.3f}".format
            boxes.append(_box(str(name), fmt(r["mean"]),
                              f"{self.level:.0%} CI {fmt(r['ci_low'])}–{fmt(r['ci_high'])}"
                              + html.escape(unscored)))
        for name in self.calibrations:
            c = self.corrected_pass_rate(name)
            boxes.append(_box(f"{name} pass rate, corrected", _pct(c.rate),
                              f"{c.level:.0%} CI {_pct(c.ci_low)}–{_pct(c.ci_high)} · raw "
                              f"{_pct(c.raw)} · judge TPR {_pct(self.calibrations[name].tpr, 0)}"
                              f", TNR {_pct(self.calibrations[name].tnr, 0)}"))
        boxes += [
            _box("errors", f"{self.errors:,}", f"of {plural(self.n, 'row')}"),
            _box("latency p50 / p95", f"{_ms(self.latency_p50_ms)} / "
                 f"{_ms(self.latency_p95_ms)} ms", f"in calls p50 {_ms(self.service_p50_ms)} ms"),
            _box("cost per 1k inputs", fmt_usd(self.cost_per_1k), "list price"),
            _box("this eval paid", fmt_usd(self.cost_usd),
                 f"{plural(self.cached_calls, 'cached call')}; plus judges "
                 f"{fmt_usd(self.judge_usd)}"
                 + (f"; batch mode saved {fmt_usd(self.batch_saved_usd)} on "
                    f"{plural(self.batch_calls, 'batch call')}" if self.batch_calls else "")
                 + (f"; {self.prompt_cache_note}" if self.prompt_cache_note else "")),
        ]
        sim = " · simulated models" if self.simulated else ""
        fails = self.failures
        said = [f"{n}_{k}" for n in self.scorer_names for k in ("diff", "reason")]
        cols = [c for c in ("input", "expected", "output", *self.scorer_names, *said, "error")
                if c in fails.columns]
        shown = fails[cols].head(10).copy()
        for c in cols:  # a diff or a reason is the point of the row: it may run longer
            cut = 300 if c in said else 80
            shown[c] = shown[c].map(
                lambda v, cut=cut: v[:cut] + "…" if isinstance(v, str) and len(v) > cut else v)
        table = shown.to_html(escape=True, na_rep="")
        return (f"<div class='{NO_MATH}'><div style='font-size:115%;margin-bottom:6px'><b>Eval · "
                f"{e(self.name)}</b> ({e(self.pattern)}, {plural(self.n, 'row')}{sim})</div>"
                f"{''.join(boxes)}<details><summary>{plural(len(fails), 'failure')} (first 10)"
                f"</summary>{table}</details></div>")


def _paid(run: Run) -> float:
    """What a judge's run paid: unknown (NaN) when one of its calls had no known price."""
    c = run.cost_usd
    if c is None or run.unpriced_calls:
        return math.nan
    return float(c)
