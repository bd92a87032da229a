"""Repeated evals.

- ``evaluate(make_router, data, repeats=N)``: the same eval over N draws of a router's examples.
  A few-shot router's accuracy depends on which examples it was given; one draw says little.
  ``make_router(seed)`` builds the router for a draw (e.g. sampling examples with that seed);
  each draw is evaluated on the same rows and the headline numbers are reported as mean ± sd.
- ``evaluate(pipe, data, ..., repeats=N)``: the same pipeline N times on the same rows (a model
  at temperature > 0 answers differently): per-row spread, pass@k / pass^k, the between-run SD
  and the rows that flip.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._pipeline_eval import evaluate_pipeline
from ._router_eval import evaluate_router
from ._rows import load_rows
from ._scores_report import ScoreReport

if TYPE_CHECKING:
    import pandas as pd

    from ._options import EvalOptions
    from ._report import EvalReport
    from ._scorers import Scorer

_HEADLINE = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "cost_per_1k")


class RepeatedReport:
    """Reports of several example draws: ``reports`` (one :class:`EvalReport` per draw),
    ``table`` (a row per draw), ``mean(metric)`` / ``sd(metric)``.

    >>> rep = orchnb.evaluate(lambda seed: make_router(seed), test, repeats=10)   # doctest: +SKIP
    >>> rep.mean("accuracy"), rep.sd("accuracy")                                   # doctest: +SKIP
    """

    def __init__(self, reports: list[EvalReport], seeds: list[int], kind: str = "draws"):
        self.reports = reports
        self.seeds = seeds
        self.kind = kind
        """"draws" (a router factory over example draws) or "repeats" (one router again)."""

    @property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{k: getattr(r, k) for k in _HEADLINE} for r in self.reports]
        return pd.DataFrame(rows, index=pd.Index(self.seeds, name=self.kind[:-1]))

    def mean(self, metric: str = "accuracy") -> float:
        return float(statistics.mean(self.table[metric]))

    def sd(self, metric: str = "accuracy") -> float:
        v = self.table[metric]
        return float(statistics.stdev(v)) if len(v) > 1 else math.nan

    def __repr__(self) -> str:
        seeds = (f" (seeds {self.seeds[0]}..{self.seeds[-1]})" if self.kind == "draws" else "")
        return (f"<RepeatedReport: accuracy {self.mean():.1%} ± {self.sd():.1%} over "
                f"{len(self.reports)} {self.kind}{seeds}>")


def evaluate_repeats(make_router: Callable[[int], Any], data: Any, repeats: int,
                     opts: EvalOptions) -> RepeatedReport:
    """``make_router(seed)`` for ``repeats`` seeds from ``opts.seed``, each evaluated on the
    same rows (with the same bootstrap seed)."""
    check_repeats(repeats)
    if not callable(make_router) or hasattr(make_router, "new_run"):
        raise SpecError("evaluate(..., repeats=N) takes a function seed -> router that draws "
                        "the router's examples, e.g. lambda seed: make_router(seed)")
    seeds = list(range(opts.seed, opts.seed + repeats))
    return RepeatedReport([evaluate_router(make_router(s), data, opts) for s in seeds], seeds)


class RepeatedScores:
    """The same pipeline eval repeated ``repeats`` times on the same rows (what
    ``orchnb.evaluate(pipe, data, ..., repeats=N)`` returns).

    ``reports`` one :class:`~orchnb.evals.ScoreReport` per repeat; ``per_row`` each row's mean,
    SD, min and max over the repeats for the first scorer (``per_row_for(scorer)`` for others)
    with ``flips`` (the score changed between repeats) and, for 0/1 scorers, ``pass_any``
    (right at least once) and ``pass_all`` (right every time); ``summary`` per scorer: mean,
    ``between_run_sd`` (SD of the repeats' means), ``mean_row_sd``, ``pass_at_k`` /
    ``pass_hat_k`` (0/1 scorers, k = repeats) and ``flipping`` rows; ``flipping`` the rows.

    >>> rep = orchnb.evaluate(chain, qa, expected="answer", repeats=5)   # doctest: +SKIP
    >>> rep.summary; rep.flipping                                           # doctest: +SKIP
    """

    def __init__(self, reports: list[ScoreReport]):
        self.reports = reports
        first = reports[0]
        self.name, self.scorer_names, self.primary = (first.name, first.scorer_names,
                                                      first.scorer_names[0])

    @property
    def repeats(self) -> int:
        return len(self.reports)

    def matrix(self, scorer: str | None = None) -> pd.DataFrame:
        """Rows × repeats of one scorer's scores."""
        import pandas as pd

        s = scorer or self.primary
        return pd.concat({i: r.scores[s] for i, r in enumerate(self.reports)}, axis=1)

    def per_row_for(self, scorer: str | None = None) -> pd.DataFrame:
        m = self.matrix(scorer)
        first = self.reports[0].scores
        out = first[[c for c in ("input", "expected") if c in first.columns]].copy()
        out["mean"], out["sd"] = m.mean(axis=1), m.std(axis=1, ddof=1)
        out["min"], out["max"] = m.min(axis=1), m.max(axis=1)
        out["flips"] = m.nunique(axis=1, dropna=False) > 1
        if _binary(m):
            out["pass_any"], out["pass_all"] = (m == 1).any(axis=1), (m == 1).all(axis=1)
        out["outputs"] = [sorted({str(r.scores["output"].iloc[i]) for r in self.reports})
                          for i in range(len(out))]
        return out

    @property
    def per_row(self) -> pd.DataFrame:
        return self.per_row_for()

    @property
    def flipping(self) -> pd.DataFrame:
        """Rows whose first score changed between repeats."""
        p = self.per_row
        return p[p["flips"]]

    def pass_at_k(self, k: int | None = None, scorer: str | None = None) -> float:
        """Chance that at least one of k tries is right (unbiased, Chen et al. 2021), over rows."""
        return _pass(self.matrix(scorer), k or self.repeats, every=False)

    def pass_hat_k(self, k: int | None = None, scorer: str | None = None) -> float:
        """pass^k: chance that all k tries are right (τ-bench), averaged over rows."""
        return _pass(self.matrix(scorer), k or self.repeats, every=True)

    def between_run_sd(self, scorer: str | None = None) -> float:
        """SD of the headline mean across the repeats."""
        means = [r.mean(scorer or self.primary) for r in self.reports]
        return float(statistics.stdev(means)) if len(means) > 1 else math.nan

    @property
    def summary(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for s in self.scorer_names:
            m = self.matrix(s)
            binary = _binary(m)
            rows.append({"mean": float(m.to_numpy(dtype=float).mean()),
                         "between_run_sd": self.between_run_sd(s),
                         "mean_row_sd": float(m.std(axis=1, ddof=1).mean()),
                         "pass_at_k": self.pass_at_k(scorer=s) if binary else math.nan,
                         "pass_hat_k": self.pass_hat_k(scorer=s) if binary else math.nan,
                         "flipping": int((m.nunique(axis=1, dropna=False) > 1).sum())})
        return pd.DataFrame(rows, index=pd.Index(self.scorer_names, name="scorer"))

    def merged(self) -> ScoreReport:
        """One report of all the repeats: each scorer column is the row's mean over the
        repeats (its bootstrap resamples rows with their repeats: a cluster bootstrap), the
        money and call columns are what all the repeats paid and made; ``meta["repeats"]``."""
        first = self.reports[0]
        frame = first.scores.copy()
        for s in self.scorer_names:
            frame[s] = self.matrix(s).mean(axis=1)  # NaN repeats left out of a row's mean
        for col in ("cost_usd", "calls", "cached_calls"):
            frame[col] = sum(r.scores[col] for r in self.reports)
        return ScoreReport(first.name, frame, first.scorers,
                           meta={**first.meta, "repeats": self.repeats}, run=first.run,
                           judge_runs=[j for r in self.reports for j in r.judge_runs],
                           n_boot=first.n_boot, level=first.level, seed=first.seed,
                           pipeline=first.pipeline)

    def __repr__(self) -> str:
        s = self.summary.loc[self.primary]
        return (f"<RepeatedScores {self.name!r}: {self.primary} {s['mean']:.3f} ± "
                f"{s['between_run_sd']:.3f} (between-run SD) over {self.repeats} repeats, "
                f"{int(s['flipping'])} of {len(self.reports[0].scores)} rows flip>")


def _binary(m: pd.DataFrame) -> bool:
    import numpy as np

    v = m.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return bool(v.size) and bool(np.all((v == 0) | (v == 1)))


def _pass(m: pd.DataFrame, k: int, *, every: bool) -> float:
    n = m.shape[1]
    if not 1 <= k <= n or not _binary(m):
        return math.nan
    c = (m == 1).sum(axis=1)
    if every:
        return float((c.map(lambda x: math.comb(int(x), k)) / math.comb(n, k)).mean())
    return float((1 - c.map(lambda x: math.comb(n - int(x), k)) / math.comb(n, k)).mean())


def evaluate_pipeline_repeats(pipe: Any, data: Any, repeats: int, opts: EvalOptions,
                              scorers: list[Scorer], name: str | None = None,
                              df: pd.DataFrame | None = None) -> RepeatedScores:
    """The pipeline eval ``repeats`` times. Repeat k's chat calls are cached under keys of
    their own (``cache_salt="repeat:k"``; repeat 0 shares a plain eval's), so each repeat
    really calls the model the first time, and a re-run of the whole eval is all cache hits."""
    check_repeats(repeats)
    if df is None:
        df = load_rows(data, opts, opts.expected)
    reports = [evaluate_pipeline(pipe, data, salted(opts, i), scorers, name=name, df=df)
               for i in range(repeats)]
    return RepeatedScores(reports)


def salted(opts: EvalOptions, repeat: int) -> EvalOptions:
    """The options of repeat number ``repeat`` (0: those of a plain eval)."""
    return opts if repeat == 0 else opts.but(cache_salt=f"repeat:{repeat}")


def evaluate_router_repeats(router: Any, data: Any, repeats: int, opts: EvalOptions
                            ) -> RepeatedReport:
    """One router's eval ``repeats`` times (each repeat's classifier calls cached under keys
    of their own, as for a pipeline); ``table`` is indexed by repeat."""
    check_repeats(repeats)
    return RepeatedReport([evaluate_router(router, data, salted(opts, i))
                           for i in range(repeats)], list(range(repeats)), kind="repeats")


def check_repeats(repeats: Any, entry: str = "evaluate") -> None:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SpecError(f"{entry}: repeats must be a whole number >= 1, got {repeats!r}")
