"""Before a run pays for anything: every model it may call is checked (keys, known names)."""

from __future__ import annotations

from collections.abc import Iterable

from ..exceptions import MissingAPIKeyError, UnknownModelError
from ._provider import Model


def preflight(models: Iterable[Model]) -> None:
    """Raise before the first call when any model cannot be called: an unknown model
    (:class:`UnknownModelError`) or missing keys (one :class:`MissingAPIKeyError` naming every
    variable to set).

    >>> preflight([resolve_model("sim:echo")])
    """
    missing: dict[str, str] = {}
    unknown: list[str] = []
    seen: set[tuple[int, str]] = set()
    for model in models:
        key = (id(model.provider), model.name)
        if key in seen:
            continue
        seen.add(key)
        try:
            model.check()
        except MissingAPIKeyError as e:
            for variable, provider in e.missing.items():
                missing.setdefault(variable, provider)
        except UnknownModelError as e:
            unknown.append(str(e))
    if unknown:
        raise UnknownModelError("; ".join(dict.fromkeys(unknown)))
    if missing:
        raise MissingAPIKeyError.of(missing)
