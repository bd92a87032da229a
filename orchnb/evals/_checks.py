"""The knobs of ``evaluate`` / ``compare_routers`` and the labels, checked before any call."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..engine import MAX_CONCURRENCY, Budget, check_number
from ..exceptions import OrchnbWarning, SpecError, UnknownModelError
from ..models import resolve_model

if TYPE_CHECKING:
    import pandas as pd


def check_eval_knobs(what: str, *, text: Any, label: Any, concurrency: Any, sample: Any,
                     seed: Any, n_boot: Any, level: Any, output_tokens: Any, max_usd: Any,
                     budget: Any, baseline: Any, cache: Any = None, progress: Any = True,
                     full_pipeline: Any = False) -> None:
    """Raise :class:`SpecError` for a bad setting of an eval, naming it and its range.

    >>> check_eval_knobs("evaluate", text="text", label="label", concurrency=0, sample=None,
    ...                  seed=0, n_boot=1000, level=0.95, output_tokens=150, max_usd=None,
    ...                  budget=None, baseline=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchnb.exceptions.SpecError: evaluate: concurrency must be a whole number >= 1 and ...
    """
    for name, value in (("text", text), ("label", label)):
        if not isinstance(value, str) or not value:
            raise SpecError(f"{what}: {name}= must name a column (a string), not {value!r}")
    if text == label:
        raise SpecError(f"{what}: text= and label= both name column {text!r}; the label "
                        "needs a column of its own")
    check_number(concurrency, f"{what}: concurrency", minimum=1, integer=True, optional=False,
                 maximum=MAX_CONCURRENCY)
    check_number(sample, f"{what}: sample", minimum=1, integer=True,
                 hint="the number of rows to evaluate")
    check_number(seed, f"{what}: seed", integer=True, optional=False)
    check_number(n_boot, f"{what}: n_boot", minimum=0, integer=True, optional=False,
                 hint="bootstrap resamples for the confidence interval, e.g. 1000 (0: none)")
    check_number(level, f"{what}: level", above=True, optional=False)
    if not level < 1:
        raise SpecError(f"{what}: level must be between 0 and 1 (exclusive), e.g. 0.95, "
                        f"not {level!r}")
    check_number(output_tokens, f"{what}: output_tokens", above=True, optional=False)
    check_number(max_usd, f"{what}: max_usd", hint="a dollar amount such as 1.50")
    if budget is not None and not isinstance(budget, Budget):
        raise SpecError(f"{what}: budget must be an orchnb.Budget(...), not {budget!r}")
    for name, value in (("cache", cache), ("progress", progress),
                        ("full_pipeline", full_pipeline)):
        if value is not None and not isinstance(value, bool):
            raise SpecError(f"{what}: {name} must be True or False, not {value!r}")
    if baseline is not None:
        try:
            resolve_model(baseline)
        except UnknownModelError as e:
            raise UnknownModelError(f"{what}: baseline={baseline!r}: {e.message}") from None


def check_labels(what: str, router: Any, df: pd.DataFrame, label: str) -> None:
    """Labels must name the router's routes: none matching is an error (an eval would report
    0% for nothing), some missing a warning (they count as the default route)."""
    routes = [str(r) for r in router.routes]
    values = df[label]
    labels = sorted(set(values.astype(str)))
    unknown = [x for x in labels if x not in routes]
    if not unknown:
        return
    numeric = values.dtype.kind in "iuf"
    if len(unknown) == len(labels):
        hint = (" The labels are numbers: map them to route names first, e.g. "
                f"data[{label!r}] = data[{label!r}].map({{0: '{routes[0]}', ...}})"
                if numeric else " Is label= the right column?")
        raise SpecError(f"{what}: none of the labels in column {label!r} is a route of router "
                        f"'{router.name}' (labels: {', '.join(unknown[:8])}; routes: "
                        f"{', '.join(routes)}).{hint}")
    if getattr(router, "default", None):
        return  # a router with a default route sends the other labels there, on purpose
    warnings.warn(f"{what}: label(s) {', '.join(unknown[:8])} in column {label!r} are not routes "
                  f"of router '{router.name}' (routes: {', '.join(routes)}), and it has no "
                  "default route: those rows count as misrouted", OrchnbWarning, stacklevel=3)


def check_columns(what: str, df: pd.DataFrame) -> None:
    """Duplicate column names make ``df[col]`` a table, not a column: refuse them."""
    dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if dup:
        raise SpecError(f"{what}: the data has duplicate column(s) {', '.join(dup)}; rename or "
                        f"drop them first (e.g. data.loc[:, ~data.columns.duplicated()])")
