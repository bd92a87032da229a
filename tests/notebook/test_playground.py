"""The playground and trace view through their Python side: the same methods the buttons call."""

from __future__ import annotations

import json
import signal
import time

import pytest

import orchnb
from orchnb import Agent, Chain, MapReduce, PlanExecute, SimModel, Step, Team
from orchnb.exceptions import OrchnbError, TemplateError
from orchnb.notebook import Playground, TraceView
from orchnb.notebook._graph_layout import layout

ROUTER_YAML = """\
pattern: router
classifier:
  model: sim:pg-triage
  prompt: "Route: {{ input }}"
routes:
  billing:
    model: sim:echo
    prompt: "Billing: {{ input }}"
  technical:
    pattern: chain
    name: tech
    steps:
      - name: diagnose
        model: sim:echo
        prompt: "Diagnose: {{ input }}"
      - name: reply
        model: sim:echo
        prompt: "Reply: {{ input }}"
default: technical
"""


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def lookup(q: str) -> str:
    """Look a word up."""
    return f"{q}: a word"


@pytest.fixture
def router():
    SimModel("pg-triage", rules={"refund": "billing"}, default="technical").register()
    return orchnb.from_yaml(ROUTER_YAML, "triage")


@pytest.fixture
def agent():
    policy = Agent.sim_policy([("add", {"a": 2, "b": 3}), ("lookup", {"q": "sum"})],
                              "Done: {observation}")
    SimModel("pg-calc", fn=policy).register()
    return Agent("helper", "sim:pg-calc", [add, lookup], max_iterations=5)


def step_all(pg: Playground, limit: int = 40) -> list[list[str]]:
    """Click Step until the run ends; the highlighted nodes at each pause."""
    seen = []
    pg.step()
    pg.wait(10)
    for _ in range(limit):
        if pg.current_run.done:
            return seen
        seen.append(pg.live["current"])
        pg.step()
        pg.wait(10)
    raise AssertionError("the run did not end")


def test_step_highlights_each_call_and_the_detail_pane_follows(router):
    pg = Playground(router, input="my screen is black")
    pg.step()
    pg.wait(10)
    run = pg.current_run
    assert pg.live["status"] == "paused" and pg.live["current"] == ["triage/classify"]
    assert pg.selected == "triage/classify"
    waiting = pg.detail["waiting"][0]
    assert waiting["messages"] == [{"role": "user", "content": "Route: my screen is black"}]
    assert [m.content for m in run.pending[0].request.messages] == ["Route: my screen is black"]
    pg.step()
    pg.wait(10)
    assert pg.live["current"] == ["triage/tech/diagnose"]
    assert pg.live["nodes"]["triage/classify"]["s"] == "ok"
    assert pg.live["nodes"]["triage/tech"]["s"] == "running"
    pg.step()
    pg.wait(10)
    pg.step()
    pg.wait(10)
    assert run.status == "ok" and pg.live["done"]
    assert pg.live["output"] == "Reply: Diagnose: my screen is black"
    assert pg.live["route"] == "technical"
    assert "triage/billing" not in pg.live["nodes"]
    pg.selected = "triage/tech/diagnose"
    call = pg.detail["calls"][0]
    assert call["model"] == "sim:echo" and call["simulated"]
    assert call["output"] == "Diagnose: my screen is black"
    assert call["input_tokens"] > 0 and call["latency_ms"] is not None


@pytest.mark.parametrize("kind", ["plan_execute", "team", "mapreduce"])
def test_stepping_reaches_inside_nested_patterns(kind, agent):
    SimModel("pg-planner", default='["add them", "look it up"]').register()
    SimModel("pg-boss", replies=["calc: add", "FINISH: done"]).register()
    pipe = {
        "plan_execute": lambda: PlanExecute("pe", "sim:pg-planner", agent),
        "team": lambda: Team("crew", "sim:pg-boss", {"calc": agent}),
        "mapreduce": lambda: MapReduce("mr", Chain("each", [Step("up", "sim:echo", "{{ input }}")]),
                                       concurrency=1),
    }[kind]()
    pg = Playground(pipe, input='["a", "b"]' if kind == "mapreduce" else "2 + 3")
    seen = {k for keys in step_all(pg) for k in keys}
    nested = {"plan_execute": {"pe/planner", "pe/helper/helper", "pe/helper/add"},
              "team": {"crew/supervisor", "crew/calc/helper", "crew/calc/lookup"},
              "mapreduce": {"mr/each/up"}}[kind]
    assert nested <= seen
    assert pg.current_run.status == "ok"
    if kind == "mapreduce":
        assert pg.live["nodes"]["mr/each/up"]["n"] == 2  # the fan-out's item count


def test_buttons_return_at_once_while_the_run_goes_on():
    SimModel("pg-slow", default="ok", latency=0.15).register()
    pipe = Chain("slow", [Step(f"s{i}", "sim:pg-slow", f"{i} {{{{ input }}}}")
                          for i in range(4)])
    pg = Playground(pipe, input="x")
    t0 = time.perf_counter()
    pg.run()
    assert time.perf_counter() - t0 < 0.1
    assert pg.busy
    pg.step()  # while running, Step pauses at the next boundary
    run = pg.wait(10)
    assert run.status == "paused" and not pg.busy
    pg.run()
    assert pg.wait(10).status == "ok"


def test_stop_cancels_and_keeps_the_partial_trace():
    SimModel("pg-slow2", default="ok", latency=0.2).register()
    pg = Playground(Chain("slow2", [Step(f"s{i}", "sim:pg-slow2", f"{i} {{{{ input }}}}")
                                   for i in range(6)]))
    pg.run()
    time.sleep(0.3)
    pg.stop()
    run = pg.wait(10)
    assert run.status == "cancelled" and 0 < run.calls < 6
    assert pg.live["status"] == "cancelled" and pg.history[-1]["status"] == "cancelled"
    pg.reset()
    assert pg.live == {} and pg.current_run is None
    pg.run()
    pg.stop()  # at once, before the run has made its first call
    assert pg.wait(10).status == "cancelled"


def test_a_kernel_interrupt_stops_a_background_run(monkeypatch):
    class Kernel:
        saved_sigint_handler = signal.SIG_IGN

    class Shell:
        kernel = Kernel()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    SimModel("pg-slow3", default="ok", latency=0.2).register()
    pg = Playground(Chain("slow3", [Step(f"s{i}", "sim:pg-slow3", f"{i} {{{{ input }}}}")
                                   for i in range(6)]))
    pg.run()
    handler = Shell.kernel.saved_sigint_handler
    assert callable(handler)  # installed where ipykernel restores it between cells
    time.sleep(0.3)
    handler(signal.SIGINT, None)
    assert pg.wait(10).status == "cancelled"


def test_edits_change_the_next_run_and_write_back_to_the_pipeline(router):
    pg = Playground(router, input="refund me")
    pg.edit("triage/classify", prompt="Which team? {{ input }}", temperature="0.3")
    pg.edit("triage/billing", model="sim:pg-triage")
    assert pg.edits == {"triage/classify": {"prompt": "Which team? {{ input }}",
                                            "temperature": 0.3},
                        "triage/billing": {"model": "sim:pg-triage"}}
    assert router.classifier.prompt.source == "Route: {{ input }}"  # the pipeline is untouched
    pg.run()
    run = pg.wait(10)
    model_spans = [s for s in run.trace.spans if s.kind == "model"]
    assert model_spans[0].input == "Which team? refund me"
    assert model_spans[1].model == "pg-triage"
    assert run in router.runs  # runs of the working copy show up on the pipeline
    rebuilt = orchnb.from_yaml(pg.yaml, "triage")
    assert rebuilt.classifier.prompt.source == "Which team? {{ input }}"
    assert rebuilt.classifier.temperature == 0.3
    assert rebuilt.routes["billing"].model.id == "sim:pg-triage"
    pg.write_back()
    assert router.classifier.prompt.source == "Which team? {{ input }}"
    assert router.routes["billing"].model.id == "sim:pg-triage"
    assert router.source == rebuilt.source and pg.edits == {}


def test_pattern_parameters_are_editable(agent):
    pe = PlanExecute("pe", "sim:echo", agent)
    pg = Playground(pe)
    fields = {f["name"] for f in pg.params["pe/helper"]}
    assert {"model", "prompt", "max_iterations", "temperature"} <= fields
    pg.edit("pe/helper", max_iterations="3")
    assert pg._work.executor.max_iterations == 3 and agent.max_iterations == 5
    mr = MapReduce("mr", Step("up", "sim:echo", "{{ input }}"))
    pg2 = Playground(mr)
    pg2.edit("mr", concurrency=2, chunk_tokens=500)
    assert (pg2._work.concurrency, pg2._work.chunk_tokens) == (2, 500)
    assert "concurrency" in pg2.yaml and "chunk_tokens: 500" in pg2.yaml


def test_bad_edits_are_refused_with_a_message(router):
    pg = Playground(router)
    with pytest.raises(TemplateError, match="undefined template variable"):
        pg.edit("triage/classify", prompt="{{ nope }}")
    pg._on_msg(pg, {"action": "edit", "key": "triage/classify",
                    "fields": {"temperature": "hot"}}, [])
    assert pg.message["level"] == "error" and "temperature must be a number" in pg.message["text"]
    pg._on_msg(pg, {"action": "edit", "key": "triage/billing", "fields": {"model": "nope"}}, [])
    assert pg.message["level"] == "error"
    assert router.classifier.prompt.source == "Route: {{ input }}"


def test_tool_calls_wait_for_approve_with_edited_arguments_or_reject(agent):
    pg = Playground(agent, input="what is 2 + 3?", approve_tools=True)
    pg.run()
    pg.wait(10)
    assert pg.live["pending"][0]["kind"] == "tool"
    assert pg.live["pending"][0]["arguments"] == {"a": 2, "b": 3}
    assert pg.live["current"] == ["helper/add"]
    pg.approve({"a": 20, "b": 3})  # the run goes on to the next tool call, and waits again
    pg.wait(10)
    assert pg.live["pending"][0]["name"] == "lookup"
    pg.reject("not needed")
    run = pg.wait(10)
    tools = [s for s in run.trace.spans if s.kind == "tool"]
    assert json.loads(tools[0].input) == {"a": 20, "b": 3} and tools[0].output == "23"
    assert tools[1].error == "rejected by user"
    assert run.output == "Done: The user rejected this call to lookup: not needed"
    assert pg.live["nodes"]["helper/lookup"]["s"] == "rejected"
    with pytest.raises(OrchnbError, match="no tool call is waiting"):
        pg.approve()


def test_history_keeps_the_last_runs_and_compares_two(router):
    pg = Playground(router, input="my screen")
    for text in ("my screen", "refund please"):
        pg.input_text = text
        pg.run()
        pg.wait(10)
    assert [h["route"] for h in pg.history] == ["technical", "billing"]
    assert all(h["cost_usd"] == 0 and h["latency_ms"] > 0 for h in pg.history)
    a, b = (h["run_id"] for h in pg.history)
    pg._on_msg(pg, {"action": "compare", "ids": [a, b]}, [])
    assert pg.comparison["first_divergence"] == "classify"
    assert pg.comparison["rows"][0]["step"] == "(run)"
    for _ in range(11):
        pg.run()
        pg.wait(10)
    assert len(pg.history) == 10 and pg.history[-1]["n"] == 13


def test_a_thousand_item_map_is_throttled():
    pipe = MapReduce("big", Step("up", "sim:echo", "{{ input }}"), concurrency=50)
    pg = Playground(pipe, input=json.dumps([f"item {i}" for i in range(1000)]))
    updates = []
    pg.observe(lambda change: updates.append(time.perf_counter()), names="live")
    t0 = time.perf_counter()
    pg.run()
    run = pg.wait(30)
    elapsed = time.perf_counter() - t0
    assert run.status == "ok" and run.calls == 1000
    assert pg.live["nodes"]["big/up"]["n"] == 1000
    # at most ~10 refreshes a second (+ the start and the final one), not one per span
    assert len(updates) <= elapsed * 10 + 4, (len(updates), elapsed)


def test_trace_view_follows_one_run_or_all(router):
    everything = TraceView()
    try:
        run = router("refund please")
        deadline = time.time() + 5
        while everything.total < len(run.trace.spans) and time.time() < deadline:
            time.sleep(0.05)
        assert everything.total == len(run.trace.spans)
        assert {r["kind"] for r in everything.rows} >= {"run", "step", "model"}
        one = TraceView(run)
        assert one.total == len(run.trace.spans) and one.rows[-1]["kind"] == "run"
        assert "model" in repr(one) or "spans" in repr(one)
    finally:
        everything.close()


def test_trace_view_stop_keeps_the_table_and_stops_following(router):
    view = TraceView()
    run = router("refund please")
    view.stop()  # the demo's last line: the rows of the runs before it stay on the page
    assert view.total == len(run.trace.spans) and view.comm is not None
    router("where is my invoice")
    time.sleep(0.3)
    assert view.total == len(run.trace.spans)
    view.close()


def test_trace_view_money_is_fmt_usd_and_unknown_prices_say_unpriced(fake_env):
    from orchnb.testing import FakeReply

    fake_env.responder = lambda request: FakeReply(text="ok", input_tokens=1000,
                                                   output_tokens=100)
    run = orchnb.Chain("m", [orchnb.Step("a", "openai:gpt-4o-mini", "{{ input }}"),
                             orchnb.Step("b", "openai:no-such-model-xyz", "{{ input }}")],
                       cache=False)("x")
    rows = {r["step"]: r for r in TraceView(run).rows if r["kind"] == "model"}
    cost = next(s.cost_usd for s in run.trace.spans if s.step == "a" and s.kind == "model")
    assert rows["a"]["cost"] == orchnb.trace.fmt_usd(cost) == "$0.00021"
    assert rows["b"]["cost"] == "unpriced"
    assert "unpriced" in TraceView(run).static_html()


def test_reprs_are_cheap_and_the_bundle_has_static_html(router):
    pg = Playground(router, input="refund please")
    assert repr(pg) == "<Playground 'triage' (router, 4 editable nodes): idle, 0 runs>"
    pg.run()
    pg.wait(10)
    data = pg._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<svg" in data["text/html"] and "classify" in data["text/html"]
    assert "Billing: refund please" in data["text/html"]


@pytest.mark.parametrize("name", ["router", "agent", "team", "plan_execute"])
def test_layout_keeps_nodes_apart_and_inside_their_boxes(name, router, agent):
    pipe = {"router": router, "agent": agent,
            "team": Team("crew", "sim:echo", {"calc": agent, "w": Step("w", "sim:echo", "x")}),
            "plan_execute": PlanExecute("pe", "sim:echo", agent, max_replans=1)}[name]
    g = layout(pipe.describe())
    nodes = {n["key"]: n for n in g["nodes"]}
    for e in g["edges"]:
        assert e["from"] in nodes and e["to"] in nodes and e["path"].startswith("M")
    for key, n in nodes.items():
        parent = nodes.get(key.rsplit("/", 1)[0])
        if parent is not None and parent is not n:
            assert parent["x"] <= n["x"] and n["x"] + n["w"] <= parent["x"] + parent["w"]
            assert parent["y"] <= n["y"] and n["y"] + n["h"] <= parent["y"] + parent["h"]
    leaves = [n for n in g["nodes"] if not n["box"]]
    for i, a in enumerate(leaves):
        for b in leaves[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"]
                     or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"])
            assert apart, (a["key"], b["key"])


def test_fork_here_replays_earlier_calls_runs_the_rest_and_compares(router):
    pg = Playground(router, input="my screen")
    with pytest.raises(OrchnbError, match="fork needs a run"):
        pg.fork("triage/tech/reply")
    pg.run()
    parent = pg.wait(10)
    pg._on_msg(pg, {"action": "fork", "key": "triage/tech/reply",
                    "fields": {"prompt": "Short reply: {{ input }}"}}, [])
    fork = pg.wait(10)
    assert fork is not parent and fork.forked_from == parent.id and fork.status == "ok"
    calls = sorted((s for s in fork.trace.spans if s.kind == "model"), key=lambda s: s.start)
    assert [(s.step, bool(s.replayed)) for s in calls] == [
        ("classify", True), ("diagnose", True), ("reply", False)]
    assert calls[-1].input.startswith("Short reply: ")
    assert router.routes["technical"].steps[1].prompt.source == "Reply: {{ input }}"
    assert pg.history[-1]["forked_from"] == parent.id
    assert (pg.comparison["a"], pg.comparison["b"]) == (parent.id, fork.id)
    assert pg.comparison["first_divergence"] is not None
    # the fork's edit shows under "Edits and YAML", with the YAML that would keep it
    note = pg.fork_edits
    assert (note["run_id"], note["at"], note["fields"]) == (parent.id, "tech/reply", ["prompt"])
    assert "Short reply: {{ input }}" in note["yaml"] and "Short reply" not in pg.yaml
    pg._on_msg(pg, {"action": "fork", "key": "triage/tech/reply", "fields": {"colour": 1}}, [])
    assert pg.message["level"] == "error" and "'colour' cannot be edited" in pg.message["text"]


def test_history_latency_leaves_out_the_time_a_run_sat_paused():
    from orchnb.notebook._live import history_entry

    pipe = orchnb.Chain("paused", [orchnb.Step(f"s{i}", "sim:echo", "{{ input }}")
                                   for i in range(2)], cache=False)
    run = pipe.start("x")
    time.sleep(0.6)  # a person reading the pending call before clicking Step
    run.step()
    time.sleep(0.6)
    run.resume()
    root = next(s for s in run.trace.spans if s.kind == "run")
    assert root.latency_ms > 600  # the run span keeps the wall time
    assert history_entry(run, 1, 0)["latency_ms"] < 300  # the playground shows the work
