"""Model names in genai-prices' table: a name's price entry, and whether it is a likely typo.

New models appear before price tables know them, so an unknown name is never an error; only a
name one or two letters from a known one (``gpt-4o-mnii``) gets a warning that names it.
"""

from __future__ import annotations

import difflib
import os
import warnings
from functools import lru_cache
from typing import Any

from ..exceptions import OrchnbWarning

CHECKED_PROVIDERS = frozenset({"openai", "anthropic"})
"""Providers whose names the price table knows well enough to suggest a correction."""
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic"}


@lru_cache(maxsize=512)
def model_price(provider: str, model: str) -> Any | None:
    """genai-prices' ModelPrice for a model, or None when the table does not know it."""
    entry = model_entry(provider, model)
    return None if entry is None else entry.model_price


@lru_cache(maxsize=512)
def model_entry(provider: str, model: str) -> Any | None:
    """genai-prices' price calculation for a model (``.model`` holds its price variants:
    batch, service tiers), or None when the table does not know it."""
    try:
        from genai_prices import Usage as GUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - a core dependency
        return None
    try:
        calc = calc_price(
            GUsage(input_tokens=1, output_tokens=1),
            model_ref=model,
            provider_id=_PROVIDER_IDS.get(provider, provider),
        )
    except (LookupError, ValueError):
        return None
    return calc


@lru_cache(maxsize=8)
def known_models(provider: str) -> tuple[str, ...]:
    """The model ids genai-prices knows for ``provider`` (empty when it knows none)."""
    try:
        from genai_prices.data_snapshot import get_snapshot
    except ImportError:  # pragma: no cover - a core dependency
        return ()
    for p in get_snapshot().providers:
        if p.id == provider:
            return tuple(m.id for m in p.models)
    return ()


@lru_cache(maxsize=1024)
def likely_model(provider: str, name: str) -> str | None:
    """The known model ``name`` is probably a typo of, or None (known, or not close to any).

    >>> likely_model("openai", "gpt-4o-mnii"), likely_model("openai", "gpt-4o-mini")
    ('gpt-4o-mini', None)
    """
    if provider not in CHECKED_PROVIDERS:
        return None
    known = known_models(provider)
    if not known or name in known:
        return None
    if model_price(provider, name) is not None:  # the table's own matching (dated snapshots)
        return None
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
    return close[0] if close else None


_WARNED: set[str] = set()


def warn_if_misspelt(provider: str, name: str) -> None:
    """An :class:`OrchnbWarning` when ``provider:name`` looks like a typo of a known model
    (once per model string), pointing at the user's line, not orchnb's."""
    model = f"{provider}:{name}"
    if model in _WARNED:
        return
    guess = likely_model(provider, name)
    if guess is None:
        return
    _WARNED.add(model)
    warnings.warn(f"model '{model}' is not a model {provider} is known to have: did you mean "
                  f"{guess}? (a newer model than the price table knows works, unpriced)",
                  OrchnbWarning, stacklevel=_outside_orchnb())


def _outside_orchnb() -> int:
    import sys

    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level
