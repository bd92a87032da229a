"""Budgets hold at any concurrency: a call reserves its worst case before it is made.

A 1,000-item map at concurrency 50 through the real openai SDK over loopback HTTP; each cap is
checked against what the server actually served (its request log), not only the trace.
"""

from __future__ import annotations

import math

import pytest

from orchnb import Budget, BudgetExceeded, MapReduce, RetryPolicy, Step
from orchnb.testing import FakeReply

ITEMS = [f"item {i} " + "lorem ipsum dolor sit amet " * 40 for i in range(300)]


def mapper(max_tokens: int | None = None) -> MapReduce:
    return MapReduce("fan", map=Step("m", "openai:gpt-4o-mini", "Summarize: {{ input }}",
                                     max_tokens=max_tokens),
                     reduce=lambda outputs: len(outputs), concurrency=50, cache=False,
                     retry=RetryPolicy(max_attempts=1))


@pytest.fixture
def server(fake_env):
    fake_env.latency = 0.02
    fake_env.responder = lambda request: FakeReply(text="short summary " * 20, output_tokens=60)
    return fake_env


def served(server) -> list:
    return [r for r in server.requests if r.api == "openai"]


def test_max_calls_is_never_exceeded_at_concurrency_50(server):
    with pytest.raises(BudgetExceeded) as info:
        mapper()(ITEMS, budget=Budget(max_calls=10))
    assert len(served(server)) == 10  # exactly the cap: a call is one call, known in advance
    run = info.value.run
    model_spans = [s for s in run.trace.spans if s.kind == "model" and s.status == "ok"]
    assert len(model_spans) == 10
    assert "10 model calls" in str(info.value)


def test_max_usd_overshoots_by_at_most_one_call(server):
    cap = 0.002
    with pytest.raises(BudgetExceeded) as info:
        mapper()(ITEMS, budget=Budget(max_usd=cap))
    run = info.value.run
    costs = [s.cost_usd for s in run.trace.spans if s.kind == "model" and s.status == "ok"]
    assert len(costs) == len(served(server))
    assert sum(costs) <= cap + max(costs)
    assert f"${sum(costs):.6f} spent" in str(info.value)  # the error reports what was spent


def test_max_tokens_overshoots_by_at_most_one_call_without_step_max_tokens(server):
    cap = 20_000
    with pytest.raises(BudgetExceeded) as info:
        mapper()(ITEMS, budget=Budget(max_tokens=cap))
    run = info.value.run
    used = [s.input_tokens + s.output_tokens for s in run.trace.spans
            if s.kind == "model" and s.status == "ok"]
    assert sum(used) <= cap + max(used)
    assert f"{sum(used):,} tokens" in str(info.value)


def test_max_tokens_is_never_exceeded_when_every_step_sets_max_tokens(server):
    cap = 20_000
    with pytest.raises(BudgetExceeded) as info:
        mapper(max_tokens=80)(ITEMS, budget=Budget(max_tokens=cap))
    used = sum(s.input_tokens + s.output_tokens for s in info.value.run.trace.spans
               if s.kind == "model" and s.status == "ok")
    assert used <= cap
    assert used > cap * 0.7  # and the budget was actually used, not refused early


def test_a_run_under_its_caps_runs_at_full_concurrency(server):
    run = mapper()(ITEMS[:100], budget=Budget(max_calls=1000, max_usd=10.0))
    assert run.output == 100 and len(served(server)) == 100
    assert all(s.status == "ok" for s in run.trace.spans if s.kind == "model")


def test_unknown_price_stays_unknown_when_served_from_the_cache(fake_env):
    fake_env.responder = lambda request: FakeReply(text="ok", input_tokens=10, output_tokens=2)
    pipe = MapReduce("c", map=Step("m", "openai:no-such-model-xyz", "{{ input }}"),
                     reduce=lambda outputs: outputs, cache=True)
    first = pipe(["a"])
    second = pipe(["a"])
    m1 = next(s for s in first.trace.spans if s.kind == "model")
    m2 = next(s for s in second.trace.spans if s.kind == "model")
    assert m1.priced is False and math.isnan(m1.cost_usd)
    assert m2.cached is True and m2.priced is False and math.isnan(m2.cost_usd)
    assert math.isnan(m2.saved_usd)
    assert second.unpriced_calls == 1 and second.cost_usd == 0.0
    assert len(served(fake_env)) == 1


def test_a_priced_cache_hit_costs_nothing_and_reports_the_saving(fake_env):
    fake_env.responder = lambda request: FakeReply(text="ok", input_tokens=1000,
                                                   output_tokens=100)
    pipe = MapReduce("c", map=Step("m", "openai:gpt-4o-mini", "{{ input }}"),
                     reduce=lambda outputs: outputs, cache=True)
    first = next(s for s in pipe(["a"]).trace.spans if s.kind == "model")
    second = next(s for s in pipe(["a"]).trace.spans if s.kind == "model")
    assert first.priced and first.cost_usd > 0
    assert second.cached and second.priced and second.cost_usd == 0.0
    assert second.saved_usd == pytest.approx(first.cost_usd)
