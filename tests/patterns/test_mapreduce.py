"""MapReduce: split, bounded parallel map, reduce (flat and hierarchical), failure policies."""

from __future__ import annotations

import asyncio
import json

import pytest

from orchnb import BudgetExceeded, Chain, FunctionStep, RunError, SimModel, SpecError, Step
from orchnb.engine import Budget
from orchnb.patterns import MapReduce, Router, from_yaml


def upper_map(**kw) -> MapReduce:
    return MapReduce("mr", Step("up", "sim:echo", "{{ input | upper }}"), **kw)


def spans(run, kind=None, step=None):
    df = run.trace.df
    if kind:
        df = df[df.kind == kind]
    if step:
        df = df[df.step == step]
    return df


def test_list_input_maps_each_item_in_order_and_reduces():
    mr = upper_map(reduce=Step("join", "sim:echo", "{{ outputs | join('+') }}"))
    run = mr(["a", "b", "c"])
    assert run.output == "A+B+C"
    maps = spans(run, "step", "up")
    assert sorted(maps["item"].tolist()) == [0, 1, 2]
    assert spans(run, "model", "up")["item"].notna().all()
    assert spans(run, "step", "join")["item"].isna().all()
    split = spans(run, "step", "split").iloc[0]
    assert split.output == "3 items" and json.loads(split.meta)["items"] == 3


def test_without_reduce_the_output_is_the_list():
    assert upper_map()(("x", "y")).output == ["X", "Y"]


def test_python_reducer_gets_the_list_whatever_its_parameter_is_called():
    def combine(outputs):
        return " | ".join(outputs)

    async def count(items):
        return len(items)

    assert upper_map(reduce=combine)(["a", "b"]).output == "A | B"
    assert upper_map(reduce=count)(["a", "b", "c"]).output == 3
    assert upper_map(reduce=FunctionStep("combine", combine))(["a"]).output == "A"


def test_long_text_is_split_into_chunks_with_overlap():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(20))
    mr = MapReduce("chunks", lambda chunk: len(chunk), reduce=max, chunk_tokens=200,
                   overlap_tokens=20)
    run = mr(text)
    n = mr.last_item_count
    assert n is not None and n > 3
    assert run.output <= 800
    assert len(spans(run, "step", "map")) == n  # a lambda map step is called "map"
    assert mr.edges()[1] == ("split", "map", f"{n} items")


def test_custom_chunker_replaces_the_token_splitter():
    mr = MapReduce("lines", str.strip, chunker=lambda text: text.splitlines())
    assert mr("a \nb \nc ").output == ["a", "b", "c"]


def test_concurrency_bound_is_respected():
    live, peak = 0, 0

    async def slow(x):
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.01)
        live -= 1
        return x

    run = MapReduce("bounded", slow, concurrency=3)(list(range(12)))
    assert run.output == list(range(12))
    assert peak == 3


def test_concurrency_bound_holds_for_model_calls_with_latency():
    SimModel("slowsum", fn=lambda req: "ok", latency=0.02).register()
    run = MapReduce("m", Step("s", "sim:slowsum", "{{ input }}"), concurrency=4,
                    cache=False)(list(range(16)))
    calls = spans(run, "model")
    events = sorted([(s, 1) for s in calls.start] + [(e, -1) for e in calls.end])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    assert peak == 4
    assert run.trace.df[run.trace.df.kind == "run"].latency_ms.iloc[0] < 16 * 20  # parallel


def flaky_map(fail_items, times=10**6):
    attempts: dict[int, int] = {}

    def fn(x):
        attempts[x] = attempts.get(x, 0) + 1
        if x in fail_items and attempts[x] <= times:
            raise ValueError(f"bad item {x}")
        return x * 10

    return fn, attempts


def test_on_error_fail_finishes_the_others_then_names_the_failed_items():
    fn, attempts = flaky_map({1, 3})
    mr = MapReduce("f", FunctionStep("m", fn), reduce=sum)
    with pytest.raises(RunError, match=r"2 of 5 items failed \(items 1, 3\).*on_error='skip'"):
        mr(list(range(5)))
    assert sorted(attempts) == [0, 1, 2, 3, 4]  # every item ran
    run = mr.last_run
    assert run.status == "error"
    maps = spans(run, "step", "m")
    assert sorted(maps[maps.status == "error"]["item"].tolist()) == [1, 3]
    assert (maps[maps.status == "ok"].shape[0]) == 3


def test_on_error_skip_drops_failed_items_and_records_them():
    fn, _ = flaky_map({2})
    run = MapReduce("s", FunctionStep("m", fn), reduce=list, on_error="skip")(list(range(4)))
    assert run.output == [0, 10, 30]
    meta = json.loads(spans(run, "run").iloc[0].meta)
    assert meta["items"] == 4 and meta["mapped"] == 3
    assert meta["failed"] == {"2": "ValueError: bad item 2"}


def test_on_error_retry_reruns_a_failed_item():
    fn, attempts = flaky_map({1}, times=2)
    run = MapReduce("r", FunctionStep("m", fn), on_error="retry", retries=2)([0, 1, 2])
    assert run.output == [0, 10, 20]
    assert attempts == {0: 1, 1: 3, 2: 1}
    assert spans(run, "step", "m")["status"].tolist().count("error") == 2


def test_on_error_retry_gives_up_after_retries():
    fn, attempts = flaky_map({1})
    with pytest.raises(RunError, match="1 of 2 items failed"):
        MapReduce("r", FunctionStep("m", fn), on_error="retry", retries=1)([0, 1])
    assert attempts[1] == 2


def test_budget_errors_are_not_skipped():
    mr = MapReduce("b", Step("s", "sim:echo", "{{ input }}"), on_error="skip", concurrency=1,
                   budget=Budget(max_calls=2), cache=False)
    with pytest.raises(BudgetExceeded):
        mr(list("abcd"))
    assert mr.last_run.status == "budget_exceeded"


def test_hierarchical_reduce_reduces_groups_then_the_reductions():
    seen = []

    def shorten(outputs):
        seen.append(len(outputs))
        return "r" * 40  # 10 tokens

    # 10 outputs of 10 tokens; at most 35 tokens per reduce: groups of 3 (11 tokens each with
    # the separator), then the 3 reductions, then the final reduce.
    mr = MapReduce("h", lambda x: "x" * 40, reduce=shorten, reduce_tokens=35, concurrency=2)
    run = mr(list(range(10)))
    assert run.output == "r" * 40
    assert seen[:3] == [3, 3, 4] and seen[3:] == [3]
    levels = spans(run, "step", "reduce groups").sort_values("iteration")
    assert levels.iteration.tolist() == [1]
    assert json.loads(levels.iloc[0].meta) == {"level": 1, "groups": [3, 3, 4]}
    children = run.trace.df[run.trace.df.parent_id == levels.iloc[0].span_id]
    assert set(children.step) == {"shorten"} and sorted(children["item"]) == [0, 1, 2]
    final = spans(run, "step", "shorten")
    assert final[final.parent_id == spans(run, "run").span_id.iloc[0]].shape[0] == 1


def test_hierarchical_reduce_goes_several_levels_deep():
    mr = MapReduce("deep", lambda x: "x" * 40, reduce=lambda outs: "r" * (20 * len(outs)),
                   reduce_tokens=25)
    run = mr(list(range(16)))
    levels = spans(run, "step", "reduce groups").sort_values("iteration")
    assert levels.iteration.tolist() == list(range(1, len(levels) + 1))
    assert len(levels) >= 2


def test_no_hierarchy_when_outputs_fit():
    run = upper_map(reduce=list, reduce_tokens=1000)(["a", "b"])
    assert spans(run, "step", "reduce groups").empty


def test_nested_pattern_as_map_step_keeps_item_and_parent_ids():
    inner = Chain("inner", [Step("one", "sim:echo", "1 {{ input }}"),
                            Step("two", "sim:echo", "2 {{ input }}")])
    run = MapReduce("outer", inner, reduce=list)(["a", "b"])
    assert run.output == ["2 1 a", "2 1 b"]
    df = run.trace.df
    by_id = df.set_index("span_id")
    chains = df[(df.kind == "pattern") & (df.step == "inner")]
    assert sorted(chains["item"]) == [0, 1]
    for _, c in chains.iterrows():
        assert by_id.loc[c.parent_id].kind == "run"
        kids = df[df.parent_id == c.span_id]
        assert set(kids.step) == {"one", "two"} and (kids["item"] == c["item"]).all()


def test_router_as_map_step():
    SimModel("mr-triage", rules={"refund": "billing"}, default="other").register()
    router = Router("triage", "sim:mr-triage", {
        "billing": Step("billing", "sim:echo", "B {{ input }}"),
        "other": Step("other", "sim:echo", "O {{ input }}")}, default="other")
    run = MapReduce("batch", router)(["refund me", "hello"])
    assert run.output == ["B refund me", "O hello"]
    routers = spans(run, "pattern", "triage").sort_values("item")
    assert routers.route.tolist() == ["billing", "other"]


def test_stepping_map_reduce_one_call_at_a_time():
    mr = MapReduce("step", Step("m", "sim:echo", "m {{ input }}"),
                   reduce=Step("r", "sim:echo", "{{ outputs | join(',') }}"), concurrency=2)
    run = mr.start(["a", "b", "c"])
    assert run.status == "paused" and run.calls == 0
    assert {b.step for b in run.pending} == {"m"}
    for calls in (1, 2, 3):
        run.step()
        assert run.calls == calls and run.status == "paused"
    assert [b.step for b in run.pending] == ["r"]
    run.step()
    assert run.status == "ok" and run.output == "m a,m b,m c"


def test_describe_shows_split_map_reduce():
    mr = upper_map(reduce=Step("join", "sim:echo", "{{ outputs }}"), concurrency=5)
    assert mr.edges() == [("__in__", "split", ""), ("split", "up", "items"),
                          ("up", "join", "outputs"), ("join", "__out__", "")]
    d = mr.describe()
    assert [c["id"] for c in d["children"]] == ["split", "up", "join"]
    assert d["concurrency"] == 5 and d["children"][0]["chunk_tokens"] == 3000
    mr(["a", "b"])
    assert ("split", "up", "2 items") in mr.edges()


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"concurrency": 0}, "concurrency"), ({"on_error": "ignore"}, "on_error"),
    ({"retries": -1}, "retries"), ({"chunk_tokens": 0}, "chunk_tokens"),
    ({"overlap_tokens": 2000}, "overlap_tokens"), ({"reduce_tokens": 0}, "reduce_tokens"),
    ({"reduce": Step("up", "sim:echo", "x")}, "reduce"),
])
def test_bad_knobs_are_spec_errors(kwargs, key):
    with pytest.raises(SpecError) as e:
        upper_map(**kwargs)
    assert e.value.key == key


def test_input_must_be_a_list_or_text():
    with pytest.raises(RunError, match="must be a list or a text"):
        upper_map()({"a": 1})


def test_openai_map_and_reduce_through_the_real_sdk(fake_env):
    fake_env.responder = lambda req: "S:" + req.last_user.split()[-1]
    mr = MapReduce("sdk", Step("sum", "openai:gpt-4o-mini", "Summarize {{ input }}"),
                   reduce=Step("all", "openai:gpt-4o-mini",
                               "Combine: {{ outputs | join('; ') }}"),
                   concurrency=3, cache=False)
    run = mr(list("abcd"))
    assert run.output == "S:S:d"
    assert fake_env.requests[-1].last_user == "Combine: S:a; S:b; S:c; S:d"
    models = spans(run, "model")
    assert len(models) == 5 and (models.provider == "openai").all()
    assert sorted(models[models.step == "sum"]["item"].tolist()) == [0, 1, 2, 3]
    assert models.priced.all() and (models.cost_usd > 0).all()
    assert len(fake_env.requests) == 5


def test_mapreduce_from_yaml_with_python_reducer():
    def combine(outputs):
        return "/".join(outputs)

    pipe = from_yaml("""\
pattern: mapreduce
map: {name: up, model: "sim:echo", prompt: "{{ input | upper }} #{{ item }}"}
reduce: combine
concurrency: 2
chunk_tokens: 500
overlap_tokens: 0
reduce_tokens: 2000
on_error: skip
""", name="yamlmr", namespace={"combine": combine})
    assert isinstance(pipe, MapReduce) and pipe.concurrency == 2 and pipe.on_error == "skip"
    assert pipe(["a", "b"]).output == "A #0/B #1"


def test_mapreduce_from_yaml_with_llm_reducer_and_nested_map():
    pipe = from_yaml("""\
pattern: mapreduce
map:
  pattern: chain
  name: per_item
  steps:
    - {name: clean, model: "sim:echo", prompt: "{{ input | trim }}"}
reduce:
  name: total
  model: sim:echo
  prompt: "{{ outputs | join(' & ') }}"
""", name="m")
    assert pipe([" a ", " b"]).output == "a & b"


YAML_ERRORS = [
    ("pattern: mapreduce\nreduce: x\n", None, "map", "'map' is required"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\nconcurrency: 0\n", 3,
     "concurrency", "greater than or equal to 1"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\non_error: ignore\n", 3,
     "on_error", "'fail', 'skip' or 'retry'"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\nreduce: nope\n", 3, "reduce",
     "'nope' is not defined"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\nchunk_tokens: 100\n"
     "overlap_tokens: 60\n", 4, "overlap_tokens", "under half of chunk_tokens"),
    ("pattern: mapreduce\nmap:\n  model: sim:echo\n  prompt: '{{ outputz }}'\n", 4,
     "map.prompt", "outputz"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\nchunker: nope\n", 3, "chunker",
     "'nope' is not defined"),
    ("pattern: mapreduce\nmap: {model: 'sim:echo', prompt: x}\nconcurency: 3\n", 3,
     "concurency", "unknown key 'concurency'"),
]


@pytest.mark.parametrize(("body", "line", "key", "words"), YAML_ERRORS)
def test_mapreduce_yaml_errors_name_line_and_key(body, line, key, words):
    with pytest.raises(SpecError) as e:
        from_yaml(body, name="mr")
    assert words in str(e.value)
    assert (e.value.line, e.value.key) == (line, key)
