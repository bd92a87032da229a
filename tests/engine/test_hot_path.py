"""What the lean hot path must keep doing: spans timed and nested as before (a span is its own
scope, a fan-out item its own), levers that still reset and restore, a run's done flag that
wakes a waiter, and the cached per-model facts and environment reads that follow changes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from orchnb import Chain, MapReduce, SimModel, Step
from orchnb._home import home_key
from orchnb.engine import Run, RunContext, call_levers, current_levers, defaults, set_levers
from orchnb.engine._loop import DoneFlag
from orchnb.models import Message, ModelRequest, resolve_model
from orchnb.models._sim import SimProvider, _to_response


def engine_run(body: Any) -> Run:
    options = defaults().merged(persist=False, progress=False, cache=False)
    return Run("p", "custom", "x", body, options)


def test_spans_nest_time_and_keep_their_item_in_a_fan_out():
    pipe = MapReduce("hp_map", map=Step("work", "sim:echo", "{{ input }}"), cache=False,
                     persist=False)
    run = pipe(["a", "b", "c"])
    by_id = {s.span_id: s for s in run.trace.spans}
    root = next(s for s in run.trace.spans if s.kind == "run")
    models = [s for s in run.trace.spans if s.kind == "model"]
    assert sorted(s.item for s in models) == [0, 1, 2]
    for m in models:
        step = by_id[m.parent_id]
        assert (step.kind, step.step, step.item) == ("step", "work", m.item)
        assert step.start <= m.start <= m.end <= step.end  # type: ignore[operator]
        assert m.latency_ms is not None and m.latency_ms >= 0
    assert all(s.start >= root.start and s.end <= root.end  # type: ignore[operator]
               for s in run.trace.spans)
    assert abs(root.start - time.time()) < 60  # wall-clock, though timed on perf_counter


def test_a_chain_s_spans_point_at_their_parents():
    run = Chain("hp_chain", [Step("a", "sim:echo", "{{ input }}"),
                             Step("b", "sim:echo", "{{ input }}!")], cache=False,
                persist=False)("hi")
    by_id = {s.span_id: s for s in run.trace.spans}
    kinds = {s.step: by_id[s.parent_id].kind for s in run.trace.spans if s.kind == "step"}
    assert kinds == {"a": "run", "b": "run"}
    assert [by_id[s.parent_id].step for s in run.trace.spans if s.kind == "model"] == ["a", "b"]
    assert run.output == "hi!"


def test_current_span_is_the_pattern_s_own_inside_a_span_and_in_a_fan_out():
    seen: list[str] = []

    async def body(ctx: RunContext, x: Any) -> str:
        seen.append(ctx.current_span().kind)
        with ctx.span("step", "inner"):
            seen.append(ctx.current_span().step)

            async def item() -> str:
                return ctx.current_span().step

            seen.extend(await ctx.gather([item, item]))  # type: ignore[arg-type]
        return "ok"

    assert engine_run(body).run_sync().output == "ok"
    assert seen == ["run", "inner", "inner", "inner"]


def test_levers_reset_inside_and_come_back_after():
    assert current_levers() == (None, None)
    with call_levers("5m", "flex"):
        assert current_levers() == ("5m", "flex")
        with call_levers():  # a step without levers inside an agent with some: none
            assert current_levers() == (None, None)
        assert current_levers() == ("5m", "flex")
        assert set_levers("5m", "flex") is None  # the same levers: no context change
    assert current_levers() == (None, None)
    assert set_levers(None, None) is None


def test_done_flag_wakes_a_waiter_set_before_or_after_it_waits():
    early = DoneFlag()
    early.set()
    assert early.is_set() and early.wait(0)
    late = DoneFlag()
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(late.wait(5)))
    waiter.start()
    time.sleep(0.01)
    assert not late.is_set()
    late.set()
    waiter.join(5)
    assert woke == [True]
    assert DoneFlag().wait(0) is False


def test_a_sim_text_reply_is_the_response_the_general_path_makes():
    SimModel("hp_fixed", fn=lambda r: "an answer").register()
    request = ModelRequest([Message("system", "be brief"), Message("user", "a question")])
    fast = asyncio.run(SimProvider().request("hp_fixed", request))
    assert fast == _to_response("an answer", request, "hp_fixed")
    assert fast.usage.estimated and fast.simulated


def test_model_traits_are_the_model_s_facts():
    m = resolve_model("sim:echo")
    t = m.traits
    assert (t.id, t.simulated, t.caps) == (m.id, m.simulated, m.capabilities)
    assert m.traits is t  # worked out once
    assert resolve_model("sim:echo") == m  # the cache is no part of equality


def test_home_key_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ORCHNB_HOME", str(tmp_path))
    assert home_key() == (str(tmp_path), None)
    monkeypatch.delenv("ORCHNB_HOME")
    monkeypatch.chdir(tmp_path)
    assert home_key() == (None, str(tmp_path))
