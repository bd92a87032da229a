"""The evals' front door: ``evaluate``, ``compare``, ``compare_routers`` and ``sweep_threshold``.

Each takes its knobs as keyword arguments, makes one checked :class:`EvalOptions` and hands it
to the module that does the work; nothing below imports back up here:

- one router: ``_router_eval.evaluate_router``; several: ``_candidates.compare_candidates``;
- any pipeline: ``_pipeline_eval.evaluate_pipeline``; several: ``_compare.compare_pipelines``;
- a router factory over example draws: ``_repeats.evaluate_repeats``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._candidates import Comparison, compare_candidates
from ._compare import Experiment, compare_pipelines
from ._costs import DEFAULT_OUTPUT_TOKENS, is_router
from ._decide import DEFAULT_MARGIN
from ._options import EvalOptions
from ._pipeline_eval import evaluate_pipeline, resolve_scorers
from ._repeats import (
    RepeatedReport,
    RepeatedScores,
    check_repeats,
    evaluate_pipeline_repeats,
    evaluate_repeats,
    evaluate_router_repeats,
)
from ._router_eval import evaluate_router

if TYPE_CHECKING:
    import pandas as pd

    from ..engine import Budget
    from ._report import EvalReport
    from ._scores_report import ScoreReport


def evaluate(
    router: Any, data: Any, *, text: str = "text", label: str | None = None,
    expected: str | None = None, scorers: Any = None, name: str | None = None,
    full_pipeline: bool = False, concurrency: int = 16, progress: bool = True,
    cache: bool | None = None, budget: Budget | None = None, max_usd: float | None = None,
    baseline: str | None = None, sample: int | None = None, seed: int = 0, n_boot: int = 1000,
    level: float = 0.95, output_tokens: float = DEFAULT_OUTPUT_TOKENS,
    repeats: int | None = None, oos_label: str | None = None, executor: Any = None,
    batch: bool = False,
) -> EvalReport | Comparison | ScoreReport | Experiment | RepeatedReport | RepeatedScores:
    """Evaluate a pipeline on data: any pattern with scorers, or a router's routing.

    **Any pipeline** (``expected=`` or ``scorers=`` given, or not a router): each row's
    ``text`` runs through the whole pipeline, ``concurrency`` rows at a time in one traced run,
    and each output is scored: built-ins by name (``"exact"``, ``"iexact"``, ``"contains"``,
    ``"regex:PATTERN"``, ``"json:FIELD"``, ``"numeric[:TOL]"``), functions ``(output,
    expected[, row]) -> float | bool`` and :func:`orchnb.judge`; ``"exact"`` when only
    ``expected`` is given. Returns a :class:`~orchnb.evals.ScoreReport`.

    >>> report = orchnb.evaluate(chain, data, text="question", expected="answer",
    ...                          scorers=["exact", orchnb.judge(model, rubric)])  # doctest: +SKIP

    **Routers** (``label=``, by default the column ``"label"``): an :class:`EvalReport`. Only
    the classifier runs unless ``full_pipeline=True``. The cost is estimated first
    (``report.estimate``; ``progress=False`` hides it and the progress bar); ``max_usd``
    refuses to start above it and caps the spend, as ``budget`` does. ``cache=False`` bypasses
    the response cache and the vector cache (``None``: the pipeline's ``cache=``, then the
    session's). ``baseline="openai:gpt-4o"`` adds the saving against that model; ``sample=N``
    evaluates a seeded sample; ``executor="ray"`` runs the rows on Ray (``orchnb[ray]``).
    ``repeats=N`` with a function ``seed -> router`` evaluates N example draws (mean ± sd, a
    :class:`~orchnb.evals.RepeatedReport`); with a pipeline it runs the eval N times (a
    :class:`~orchnb.evals.RepeatedScores`: per-row spread, pass@k, rows that flip; repeats
    after the first bypass the response cache). ``oos_label="oos"`` names the out-of-scope route:
    only then are OOS metrics reported. Several routers or pipelines (a dict or a list) are
    compared: see :func:`compare_routers` and :func:`compare`. ``batch=True``: batch mode, the
    rows' model calls through the providers' batch APIs at the batch price (``docs/batch.md``).

    >>> report = orchnb.evaluate(triage, orchnb.evals.load_tickets())   # doctest: +SKIP
    >>> report.accuracy, report.accuracy_ci, report.per_route            # doctest: +SKIP
    """
    opts = EvalOptions(
        entry="evaluate", text=text, label=label, expected=expected, concurrency=concurrency,
        progress=progress, cache=cache, budget=budget, max_usd=max_usd, baseline=baseline,
        sample=sample, seed=seed, n_boot=n_boot, level=level, output_tokens=output_tokens,
        full_pipeline=full_pipeline, oos_label=oos_label, executor=executor, batch=batch)
    if repeats is not None and not callable(getattr(router, "new_run", None)):
        return evaluate_repeats(router, data, repeats, opts.but(label=label or "label"))
    many, members = _members(router)
    if many and repeats is not None:
        raise SpecError("evaluate: repeats= takes one pipeline or router; compare "
                        "pipelines with repeats by orchnb.compare([...], data, repeats=N)")
    if expected is None and scorers is None and all(map(is_router, members)):
        opts = opts.but(label=label or "label")
        if repeats is not None:
            return evaluate_router_repeats(router, data, repeats, opts)
        return compare_candidates(router, data, opts) if many else evaluate_router(
            router, data, opts)
    return _scored(router, data, opts, members, scorers=scorers, name=name, repeats=repeats,
                   many=many)


def _members(router: Any) -> tuple[bool, list[Any]]:
    """Whether several candidates were given, and each of them."""
    many = isinstance(router, (Mapping, list, tuple))
    return many, (list(router.values()) if isinstance(router, Mapping) else (
        list(router) if many else [router]))


def _scored(pipes: Any, data: Any, opts: EvalOptions, members: list[Any], *, scorers: Any,
            name: str | None, repeats: int | None, many: bool
            ) -> ScoreReport | Experiment | RepeatedScores:
    """``evaluate`` of any pipeline(s): outputs scored against ``expected`` or by scorers."""
    if opts.expected is None and opts.label is None and scorers is None:
        odd = next(x for x in members if not is_router(x))
        raise SpecError(f"evaluate: {type(odd).__name__} {getattr(odd, 'name', odd)!r} is "
                        f"not a router, so its outputs are scored: give expected='COLUMN' "
                        f"(scored 'exact') or scorers=[...]")
    opts = opts.but(label=None, expected=opts.expected or opts.label)
    scs = resolve_scorers(scorers, opts.expected)
    if repeats is not None:
        return evaluate_pipeline_repeats(pipes, data, repeats, opts, scs, name=name)
    if many:
        return compare_pipelines(pipes, data, opts.but(entry="compare"), scs)
    return evaluate_pipeline(pipes, data, opts, scs, name=name)


def compare(
    candidates: Any,
    data: Any,
    *,
    text: str = "text",
    expected: str | None = None,
    scorers: Any = None,
    concurrency: int = 8,
    progress: bool = True,
    cache: bool | None = None,
    budget: Budget | None = None,
    max_usd: float | None = None,
    sample: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    alpha: float = 0.05,
    margin: float = DEFAULT_MARGIN,
    name: str | None = None,
    save: bool = True,
    executor: Any = None,
    batch: bool | str = False,
    repeats: int | None = None,
) -> Experiment:
    """Evaluate several pipelines on the same rows with the same scorers; returns an
    :class:`Experiment`: quality per scorer with intervals, cost per 1,000 inputs, p50/p95
    latency and errors side by side (``table``), paired tests between each pair (``tests``:
    paired bootstrap, McNemar for 0/1 scores), a cost–quality Pareto chart, ``verdicts`` and
    ``decision``.

    Decisions go by the ``1 - alpha`` confidence interval of each paired difference and
    ``margin`` (points): *better* or *worse* when the interval is off 0, *equivalent* when it
    lies inside ±margin, else *inconclusive* with the rows that would tell. The choice is the
    simplest candidate shown not worse than the best by more than ``margin`` (non-inferiority).

    ``candidates`` is ``{name: pipeline}`` or a list (named by ``pipe.name``). ``max_usd``
    caps the total. The experiment is saved (``save=False`` not) and a re-run of an unchanged
    candidate is answered by the response cache. ``executor="ray"`` runs every candidate's
    rows on a Ray cluster (``orchnb[ray]``), with the same results as in the kernel.
    ``batch=True`` runs every candidate in batch mode; ``batch="both"`` each one live and in
    batch mode (``"NAME · live"`` / ``"NAME · batch"``, no response cache between them).
    ``repeats=N`` runs each candidate N times (each repeat cached under its own key); rows
    score their mean and verdicts come from a paired cluster bootstrap by row
    (``exp.repeated[name]``: per-row spread, flipping rows). Other options as :func:`evaluate`.

    >>> exp = orchnb.compare([chain, router, agent], qa, expected="answer")   # doctest: +SKIP
    >>> exp.verdicts[["a", "b", "difference", "ci_low", "ci_high", "verdict"]]  # doctest: +SKIP
    >>> exp.decision                                                          # doctest: +SKIP
    'chain is not worse than agent by more than 2 points on exact (non-inferiority: ...'
    """
    opts = EvalOptions(entry="compare", text=text, expected=expected, concurrency=concurrency,
                       progress=progress, cache=cache, budget=budget, max_usd=max_usd,
                       sample=sample, seed=seed, n_boot=n_boot, level=level, executor=executor,
                       batch=batch)
    if repeats is not None:
        check_repeats(repeats, "compare")
    return compare_pipelines(candidates, data, opts, resolve_scorers(scorers, expected),
                             alpha=alpha, margin=margin, name=name, save=save, repeats=repeats)


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
    oos_label: str | None = None,
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
    opts = EvalOptions(
        entry="compare_routers", text=text, label=label, concurrency=concurrency,
        progress=progress, cache=cache, budget=budget, max_usd=max_usd, baseline=baseline,
        sample=sample, seed=seed, n_boot=n_boot, level=level, output_tokens=output_tokens,
        full_pipeline=full_pipeline, oos_label=oos_label, executor=executor)
    return compare_candidates(candidates, data, opts)


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
