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


# -- a budget plus retries never deadlocks (issue 21) ------------------------------------------
# An item waiting to retry used to give back its fan-out slot but keep its budget reservation:
# new items took the slots and waited on that reservation, the retrying item waited for a slot.


def _bounded(fn, seconds: float):
    """Run ``fn`` in a thread; a hang fails the test instead of hanging the suite."""
    import threading

    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the run did not end within {seconds} s (deadlock)"
    return box


def test_budget_plus_timeouts_and_retries_ends_with_the_budget_error(tmp_path):
    import orchnb

    orchnb.sim_model("slow-dl", default="ok", latency=1.0)
    pipe = MapReduce("m", Step("s", "sim:slow-dl", "{{ input }}"), concurrency=2,
                     on_error="skip", cache=False)
    box = _bounded(lambda: pipe(list("abcd"), budget=Budget(max_calls=2), timeout=0.1), 20)
    error = box.get("error")
    assert isinstance(error, BudgetExceeded), box
    assert "2 model calls" in str(error)  # the two timed-out requests were calls sent
    spans = error.run.trace.spans
    assert all(s.status != "running" for s in spans)


@pytest.mark.parametrize("budget", [Budget(max_calls=27), Budget(max_usd=0.001),
                                    Budget(max_tokens=5_000)])
def test_budget_plus_500s_on_every_request_ends(fake_env, budget):
    fake_env.fault_rates(rate_500=1.0)
    pipe = MapReduce("fan", map=Step("m", "openai:gpt-4o-mini", "Summarize: {{ input }}"),
                     reduce=lambda outputs: len(outputs), concurrency=8, cache=False,
                     on_error="skip", retry=RetryPolicy(max_attempts=4, backoff=0.01,
                                                        max_backoff=0.02))
    box = _bounded(lambda: pipe(ITEMS[:40], budget=budget), 60)
    assert "error" in box or "value" in box
    requests = len(served(fake_env))
    if budget.max_calls is not None:  # every request counts, failed ones included
        assert requests <= budget.max_calls


def test_budget_plus_429_retry_after_ends(fake_env):
    fake_env.fault_rates(rate_429=0.2)
    fake_env.retry_after = 0.05
    pipe = MapReduce("fan", map=Step("m", "openai:gpt-4o-mini", "Summarize: {{ input }}"),
                     reduce=lambda outputs: len(outputs), concurrency=4, cache=False,
                     retry=RetryPolicy(max_attempts=5, backoff=0.01, max_backoff=0.05))
    box = _bounded(lambda: pipe(ITEMS[:60], budget=Budget(max_usd=0.001)), 60)
    error = box.get("error")
    assert error is None or isinstance(error, BudgetExceeded), box


def test_budget_error_says_unknown_not_zero_for_unpriced_calls(server):
    pipe = MapReduce("fan", map=Step("m", "openai:no-such-priced-model", "Say: {{ input }}"),
                     reduce=lambda outputs: len(outputs), concurrency=1, cache=False)
    with pytest.raises(BudgetExceeded) as info:
        pipe(ITEMS[:5], budget=Budget(max_calls=2))
    text = str(info.value)
    assert "$0.000000" not in text and "unknown amount" in text
