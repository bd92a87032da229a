"""Batch mode through both real SDKs over the fake server: rounds, prices, per-request errors,
budgets refused before submission, cancellation and resume from the store."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import anthropic  # noqa: F401  (imported at collection, as the other SDK tests do)
import openai  # noqa: F401
import pytest

import orchnb
from orchnb.engine import Budget
from orchnb.exceptions import BudgetExceeded, RunCancelled
from orchnb.models import Message, Usage, call_cost, resolve_model
from orchnb.trace import get_store, stored_batches

OA, AN = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"


def _run(body, **options):
    pipe = orchnb.Chain("batchy", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    return pipe.new_run("x", body=body, cache=False, **options).run_sync()


def _items(n: int, *models: str, max_tokens: int = 20, return_exceptions: bool = True):
    """A body whose items each call ``models`` in turn (a chain inside each item)."""
    async def body(ctx, _):
        async def one(i):
            text = f"q{i}"
            for k, m in enumerate(models):
                r = await ctx.call(m, [Message("user", text)], step=f"s{k}",
                                   max_tokens=max_tokens)
                text = r.text
            return text
        return await ctx.gather([lambda i=i: one(i) for i in range(n)], batch=True,
                                return_exceptions=return_exceptions)
    return body


def _model_spans(run):
    return [s for s in run.trace.spans if s.kind == "model"]


def test_each_step_of_an_item_is_a_round_priced_at_half(fake_env):
    fake_env.batches.delay = 0.0
    run = _run(_items(30, OA, AN))
    assert run.status == "ok", run.error
    assert run.output[3] == "fake reply to: fake reply to: q3"
    spans = _model_spans(run)
    assert len(spans) == 60 and all(s.batch and s.priced for s in spans)
    assert fake_env.batches.creates == 2  # round 1 to openai, round 2 to anthropic
    assert not [r for r in fake_env.requests if r.path.endswith(("completions", "messages"))]
    for s in spans:
        list_usd = call_cost(resolve_model(f"{s.provider}:{s.model}"),
                             Usage(s.input_tokens, s.output_tokens))[0]
        assert s.cost_usd == pytest.approx(list_usd / 2)
        assert s.saved_usd == pytest.approx(list_usd / 2)
    assert {s.status for s in stored_batches(get_store())} == {"ended"}


def test_failed_requests_fail_their_items_only(fake_env):
    fake_env.batches.delay = 0.0
    fake_env.batches.fail_when(lambda r: r.last_user in ("q1", "q4"), status=400,
                               message="context too long")
    for model in (OA, AN):
        run = _run(_items(6, model))
        assert run.status == "ok"
        failed = [i for i, x in enumerate(run.output) if isinstance(x, Exception)]
        assert failed == [1, 4]
        assert "batch request r1 failed" in str(run.output[1])
        bad = [s for s in _model_spans(run) if s.status == "error"]
        assert len(bad) == 2 and all("failed" in s.error for s in bad)
    rows = stored_batches(get_store())
    assert [r.failed for r in rows] == [["r1", "r4"], ["r1", "r4"]]


def test_budget_refused_before_submission(fake_env):
    per_call = call_cost(resolve_model(OA), Usage(20, 500), batch=True)[0]
    with pytest.raises(BudgetExceeded) as e:
        _run(_items(40, OA, max_tokens=500, return_exceptions=False),
             budget=Budget(max_usd=per_call * 10))
    text = str(e.value)
    assert "batch of 40 requests to openai:gpt-4o-mini" in text
    assert "nothing was submitted" in text and "the cost budget of $" in text
    assert "max output tokens" in text
    assert fake_env.batches.creates == 0


def test_budget_settled_after_the_batch(fake_env):
    fake_env.batches.delay = 0.0
    run = _run(_items(20, OA, max_tokens=50), budget=Budget(max_usd=1.0, max_calls=20))
    assert run.status == "ok"
    assert run.cost_usd == pytest.approx(sum(s.cost_usd for s in _model_spans(run)))


def test_interrupt_cancels_the_provider_batch(fake_env):
    fake_env.batches.delay = None  # runs until cancelled
    pipe = orchnb.Chain("batchy", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    run = pipe.new_run("x", body=_items(25, AN), cache=False)

    def stop_when_submitted():
        deadline = time.monotonic() + 10
        while fake_env.batches.creates == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        run.cancel()

    threading.Thread(target=stop_when_submitted, daemon=True).start()
    with pytest.raises(RunCancelled):
        run.run_sync()
    (batch,) = fake_env.batches.batches.values()
    assert batch.cancelled
    assert [b.status for b in stored_batches(get_store())] == ["cancelled"]


def test_restart_mid_batch_resumes_without_resubmitting(fake_env, monkeypatch):
    """A kernel that dies mid-batch cannot cancel it: the next run (fresh providers and SDK
    clients, same fake server and store) polls that batch instead of paying twice."""
    from orchnb.models import _batches, _provider

    fake_env.batches.delay = None
    dead = asyncio.Event()

    async def died(self, batch_id):  # the killed kernel never tells the provider
        dead.set()

    cancel = _batches.OpenAIBatches.cancel
    monkeypatch.setattr(_batches.OpenAIBatches, "cancel", died)
    pipe = orchnb.Chain("batchy", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    first = pipe.new_run("x", body=_items(30, OA), cache=False)
    threading.Thread(target=lambda: (_wait(lambda: fake_env.batches.creates), first.cancel()),
                     daemon=True).start()
    with pytest.raises(RunCancelled):
        first.run_sync()
    assert dead.is_set()
    monkeypatch.setattr(_batches.OpenAIBatches, "cancel", cancel)
    monkeypatch.setattr(_provider, "_INSTANCES", {})  # a new kernel: new providers, clients
    from orchnb.trace import mark_batch

    (stored,) = stored_batches(get_store())
    mark_batch(get_store(), stored.batch_id, "running")  # as the dead kernel left it
    fake_env.batches.delay = 0.0
    run = _run(_items(30, OA))
    assert run.status == "ok" and run.output[7] == "fake reply to: q7"
    assert fake_env.batches.creates == 1
    assert all(s.batch for s in _model_spans(run))
    assert [b.status for b in stored_batches(get_store())] == ["ended"]


def _wait(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_sim_models_are_simulated_batches_priced_as_batch(fake_env):
    orchnb.models.sim_model("cheap-batch", default="ok", priced_as=OA)
    run = _run(_items(5, "sim:cheap-batch"))
    spans = _model_spans(run)
    assert run.status == "ok" and all(s.batch and s.simulated for s in spans)
    full = call_cost(resolve_model(OA), Usage(spans[0].input_tokens, spans[0].output_tokens))[0]
    assert spans[0].cost_usd == pytest.approx(full / 2)
    assert fake_env.batches.creates == 0  # no provider batch API behind a sim model


def test_progress_shows_the_providers_counts(fake_env):
    fake_env.batches.delay = 0.05
    fake_env.batches.fail_when(lambda r: r.last_user == "q0")
    seen = []

    class Watch:
        def on_progress(self, *, label, done, total, failed):
            if label.startswith("batch"):
                seen.append((label, done, total, failed))

    orchnb.add_hook(Watch())
    try:
        _run(_items(25, OA))
    finally:
        orchnb.remove_hook(Watch)
    assert seen[-1] == (f"batch {OA}", 25, 25, 1)
    assert any(d < 25 for _, d, _, _ in seen)


def test_non_batch_fanouts_and_cache_hits_never_wait(fake_env):
    fake_env.batches.delay = 0.0
    pipe = orchnb.Chain("batchy", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    first = pipe.new_run("x", body=_items(5, OA)).run_sync()
    again = pipe.new_run("x", body=_items(5, OA)).run_sync()  # cache on: answered at once
    assert first.status == again.status == "ok"
    assert fake_env.batches.creates == 1
    assert all(s.cached for s in _model_spans(again))
    assert math.isclose(again.cost_usd, 0.0)


def test_a_round_larger_than_the_providers_limit_is_split(fake_env, monkeypatch):
    from orchnb.models import _batches

    monkeypatch.setattr(_batches.OpenAIBatches, "max_requests", 10)
    fake_env.batches.delay = 0.0
    run = _run(_items(25, OA))
    assert run.status == "ok" and run.output[24] == "fake reply to: q24"
    assert fake_env.batches.creates == 3
    assert sorted(len(b.keys) for b in stored_batches(get_store())) == [5, 10, 10]


def test_run_repr_and_summary_say_what_batching_saved(fake_env):
    from orchnb.viz import summary

    fake_env.batches.delay = 0.0
    run = _run(_items(4, AN))
    saved = sum(s.saved_usd for s in _model_spans(run))
    assert saved > 0 and "batch mode saved" in repr(run) and "4 batch calls" in run._repr_html_()
    row = summary(run.trace.df).loc[run.id]
    assert row["batch_calls"] == 4 and row["batch_saved_usd"] == pytest.approx(saved)


def test_hostile_batch_output_lines_become_request_errors():
    from orchnb.models import ModelRequest, ModelResponse
    from orchnb.models._batches import OpenAIBatches

    requests = {f"r{i}": ModelRequest([Message("user", "hi")]) for i in range(4)}
    good = {"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}]}
    import json

    lines = ["not json", "[1, 2]", json.dumps({"custom_id": "zz"}), "{" * 5000,
             json.dumps({"custom_id": "r0", "response": {"status_code": 200, "body": good}}),
             json.dumps({"custom_id": "r1", "response": {"status_code": 200,
                                                         "body": {"choices": "x"}}}),
             json.dumps({"custom_id": "r2", "response": None,
                         "error": {"code": "batch_expired", "message": "too late"}}),
             json.dumps({"custom_id": "r3", "response": {"status_code": 500, "body": "oops"}})]
    out: dict = {}
    api = OpenAIBatches(None)  # type: ignore[arg-type]
    for line in lines:
        api._line(line, "gpt-4o-mini", requests, out)
    assert sorted(out) == ["r0", "r1", "r2", "r3"]
    assert isinstance(out["r0"], ModelResponse) and out["r0"].text == "ok"
    assert "malformed answer" in str(out["r1"])
    assert "batch_expired: too late" in str(out["r2"])
    assert "(500)" in str(out["r3"])


def test_a_batch_read_back_is_not_attached_again(fake_env):
    """Without the cache, a second run pays again (repeats stay independent) and a failed
    request is re-submitted, not read back failed from the first batch."""
    fake_env.batches.delay = 0.0
    fake_env.batches.fail_when(lambda r: r.last_user == "q0" and fake_env.batches.creates < 2)
    first = _run(_items(3, OA))
    second = _run(_items(3, OA))
    assert isinstance(first.output[0], Exception) and second.output[0] == "fake reply to: q0"
    assert fake_env.batches.creates == 2
