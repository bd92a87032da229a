"""Cost of a call from the maintained ``genai-prices`` table; unknown prices are NaN, never 0."""

from __future__ import annotations

import math
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ._types import Usage

_PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic"}


@lru_cache(maxsize=512)
def _model_price(provider: str, model: str) -> Any | None:
    """genai-prices' ModelPrice for a model, or None when the table does not know it."""
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
    return calc.model_price


def _flat(rate: Any) -> float | None:
    """A per-Mtok rate as float, or None when it is tiered (then genai-prices computes it)."""
    if rate is None:
        return 0.0
    if isinstance(rate, (Decimal, int, float)):
        return float(rate)
    return None


def cost_usd(provider: str, model: str, usage: Usage) -> tuple[float, bool]:
    """``(cost, priced)`` for one call; ``(nan, False)`` when the price is unknown.

    >>> cost, priced = cost_usd("openai", "gpt-4o-mini", Usage(1000, 100))
    >>> round(cost, 6), priced
    (0.00021, True)
    >>> cost_usd("openai", "no-such-model", Usage(1, 1))[1]
    False
    """
    price = _model_price(provider, model)
    if price is None:
        return math.nan, False
    rates = (_flat(price.input_mtok), _flat(price.output_mtok), _flat(price.cache_read_mtok))
    if None in rates:  # tiered pricing: let genai-prices do the arithmetic
        from genai_prices import Usage as GUsage

        calc = price.calc_price(
            GUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cached_tokens or None,
            )
        )
        return float(calc["total_price"]), True
    inp, out, cache = rates
    cached = usage.cached_tokens
    if not price.cache_read_mtok:
        cache = inp
    total = (usage.input_tokens - cached) * inp + cached * cache + usage.output_tokens * out
    return total / 1_000_000, True


def call_cost(model: Any, usage: Usage, reported_model: str | None = None) -> tuple[float, bool]:
    """TEMP stand-in."""
    ref = model.provider.priced_as(model.name) if hasattr(model.provider, "priced_as") else None
    if ref:
        provider, _, name = ref.partition(":")
        return cost_usd(provider, name, usage)
    if model.simulated:
        return 0.0, True
    return cost_usd(model.provider_name, reported_model or model.name, usage)
