"""Every token class at its own rate, batch and service-tier rates: hand-computed from the
per-MTok prices in genai-prices' table (the numbers in the comments), never list price for a
tier the table does not know."""

from __future__ import annotations

import math

import pytest

from orchnb.models import Usage, call_cost, call_cost_parts, cost_parts, cost_usd, resolve_model

M = 1_000_000


def test_anthropic_each_class_at_its_own_rate():
    # claude-haiku-4-5: $1 input, $5 output, $0.10 cache read, $1.25 5-min write, $2 1-h write
    h = ("anthropic", "claude-haiku-4-5")
    read = cost_usd(*h, Usage(4000, 0, cached_tokens=4000))
    write_5m = cost_usd(*h, Usage(4000, 0, cache_write_tokens=4000))
    write_1h = cost_usd(*h, Usage(4000, 0, cache_write_tokens=4000, cache_write_1h_tokens=4000))
    assert read == (pytest.approx(4000 * 0.10 / M), True)
    assert write_5m == (pytest.approx(4000 * 1.25 / M), True)
    assert write_1h == (pytest.approx(4000 * 2.00 / M), True)
    # all at once: 5000 plain + 2000 read + 2000 5-min + 1000 1-h written, 500 out
    usage = Usage(10_000, 500, cached_tokens=2000, cache_write_tokens=3000,
                  cache_write_1h_tokens=1000)
    parts = cost_parts(*h, usage)
    assert parts == pytest.approx({"input": 5000 / M, "output": 500 * 5 / M,
                                   "cache_read": 2000 * 0.1 / M,
                                   "cache_write": 2000 * 1.25 / M,
                                   "cache_write_1h": 1000 * 2 / M})
    assert cost_usd(*h, usage) == (pytest.approx(0.0122), True)


def test_writes_used_to_be_priced_as_plain_input_and_no_longer_are():
    usage = Usage(4000, 0, cache_write_tokens=4000)
    cost, _ = cost_usd("anthropic", "claude-haiku-4-5", usage)
    assert cost > cost_usd("anthropic", "claude-haiku-4-5", Usage(4000, 0))[0] * 1.2


def test_openai_cached_read_and_tiers():
    # gpt-5-mini: $0.25 in, $0.025 cached, $2 out; flex $0.125/$0.0125/$1;
    # priority $0.45/$0.045/$3.6
    usage = Usage(10_000, 1000, cached_tokens=8000)
    assert cost_usd("openai", "gpt-5-mini", usage) == (
        pytest.approx((2000 * 0.25 + 8000 * 0.025 + 1000 * 2) / M), True)
    assert cost_usd("openai", "gpt-5-mini", usage, service_tier="flex") == (
        pytest.approx((2000 * 0.125 + 8000 * 0.0125 + 1000 * 1) / M), True)
    assert cost_usd("openai", "gpt-5-mini", usage, service_tier="priority") == (
        pytest.approx((2000 * 0.45 + 8000 * 0.045 + 1000 * 3.6) / M), True)
    assert cost_usd("openai", "gpt-5-mini", usage, service_tier="default") == cost_usd(
        "openai", "gpt-5-mini", usage)


def test_a_tier_the_table_does_not_price_is_unknown_never_list_price():
    cost, priced = cost_usd("openai", "gpt-4o-mini", Usage(1000, 100), service_tier="flex")
    assert math.isnan(cost) and priced is False
    cost, priced = cost_usd("openai", "gpt-5-mini", Usage(1000, 100), service_tier="auto")
    assert math.isnan(cost) and priced is False
    assert cost_parts("openai", "gpt-4o-mini", Usage(1000, 100), service_tier="flex") is None


def test_batch_rate_from_the_table_else_the_documented_half():
    usage = Usage(10_000, 500, cached_tokens=2000, cache_write_tokens=3000,
                  cache_write_1h_tokens=1000)
    # claude-haiku-4-5's batch variant: $0.5 / $2.5 / $0.05 / $0.625 / $1
    assert cost_usd("anthropic", "claude-haiku-4-5", usage, batch=True) == (
        pytest.approx((5000 * 0.5 + 500 * 2.5 + 2000 * 0.05 + 2000 * 0.625 + 1000) / M), True)
    # claude-3-haiku has no batch rate in the table: Anthropic's documented 50%
    plain = Usage(10_000, 1000)
    assert cost_usd("anthropic", "claude-3-haiku", plain, batch=True) == (
        pytest.approx((10_000 * 0.25 + 1000 * 1.25) / M / 2), True)
    # a provider with no batch rate and no documented discount: unknown
    cost, priced = cost_usd("deepseek", "deepseek-chat", plain, batch=True)
    assert math.isnan(cost) and not priced


def test_unknown_model_is_nan_in_every_class():
    m = resolve_model("openai:no-such-model")
    for kw in ({}, {"batch": True}, {"service_tier": "flex"}):
        cost, priced = call_cost(m, Usage(1000, 100, cached_tokens=10), **kw)
        assert math.isnan(cost) and priced is False
        assert call_cost_parts(m, Usage(1000, 100), **kw) is None


def test_tiered_prices_match_genai_prices():
    from genai_prices import Usage as GUsage
    from genai_prices import calc_price

    for n in (150_000, 250_000):  # below and above claude-sonnet-4-5's 200k tier
        ours = cost_usd("anthropic", "claude-sonnet-4-5", Usage(
            n, 1000, cached_tokens=20_000, cache_write_tokens=30_000,
            cache_write_1h_tokens=10_000))[0]
        theirs = calc_price(GUsage(input_tokens=n, output_tokens=1000, cache_read_tokens=20_000,
                                   cache_write_tokens=30_000, cache_write_1h_tokens=10_000),
                            "claude-sonnet-4-5", provider_id="anthropic").total_price
        assert ours == pytest.approx(float(theirs))
