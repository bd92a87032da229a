"""Prompt caching and service tiers through the real SDKs against the loopback FakeProvider:
what goes on the wire, what the span records, and what each call costs (hand-computed)."""

from __future__ import annotations

import pytest

import orchnb
from orchnb import Chain, Step

M = 1_000_000
LONG = "Policy clause. " * 1500  # about 5,600 tokens: over every provider's cache minimum


def _calls(run):
    df = run.trace.df
    return df[df.kind == "model"].reset_index(drop=True)


def _chain(model: str, **step) -> Chain:
    return Chain("levers", [Step("answer", model, "Q: {{ input }}", system=LONG, **step)],
                 cache=False)


@pytest.mark.parametrize(("ttl", "write_rate"), [(True, 1.25), ("1h", 2.00)])
def test_anthropic_cache_writes_then_reads_priced_by_duration(fake_env, ttl, write_rate):
    chain = _chain("anthropic:claude-haiku-4-5", cache_prompt=ttl)
    first, second = chain("first question"), chain("second question")
    system = fake_env.requests[0].body["system"]
    expected = {"type": "ephemeral"} if ttl is True else {"type": "ephemeral", "ttl": "1h"}
    assert system[0]["cache_control"] == expected
    a = _calls(first).iloc[0]
    assert a.cache_write_tokens > 4096 and a.cached_tokens == 0
    assert a.cache_write_1h_tokens == (a.cache_write_tokens if ttl == "1h" else 0)
    # claude-haiku-4-5: $1 input, $5 output, $1.25 5-min write, $2 1-h write per MTok
    plain = a.input_tokens - a.cache_write_tokens
    assert a.cost_usd == pytest.approx(
        (plain * 1 + a.cache_write_tokens * write_rate + a.output_tokens * 5) / M)
    b = _calls(second).iloc[0]
    assert b.cached_tokens == a.cache_write_tokens and b.cache_write_tokens == 0
    assert b.cost_usd == pytest.approx(((b.input_tokens - b.cached_tokens) * 1
                                        + b.cached_tokens * 0.10 + b.output_tokens * 5) / M)


def test_anthropic_streamed_answer_keeps_the_cache_write_split(fake_env):
    run = _chain("anthropic:claude-haiku-4-5", cache_prompt="1h", stream=True)("q")
    a = _calls(run).iloc[0]
    assert a.cache_write_tokens > 0 and a.cache_write_1h_tokens == a.cache_write_tokens


def test_openai_prefix_cache_key_and_a_hit_on_the_second_call(fake_env):
    chain = _chain("openai:gpt-5-mini", cache_prompt=True)
    first, second = chain("one"), chain("two")
    body = fake_env.requests[0].body
    assert body["prompt_cache_key"].startswith("orchnb-")
    assert body["messages"][0]["role"] == "system"
    assert _calls(first).iloc[0].cached_tokens == 0
    b = _calls(second).iloc[0]
    assert b.cached_tokens >= 1024
    # gpt-5-mini: $0.25 input, $0.025 cached, $2 output per MTok
    assert b.cost_usd == pytest.approx(((b.input_tokens - b.cached_tokens) * 0.25
                                        + b.cached_tokens * 0.025 + b.output_tokens * 2) / M)


def test_openai_flex_tier_is_sent_recorded_and_priced(fake_env):
    run = _chain("openai:gpt-5-mini", service_tier="flex")("q")
    assert fake_env.requests[0].body["service_tier"] == "flex"
    a = _calls(run).iloc[0]
    assert a.service_tier == "flex"
    # gpt-5-mini flex: $0.125 input, $1 output per MTok
    assert a.cost_usd == pytest.approx((a.input_tokens * 0.125 + a.output_tokens * 1) / M)


def test_openai_streamed_answer_records_the_tier(fake_env):
    run = _chain("openai:gpt-5-mini", service_tier="priority", stream=True)("q")
    a = _calls(run).iloc[0]
    assert a.service_tier == "priority"
    # gpt-5-mini priority: $0.45 input, $3.6 output per MTok
    assert a.cost_usd == pytest.approx((a.input_tokens * 0.45 + a.output_tokens * 3.6) / M)


def test_a_run_wide_tier_a_table_lacks_leaves_the_cost_unknown(fake_env):
    chain = Chain("tiered", [Step("a", "openai:gpt-4o-mini", "{{ input }}"),
                             Step("b", "anthropic:claude-haiku-4-5", "{{ input }}")],
                  cache=False, service_tier="flex")
    run = chain("q")
    calls = _calls(run).set_index("step")
    assert fake_env.requests[0].body["service_tier"] == "flex"
    assert "service_tier" not in fake_env.requests[1].body  # Anthropic has no tiers
    assert calls.loc["a", "service_tier"] == "flex" and not calls.loc["a", "priced"]
    assert calls.loc["b", "priced"]


def test_a_response_cache_hit_keeps_the_cache_columns(fake_env):
    chain = Chain("again", [Step("answer", "anthropic:claude-haiku-4-5", "Q: {{ input }}",
                                 system=LONG, cache_prompt=True)])
    first, again = chain("same"), chain("same")
    a, b = _calls(first).iloc[0], _calls(again).iloc[0]
    assert b.cached and len(fake_env.requests) == 1
    assert b.cache_write_tokens == a.cache_write_tokens > 0
    assert b.saved_usd == pytest.approx(a.cost_usd)


def test_run_repr_and_header_say_what_the_prompt_cache_did(fake_env):
    chain = _chain("anthropic:claude-haiku-4-5", cache_prompt=True)
    first, second = chain("first question"), chain("second question")
    assert "cost $" in repr(first) and "more (writes not paid off yet)" in repr(first)
    b = _calls(second).iloc[0]
    rate = b.cached_tokens / b.input_tokens
    # claude-haiku-4-5: a read is $0.90/MTok under plain input
    saved = b.cached_tokens * 0.90 / M
    note = (f"prompt cache: {rate:.0%} of prompt tokens read from cache, saved "
            f"{orchnb.trace.fmt_usd(saved)}")
    assert note in repr(second) and note in second._repr_html_()
    assert "prompt cache" not in repr(_chain("anthropic:claude-haiku-4-5")("no cache"))


def test_a_call_that_asks_no_tier_records_the_default_one_the_api_reports(fake_env):
    run = _chain("openai:gpt-5-mini")("q")
    assert "service_tier" not in fake_env.requests[0].body
    (a,) = _calls(run).itertuples()
    assert a.service_tier == "default" and a.priced  # the list price, not unknown


def test_a_routers_llm_classifier_asks_for_the_prompt_cache_too(fake_env):
    fake_env.responder = lambda r: "billing"
    clf = Step("triage", "anthropic:claude-haiku-4-5", "Route: {{ input }}", system=LONG,
               cache_prompt="1h")
    router = orchnb.Router("desk", clf, {"billing": Step("b", "sim:echo", "{{ input }}")})
    first, second = router("refund please"), router("where is my parcel")
    body = fake_env.requests[0].body
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    a, b = _calls(first).iloc[0], _calls(second).iloc[0]
    assert a.cache_write_1h_tokens > 0 and b.cached_tokens > 0
    assert "cache_prompt: 1h" in router.to_yaml()
