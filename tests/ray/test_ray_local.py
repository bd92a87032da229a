"""executor="ray" without a cluster: the spec, the refusals, the shared ledger and limiter."""

from __future__ import annotations

import asyncio

import pytest

import orchnb
from orchnb import MapReduce, Step
from orchnb.engine import Budget, Charge, LedgerServer, SharedLedger
from orchnb.exceptions import BudgetExceeded, SpecError
from orchnb.patterns import RayExecutor
from orchnb.patterns._ray_executor import _Governor


def _mr(**kw):
    return MapReduce("m", map=Step("up", "sim:echo", "{{ input }}"), executor="ray", **kw)


@pytest.mark.parametrize("how", [{"stepping": True}, {"approve_tools": True},
                                 {"breakpoints": ["up"]}])
def test_stepping_a_ray_pipeline_is_refused_before_it_runs(how):
    mr = _mr()
    with pytest.raises(SpecError, match="stay in the kernel"):
        mr.start(["a"], **how)
    chain = orchnb.Chain("outer", [mr])
    with pytest.raises(SpecError, match="runs on Ray"):
        chain.start(["a"], **how)
    assert mr.runs == [] and chain.runs == []


def test_yaml_executor_ray_builds_a_ray_mapreduce():
    pipe = orchnb.patterns.from_yaml(
        "pattern: mapreduce\nexecutor: ray\nmap: {model: 'sim:echo', prompt: '{{ input }}'}\n",
        name="m")
    assert isinstance(pipe.executor, RayExecutor)
    with pytest.raises(SpecError):
        MapReduce("m", map=str.upper, executor="spark")


def test_a_pipeline_pickles_as_model_strings_and_prompt_sources():
    import pickle

    mr = MapReduce("m", map=Step("up", "sim:echo", "{{ input }}"))
    mr(["x"])  # a past run must not travel with it
    clone = pickle.loads(pickle.dumps(mr))
    assert clone.map.model.id == "sim:echo" and clone.runs == []
    assert clone.map.prompt.render(input="hi") == "hi"


def test_shared_ledger_holds_one_cap_for_all_clients():
    server = LedgerServer(Budget(max_calls=3))

    async def reserve(step, need):
        return server.try_reserve(step, need)

    def client():
        return SharedLedger(Budget(max_calls=3), reserve, server.settle)

    async def main():
        a, b = client(), client()
        held = [await a.reserve("s", Charge(1, 0, 0.0, True)) for _ in range(2)]
        held.append(await b.reserve("s", Charge(1, 0, 0.0, True)))
        for h in held:
            (a if h is held[0] else b).settle(h, Charge(1, 0, 0.0))
        with pytest.raises(BudgetExceeded):
            await b.reserve("s", Charge(1, 0, 0.0, True))

    asyncio.run(main())
    assert server.ledger.spent.calls == 3


def test_rate_limiter_spaces_calls_after_a_one_second_burst():
    gov = _Governor(Budget(), {"openai": 10.0})
    waits = [gov.acquire("openai") for _ in range(30)]
    assert waits[:9] == [0.0] * 9  # a second's worth at once
    assert waits[-1] > waits[15] > 0  # then one every 0.1 s
    assert abs((waits[-1] - waits[-2]) - 0.1) < 0.01


@pytest.mark.parametrize("call", ["evaluate", "compare"])
def test_a_bad_executor_on_an_eval_fails_before_any_call(call):
    calls = []

    def guess(text):
        calls.append(text)
        return "billing"

    rows = [{"text": "refund please", "label": "billing"}]
    with pytest.raises(SpecError, match="executor must be 'local', 'ray' or a RayExecutor"):
        if call == "evaluate":
            orchnb.evaluate(guess, rows, expected="label", executor="spark", progress=False)
        else:
            orchnb.compare([guess, orchnb.Chain("again", [guess])], rows, expected="label",
                           executor="spark", progress=False, save=False)
    assert calls == []
