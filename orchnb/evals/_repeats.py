"""``evaluate(make_router, data, repeats=N)``: the same eval over N draws of a router's examples.

A few-shot router's accuracy depends on which examples it was given; one draw says little.
``make_router(seed)`` builds the router for a draw (e.g. sampling examples with that seed); each
draw is evaluated on the same rows and the headline numbers are reported as mean ± sd.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._router_eval import evaluate_router

if TYPE_CHECKING:
    import pandas as pd

    from ._options import EvalOptions
    from ._report import EvalReport

_HEADLINE = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "cost_per_1k")


class RepeatedReport:
    """Reports of several example draws: ``reports`` (one :class:`EvalReport` per draw),
    ``table`` (a row per draw), ``mean(metric)`` / ``sd(metric)``.

    >>> rep = orchnb.evaluate(lambda seed: make_router(seed), test, repeats=10)   # doctest: +SKIP
    >>> rep.mean("accuracy"), rep.sd("accuracy")                                   # doctest: +SKIP
    """

    def __init__(self, reports: list[EvalReport], seeds: list[int]):
        self.reports = reports
        self.seeds = seeds

    @property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{k: getattr(r, k) for k in _HEADLINE} for r in self.reports]
        return pd.DataFrame(rows, index=pd.Index(self.seeds, name="draw"))

    def mean(self, metric: str = "accuracy") -> float:
        return float(statistics.mean(self.table[metric]))

    def sd(self, metric: str = "accuracy") -> float:
        v = self.table[metric]
        return float(statistics.stdev(v)) if len(v) > 1 else math.nan

    def __repr__(self) -> str:
        return (f"<RepeatedReport: accuracy {self.mean():.1%} ± {self.sd():.1%} over "
                f"{len(self.reports)} draws (seeds {self.seeds[0]}..{self.seeds[-1]})>")


def evaluate_repeats(make_router: Callable[[int], Any], data: Any, repeats: int,
                     opts: EvalOptions) -> RepeatedReport:
    """``make_router(seed)`` for ``repeats`` seeds from ``opts.seed``, each evaluated on the
    same rows (with the same bootstrap seed)."""
    if repeats < 1:
        raise SpecError(f"evaluate: repeats must be at least 1, got {repeats}")
    if not callable(make_router) or hasattr(make_router, "new_run"):
        raise SpecError("evaluate(..., repeats=N) takes a function seed -> router that draws "
                        "the router's examples, e.g. lambda seed: make_router(seed)")
    seeds = list(range(opts.seed, opts.seed + repeats))
    return RepeatedReport([evaluate_router(make_router(s), data, opts) for s in seeds], seeds)
