"""Cost of a call from the maintained ``genai-prices`` table; unknown prices are NaN, never 0.

:func:`call_cost` is the one rule for which price applies to a call (the engine charges with
it, evals estimate with :func:`price_ref`); :func:`cost_usd` is the table lookup under it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..exceptions import UnknownModelError
from ._names import model_entry
from ._provider import Model, resolve_model
from ._types import Usage

CLASSES = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
"""The token classes a call is priced by, each at its own rate: uncached input, output,
cache reads, 5-minute cache writes and 1-hour cache writes."""
_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok",
         "cache_write_1h_mtok")
LIST_TIERS = frozenset({"default"})
"""Service tiers priced at the list price (``None``, no tier asked or reported, too)."""
BATCH_DISCOUNT = {"openai": 0.5, "anthropic": 0.5}
"""The providers' documented batch discount (OpenAI Batch API, Anthropic Message Batches:
50% of every rate), used only where genai-prices has no batch rate for a model."""


def _rate(value: Any, total_input: int) -> float | None:
    """A per-Mtok rate as float for a call of ``total_input`` tokens; None when absent.

    Tiered prices follow genai-prices' threshold rule: crossing a tier's start prices ALL
    tokens at that tier's rate."""
    if value is None:
        return None
    if isinstance(value, (Decimal, int, float)):
        return float(value)
    for tier in reversed(value.tiers):
        if total_input > tier.start:
            return float(tier.price)
    return float(value.base)


def _variant_known(entry: Any, when: dict[str, str], now: datetime) -> bool:
    """Whether the table has an active price variant for exactly this request context."""
    for v in getattr(entry.model, "price_variants", None) or ():
        if v.when == when and (v.constraint is None or v.constraint.active(now)):
            return True
    return False


@lru_cache(maxsize=1024)
def _rates(provider: str, model: str, batch: bool, service_tier: str | None
           ) -> tuple[tuple[Any, ...], float] | None:
    """The five class rates (raw table values) and a scale for one price context; None when
    the table does not know the model, or the tier / batch rate is unknown for it."""
    entry = model_entry(provider, model)
    if entry is None:
        return None
    now = datetime.now(UTC)
    context: dict[str, str] = {}
    scale = 1.0
    if service_tier is not None and service_tier not in LIST_TIERS:
        if batch or not _variant_known(entry, {"service_tier": service_tier}, now):
            return None  # a tier the table does not price: unknown, never the list price
        context["service_tier"] = service_tier
    if batch:
        if _variant_known(entry, {"processing": "batch"}, now):
            context["processing"] = "batch"
        elif provider in BATCH_DISCOUNT:
            scale = BATCH_DISCOUNT[provider]
        else:
            return None
    price = entry.model.get_prices(now, context) if context else entry.model_price
    return tuple(getattr(price, k, None) for k in _KEYS), scale


def cost_parts(provider: str, model: str, usage: Usage, *, batch: bool = False,
               service_tier: str | None = None) -> dict[str, float] | None:
    """The cost of one call split by token class (:data:`CLASSES`); None when unknown.

    ``input_tokens`` includes cache reads and writes; each class is charged at its own rate
    (a class the table has no rate for falls back as genai-prices does: reads and writes to
    the input rate, 1-hour writes to the 5-minute one). ``batch`` prices the batch rate (the
    table's, else the provider's documented 50% for OpenAI and Anthropic); ``service_tier``
    the tier's rate, unknown (None) when the table does not price that tier.

    >>> p = cost_parts("anthropic", "claude-haiku-4-5", Usage(10_000, 100, cached_tokens=2000,
    ...                cache_write_tokens=3000, cache_write_1h_tokens=1000))
    >>> [round(p[k], 6) for k in CLASSES]  # input, output, read, 5-min write, 1-hour write
    [0.005, 0.0005, 0.0002, 0.0025, 0.002]
    """
    found = _rates(provider, model, bool(batch), service_tier)
    if found is None:
        return None
    total = usage.input_tokens
    rates = _class_rates(found, total)
    w = max(0, min(usage.cache_write_tokens, total))
    w1h = max(0, min(usage.cache_write_1h_tokens, w))
    cached = max(0, min(usage.cached_tokens, total - w))
    tokens = (total - cached - w, usage.output_tokens, cached, w - w1h, w1h)
    return {c: n * rates[c] for c, n in zip(CLASSES, tokens)}


def _class_rates(found: tuple[tuple[Any, ...], float], total_input: int) -> dict[str, float]:
    """USD per token of each class, with genai-prices' fallbacks for absent rates."""
    raw, scale = found
    inp, out, read, write, write_1h = (_rate(r, total_input) for r in raw)
    inp = inp or 0.0
    read = inp if read is None else read
    write = inp if write is None else write
    write_1h = write if write_1h is None else write_1h
    rates = (inp, out or 0.0, read, write, write_1h)
    return {c: r * scale / 1_000_000 for c, r in zip(CLASSES, rates)}


def class_rates(provider: str, model: str, *, batch: bool = False,
                service_tier: str | None = None) -> dict[str, float] | None:
    """USD per token of each class (:data:`CLASSES`) at the base tier of the price (charts
    split a recorded cost with these); None when the price is unknown.

    >>> class_rates("anthropic", "claude-haiku-4-5")["cache_write_1h"] * 1_000_000
    2.0
    """
    found = _rates(provider, model, bool(batch), service_tier)
    return None if found is None else _class_rates(found, 0)


def cost_usd(provider: str, model: str, usage: Usage, *, batch: bool = False,
             service_tier: str | None = None) -> tuple[float, bool]:
    """``(cost, priced)`` for one call; ``(nan, False)`` when the price is unknown.

    Every token class at its own rate (see :func:`cost_parts`), at the batch or service-tier
    rate when asked; a tier the table does not price is unknown, never the list price.

    >>> cost, priced = cost_usd("openai", "gpt-4o-mini", Usage(1000, 100))
    >>> round(cost, 6), priced
    (0.00021, True)
    >>> cost_usd("openai", "no-such-model", Usage(1, 1))[1]
    False
    """
    parts = cost_parts(provider, model, usage, batch=batch, service_tier=service_tier)
    if parts is None:
        return math.nan, False
    return sum(parts.values()), True


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
    the requested name when the table does not know the reported one. ``batch`` and
    ``service_tier`` select those rates (:func:`cost_usd`). Unknown prices are
    ``(nan, False)``, never 0.

    >>> m = resolve_model("openai:gpt-4o-mini")
    >>> cost, priced = call_cost(m, Usage(1000, 100), reported_model="gpt-4o-mini-2024-07-18")
    >>> round(cost, 6), priced
    (0.00021, True)
    >>> call_cost(resolve_model("sim:echo"), Usage(1000, 100))
    (0.0, True)
    """
    if model.traits.simulated and model.priced_as is None:  # every call of a free sim model
        return 0.0, True
    parts = call_cost_parts(model, usage, reported_model, batch=batch,
                            service_tier=service_tier)
    if parts is None:
        return math.nan, False
    return sum(parts.values()), True


def call_cost_parts(model: Model, usage: Usage, reported_model: str | None = None, *,
                    batch: bool = False, service_tier: str | None = None
                    ) -> dict[str, float] | None:
    """:func:`call_cost` split by token class (:func:`cost_parts`); None when unknown, all
    zeros for a free sim model."""
    ref = model.priced_as
    kw: dict[str, Any] = {"batch": batch, "service_tier": service_tier}
    if ref is not None:
        provider, _, name = ref.partition(":")
        return cost_parts(provider, name, usage, **kw)
    if model.simulated:
        return dict.fromkeys(CLASSES, 0.0)
    if reported_model and reported_model != model.name:
        parts = cost_parts(model.provider_name, reported_model, usage, **kw)
        if parts is not None:
            return parts
    return cost_parts(model.provider_name, model.name, usage, **kw)
