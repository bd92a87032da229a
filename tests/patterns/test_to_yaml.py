"""pipe.to_yaml(): every pattern, Python-defined or not, round-trips through from_yaml."""

from __future__ import annotations

import pytest
from _helpers import add

import orchnb
from orchnb import (
    Agent,
    Budget,
    Chain,
    EmbeddingClassifier,
    MapReduce,
    PlanExecute,
    RetryPolicy,
    Router,
    SpecError,
    Step,
    Team,
    from_yaml,
)
from orchnb.models import SimModel


def shout(text):
    return text.upper()


def combine(outputs):
    return " / ".join(outputs)


def by_keyword(text):
    return "billing" if "refund" in text else "technical"


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def sims():
    SimModel("yaml-triage", rules={"refund|charge": "Label: billing"}, default="technical"
             ).register()
    SimModel("yaml-calc", fn=Agent.sim_policy([("add", {"a": 2, "b": 3})], "It is {observation}.")
             ).register()
    SimModel("yaml-planner", rules={"FINAL|Done so far": "FINAL ANSWER: done"},
             default='["add 2 and 3", "report it"]').register()
    SimModel("yaml-boss", rules={r"\[writer\]": "FINISH: written"}, default="writer: draft it"
             ).register()


NAMESPACE = {"add": add, "shout": shout, "combine": combine, "by_keyword": by_keyword,
             "lines": lines}


def calc() -> Agent:
    return Agent("calc", "sim:yaml-calc", [add], system="You add numbers.", max_iterations=4,
                 temperature=0.0)


def chain() -> Chain:
    return Chain("brief", [
        Step("summarize", "sim:echo", "Summarize:\n{{ input }}\n", system="Be brief.",
             temperature=0.2, max_tokens=50),
        shout,
        Step("classify", "sim:echo", "Kind? {{ steps.summarize }} / {{ run_input }}",
             stream=True),
    ], budget=Budget(max_calls=5, max_usd=1), cache=False, timeout=30)


PIPELINES = {
    "chain": chain,
    "router": lambda: Router("triage", classifier="sim:yaml-triage", routes={
        "billing": Step("billing", "sim:echo", "Billing: {{ input }}"),
        "technical": chain(),                                       # a nested pattern
    }, default="technical", aliases={"money back": "billing"}),
    "router_embed": lambda: Router("triage2", EmbeddingClassifier(
        {"billing": ["refund please", "I was charged"], "technical": ["app crashes"]},
        threshold=0.1, method="centroid", k=3),
        routes={"billing": Step("b", "sim:echo", "B {{ input }}"), "technical": shout},
        default="technical"),
    "router_function": lambda: Router("triage3", by_keyword, routes={
        "billing": Step("b", "sim:echo", "B {{ input }}"),
        "technical": Step("t", "sim:echo", "T {{ input }}")}),
    "mapreduce": lambda: MapReduce(
        "shout_all", map=Chain("per_item", [Step("up", "sim:echo", "{{ input | upper }}")]),
        reduce=combine, concurrency=2, chunk_tokens=50, overlap_tokens=5, on_error="skip",
        retries=1, reduce_tokens=400, chunker=lines),
    "agent": calc,
    "plan_execute": lambda: PlanExecute("pe", "sim:yaml-planner", calc(), max_replans=1,
                                        max_steps=5),
    "team": lambda: Team("crew", "sim:yaml-boss", {
        "writer": Step("w", "sim:echo", "Draft: {{ task }}"),
        "checker": calc(),
        "loud": shout,
    }, max_turns=3),
}
INPUTS = {"mapreduce": "line one\nline two\nline three"}


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_to_yaml_round_trips_to_an_equivalent_pipeline(kind):
    pipe = PIPELINES[kind]()
    text = pipe.to_yaml()
    back = from_yaml(text, namespace=NAMESPACE)
    assert type(back) is type(pipe) and back.name == pipe.name
    assert back.describe() == pipe.describe()
    assert back.to_yaml() == text                 # every knob survived the trip
    assert back._overrides == pipe._overrides
    x = INPUTS.get(kind, "I want a refund for my order")
    assert back(x).output == pipe(x).output


def test_yaml_written_by_hand_round_trips_too():
    source = """
pattern: router
name: support
classifier: {model: "sim:yaml-triage"}
routes:
  billing:
    pattern: mapreduce
    map: {model: "sim:echo", prompt: "Item: {{ input }}"}
    reduce: combine
  technical: {model: "sim:echo", prompt: "Tech: {{ input }}"}
default: technical
budget: {max_calls: 20}
"""
    pipe = from_yaml(source, namespace=NAMESPACE)
    back = from_yaml(pipe.to_yaml(), namespace=NAMESPACE)
    assert back.describe() == pipe.describe() and back.to_yaml() == pipe.to_yaml()


def test_to_yaml_leaves_defaults_out_and_names_functions():
    text = PIPELINES["team"]().to_yaml()
    assert "prompt" not in text.split("agents:")[0]  # the supervisor's default prompt
    assert "  loud:\n    name: loud\n    python: shout\n" in text and "- add" in text
    assert "max_turns: 3" in text
    mr = MapReduce("m", map=Step("up", "sim:echo", "{{ input }}"), reduce=combine).to_yaml()
    assert "reduce: combine" in mr and "concurrency" not in mr


def test_multiline_prompts_are_block_scalars():
    text = chain().to_yaml()
    assert "prompt: |\n" in text and "    Summarize:\n    {{ input }}\n" in text


def test_to_yaml_writes_the_file(tmp_path):
    path = tmp_path / "brief.yaml"
    text = chain().to_yaml(path)
    assert path.read_text() == text


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Chain("c", [lambda x: x]), "lambda"),
    (lambda: Chain("c", [Step("s", "sim:echo", "{{ input }}", parse=int)]), "parse="),
    (lambda: MapReduce("m", map=Step("s", "sim:echo", "x"), reduce=lambda outs: outs[0]),
     "lambda"),
])
def test_what_yaml_cannot_say_is_a_spec_error_naming_it(make, match):
    with pytest.raises(SpecError, match=match):
        make().to_yaml()


def test_retry_goes_to_yaml_and_back():
    pipe = Chain("c", [Step("s", "sim:echo", "x")],
                 retry=RetryPolicy(max_attempts=5, backoff=0.1, jitter=False))
    text = pipe.to_yaml()
    assert "retry:" in text and "max_attempts: 5" in text and "max_backoff" not in text
    back = orchnb.from_yaml(text)
    assert back._overrides["retry"] == pipe._overrides["retry"]


def test_retry_in_yaml_sets_the_policy_and_refuses_unknown_keys():
    pipe = orchnb.from_yaml("pattern: chain\nretry: {max_attempts: 6}\nsteps:\n"
                            "  - {name: s, model: sim:echo, prompt: x}\n")
    assert pipe._overrides["retry"] == RetryPolicy(max_attempts=6)
    with pytest.raises(SpecError, match="max_atempts"):
        orchnb.from_yaml("pattern: chain\nretry: {max_atempts: 6}\nsteps:\n"
                         "  - {name: s, model: sim:echo, prompt: x}\n")
    with pytest.raises(SpecError, match="max_attempts"):
        orchnb.from_yaml("pattern: chain\nretry: {max_attempts: 0}\nsteps:\n"
                         "  - {name: s, model: sim:echo, prompt: x}\n")


def test_a_node_shared_by_two_routes_is_refused():
    shared = Step("s", "sim:echo", "{{ input }}")
    router = Router("r", by_keyword, routes={"billing": shared, "technical": shared})
    with pytest.raises(SpecError, match="share one node"):
        router.to_yaml()
