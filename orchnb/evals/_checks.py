"""The data of an eval, checked before any call: its labels against the router's routes, its
columns (the knobs are checked by ``EvalOptions``)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..exceptions import OrchnbWarning, SpecError

if TYPE_CHECKING:
    import pandas as pd


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


def check_oos_label(what: str, router: Any, oos_label: str | None) -> None:
    """``oos_label`` must be one of the router's routes (the one out-of-scope rows go to)."""
    if oos_label is None:
        return
    routes = [str(r) for r in router.routes]
    if oos_label not in routes:
        raise SpecError(f"{what}: oos_label={oos_label!r} is not a route of router "
                        f"'{router.name}' (routes: {', '.join(routes)}); name the route that "
                        f"out-of-scope rows should go to, usually its default")


def check_columns(what: str, df: pd.DataFrame) -> None:
    """Duplicate column names make ``df[col]`` a table, not a column: refuse them."""
    dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if dup:
        raise SpecError(f"{what}: the data has duplicate column(s) {', '.join(dup)}; rename or "
                        f"drop them first (e.g. data.loc[:, ~data.columns.duplicated()])")
