"""Cost of a call from the maintained ``genai-prices`` table; unknown prices are NaN, never 0.

:func:`call_cost` is the one rule for which price applies to a call (the engine charges with
it, evals estimate with :func:`price_ref`); :func:`cost_usd` is the table lookup under it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ..exceptions import UnknownModelError
from ._names import model_price as _model_price
from ._provider import Model, resolve_model
from ._types import Usage


def _flat(rate: Any) -> float | None:
    """A per-Mtok rate as float, or None when it is tiered (then genai-prices computes it)."""
    if rate is None:
        return 0.0
    if isinstance(rate, (Decimal, int, float)):
        return float(rate)
    return None


def cost_usd(provider: str, model: str, usage: Usage, *, batch: bool = False,
             service_tier: str | None = None) -> tuple[float, bool]:
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
        return _batch_rate(provider, float(calc["total_price"]), batch), True
    inp, out, cache = rates
    cached = usage.cached_tokens
    if not price.cache_read_mtok:
        cache = inp
    total = (usage.input_tokens - cached) * inp + cached * cache + usage.output_tokens * out
    return _batch_rate(provider, total / 1_000_000, batch), True


def _batch_rate(provider: str, usd: float, batch: bool) -> float:
    # interim; replaced by the pricing-by-class change
    return usd * 0.5 if batch and provider in ("openai", "anthropic") else usd


def price_ref(model: Model | str) -> str | None:
    """The ``provider:model`` whose price a call to ``model`` is charged at; None: free.

    A sim model borrows its ``priced_as`` model's price, or is free; any other model is
    priced as itself (the model a response reports may refine that, see :func:`call_cost`).
    A string is resolved first; one naming no known provider is returned as is (its price
    is then unknown).

    >>> price_ref("openai:gpt-4o-mini"), price_ref("sim:echo")
    ('openai:gpt-4o-mini', None)
    """
    if isinstance(model, str):
        try:
            model = resolve_model(model)
        except UnknownModelError:
            return model
    if model.priced_as is not None:
        return model.priced_as
    return None if model.simulated else model.id


def call_cost(model: Model, usage: Usage, reported_model: str | None = None, *,
              batch: bool = False, service_tier: str | None = None) -> tuple[float, bool]:
    """``(cost, priced)`` of one call to ``model`` (chat or embeddings) that used ``usage``.

    The rule: a sim model with ``priced_as`` costs what that model would; any other sim model
    is free ``(0.0, True)``; a real model is priced from the table for its provider and the
    model the response reports (``reported_model``, e.g. a dated snapshot), falling back to
    the requested name when the table does not know the reported one. Unknown prices are
    ``(nan, False)``, never 0.

    >>> m = resolve_model("openai:gpt-4o-mini")
    >>> cost, priced = call_cost(m, Usage(1000, 100), reported_model="gpt-4o-mini-2024-07-18")
    >>> round(cost, 6), priced
    (0.00021, True)
    >>> call_cost(resolve_model("sim:echo"), Usage(1000, 100))
    (0.0, True)
    """
    ref = model.priced_as
    if ref is not None:
        provider, _, name = ref.partition(":")
        return cost_usd(provider, name, usage, batch=batch)
    if model.simulated:
        return 0.0, True
    if reported_model and reported_model != model.name:
        cost, priced = cost_usd(model.provider_name, reported_model, usage, batch=batch)
        if priced:
            return cost, priced
    return cost_usd(model.provider_name, model.name, usage, batch=batch)
