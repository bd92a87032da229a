"""Fork and replay over the real SDKs: a fork pays only for the forked step and what follows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import orchnb
from orchnb import Agent, Chain, ForkError, MapReduce, ReplayError, Router, Step, tool
from orchnb.testing import FakeReply

OPENAI, ANTHROPIC = "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"


def brief() -> Chain:
    return Chain("brief", [
        Step("extract", OPENAI, "Extract: {{ input }}"),
        Step("summarize", ANTHROPIC, "Summarize: {{ steps.extract }}"),
        Step("title", OPENAI, "Title for: {{ steps.summarize }}"),
    ], cache=False)


def calls(run, kind="model"):
    df = run.trace.df
    return df[df.kind == kind].reset_index(drop=True)


def test_chain_fork_replays_before_the_step_and_calls_from_it(fake_env):
    parent = brief()("a lease")
    assert len(fake_env.requests) == 3

    fork = parent.fork("summarize", prompt="In five words: {{ steps.extract }}")
    assert fork.status == "paused" and fork.pending[0].step == "summarize"
    assert len(fake_env.requests) == 3  # nothing paid while replaying `extract`
    fork.resume()
    assert fork.status == "ok"
    new = fake_env.requests[3:]
    assert [r.api for r in new] == ["anthropic", "openai"]
    assert new[0].last_user.startswith("In five words: ")
    assert fork.output == f"fake reply to: {new[1].last_user[:60]}"

    models = calls(fork)
    assert models.replayed.tolist()[:1] == [True]
    assert models.replayed.iloc[1:].isna().all()
    assert models.cost_usd.iloc[0] == 0
    assert models.saved_usd.iloc[0] == pytest.approx(calls(parent).cost_usd.iloc[0])
    root = fork.trace.df[fork.trace.df.kind == "run"].iloc[0]
    assert root.forked_from == parent.id
    # the store keeps the link and the flag
    stored = orchnb.traces(run_id=fork.id)
    assert stored[stored.kind == "run"].forked_from.iloc[0] == parent.id
    assert stored[stored.kind == "model"].replayed.fillna(False).sum() == 1


def test_fork_edits_model_and_temperature_and_can_be_stepped(fake_env):
    parent = brief()("doc")
    fork = parent.fork("summarize", model=OPENAI, temperature=0.2)
    fork.step()
    assert fork.status == "paused" and fork.pending[0].step == "title"
    assert [r.api for r in fake_env.requests[3:]] == ["openai"]
    assert fake_env.requests[3].body["temperature"] == 0.2
    fork.resume()
    assert len(fake_env.requests) == 5
    assert brief().steps[1].model.id == ANTHROPIC  # the parent's pipeline is untouched


def test_router_fork_at_a_route_pays_for_the_route_only(fake_env):
    fake_env.responder = lambda r: "billing" if r.last_user.startswith("Classify") else None
    router = Router("triage", classifier=Step("triage_llm", OPENAI, "Classify: {{ input }}"),
                    routes={"billing": Step("billing", ANTHROPIC, "Billing: {{ input }}"),
                            "technical": Step("technical", OPENAI, "Tech: {{ input }}")},
                    cache=False)
    parent = router("I was charged twice")
    assert len(fake_env.requests) == 2
    fork = parent.fork("billing", prompt="Refund desk: {{ input }}").resume()
    new = fake_env.requests[2:]
    assert [r.last_user for r in new] == ["Refund desk: I was charged twice"]
    assert set(fork.trace.df.route.dropna()) == {"billing"}

    again = parent.fork(router.classifier.name).resume()  # from the classifier: both calls
    assert len(fake_env.requests) == 5 and again.status == "ok"


def test_mapreduce_fork_at_reduce_replays_every_item(fake_env):
    mr = MapReduce("digest", map=Step("note", OPENAI, "Note: {{ input }}"),
                   reduce=Step("merge", ANTHROPIC, "Merge: {{ outputs | join(' | ') }}"),
                   concurrency=4, cache=False)
    fake_env.latency = lambda r: 0.05 if "a" in r.last_user[-1:] else 0.0  # out of order
    parent = mr(["a", "b", "c", "d"])
    assert len(fake_env.requests) == 5
    fork = parent.fork("merge", prompt="Join: {{ outputs | join(', ') }}").resume()
    assert [r.last_user[:5] for r in fake_env.requests[5:]] == ["Join:"]
    replayed = calls(fork)
    assert replayed[replayed.step == "note"].replayed.all()
    assert sorted(replayed[replayed.step == "note"].item.tolist()) == [0, 1, 2, 3]
    # each item got its own recorded answer back, whatever order they finished in
    assert fork.output == "fake reply to: " + fake_env.requests[-1].last_user[:60]
    merged = replayed[replayed.step == "merge"].iloc[0].input
    assert merged.startswith("Join: fake reply to: Note: a, fake reply to: Note: b")


def test_mapreduce_fork_at_the_map_step_reruns_the_map_and_what_follows(fake_env):
    mr = MapReduce("digest", map=Step("note", OPENAI, "Note: {{ input }}"),
                   reduce=Step("merge", ANTHROPIC, "Merge: {{ outputs | join(' | ') }}"),
                   concurrency=2, cache=False)
    parent = mr(["a", "b", "c"])
    fork = parent.fork("note", prompt="Short note: {{ input }}")
    assert fork.status == "paused"
    fork.resume()
    new = fake_env.requests[4:]
    assert sorted(r.last_user for r in new[:3]) == ["Short note: a", "Short note: b",
                                                    "Short note: c"]
    assert len(new) == 4 and not calls(fork).replayed.any()


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_agent_fork_replays_the_first_iteration_and_calls_the_rest(fake_env):
    agent = Agent("calc", OPENAI, [add], system="Use tools.", cache=False)
    fake_env.script([FakeReply(tool_calls=[("add", {"a": 20, "b": 22})]), "The sum is 42."])
    parent = agent("what is 20 + 22?")
    assert parent.output == "The sum is 42." and len(fake_env.requests) == 2

    # fork at the second iteration: the first model call and the tool call are replayed
    fake_env.script(["Forty-two."])
    fork = parent.fork("calc", iteration=2, system="Answer in words.")
    assert len(fake_env.requests) == 2
    fork.resume()
    assert fork.output == "Forty-two."
    (second,) = fake_env.requests[2:]
    assert second.messages[0]["content"] == "Answer in words."  # the edit reaches on
    assert second.messages[3]["tool_call_id"] == second.messages[2]["tool_calls"][0]["id"]
    tools = calls(fork, "tool")
    assert tools.replayed.tolist() == [True] and tools.output.tolist() == ["42"]

    # fork at the agent itself with a new system prompt: every call is made again
    fake_env.script([FakeReply(tool_calls=[("add", {"a": 1, "b": 1})]), "2"])
    whole = parent.fork("calc", system="Be brief.").resume()
    assert whole.output == "2" and len(fake_env.requests) == 5
    assert fake_env.requests[3].messages[0]["content"] == "Be brief."


def test_fork_of_a_paused_run(fake_env):
    run = brief().start("doc")
    run.step()  # extract done; paused before summarize
    fork = run.fork("summarize", prompt="S: {{ steps.extract }}").resume()
    assert len(fake_env.requests) == 3 and fork.status == "ok"
    run.resume()


# -- replay ---------------------------------------------------------------------------------------
def test_replay_of_an_unchanged_pipeline_finds_no_difference_and_calls_nothing(fake_env):
    pipe = brief()
    parent = pipe("doc")
    report = parent.replay()
    assert report.ok and report.first is None and "no difference" in repr(report)
    assert len(fake_env.requests) == 3
    assert calls(report.run).replayed.all()


def test_replay_after_a_prompt_change_names_the_step_and_calls_nothing(fake_env):
    pipe = brief()
    parent = pipe("doc")
    pipe.steps[1].prompt = orchnb.Prompt("Summarise briefly: {{ steps.extract }}")
    report = parent.replay()
    assert not report.ok
    assert (report.first.step, report.first.kind) == ("summarize", "model")
    assert "prompt differs" in report.first.why
    assert report.first.now.startswith("Summarise briefly")
    assert isinstance(report.run.error, ReplayError)
    assert len(fake_env.requests) == 3


def test_replay_after_a_code_change_reports_the_step_whose_output_differs(fake_env):
    shout = [str.upper]
    pipe = Chain("c", [Step("extract", OPENAI, "Extract: {{ input }}"),
                       lambda x: shout[0](x),
                       Step("title", OPENAI, "Title: {{ steps['<lambda>'] }}")], cache=False)
    parent = pipe("doc")
    shout[0] = str.lower
    report = parent.replay()
    assert report.first.step == "<lambda>" and report.first.why == "the output differs"
    assert report.first.recorded.isupper()
    assert len(fake_env.requests) == 2


# -- bad input, before any call -------------------------------------------------------------
def test_fork_errors_come_before_any_call(fake_env):
    parent = brief()("doc")
    with pytest.raises(ForkError, match=r"never reached step 'nope'.*extract, summarize"):
        parent.fork("nope")
    with pytest.raises(ForkError, match="'colour' cannot be edited there; editable: prompt"):
        parent.fork("summarize", colour="red")
    with pytest.raises(ForkError, match="temperature must be between 0 and 2"):
        parent.fork("summarize", temperature=7)
    with pytest.raises(ForkError, match="iteration 3"):
        parent.fork("summarize", iteration=3)
    changed = Chain("brief", [Step("extract", OPENAI, "Extract: {{ input }}"),
                              Step("digest", OPENAI, "Digest: {{ steps.extract }}")])
    stored = orchnb.load_run(parent.id, pipeline=changed)
    with pytest.raises(ForkError, match="step 'summarize' of the recorded run is not a step"):
        stored.fork("extract")
    assert len(fake_env.requests) == 3


def test_a_fork_whose_earlier_steps_changed_stops_before_paying(fake_env):
    pipe = brief()
    parent = pipe("doc")
    pipe.steps[0].prompt = orchnb.Prompt("Pull out: {{ input }}")
    with pytest.raises(ReplayError, match="step 'extract' comes before the fork step"):
        parent.fork("title")
    assert len(fake_env.requests) == 3


def test_load_run_without_a_stored_pipeline_asks_for_one(fake_env):
    parent = brief()("doc")
    with pytest.raises(ForkError, match=r"pass it, orchnb\.load_run"):
        orchnb.load_run(parent.id)
    with pytest.raises(ForkError, match="no run 'ffff'"):
        orchnb.load_run("ffff")


# -- a stored run, forked in a new process ----------------------------------------------------
YAML = """
pattern: chain
cache: false
steps:
  - {name: extract, model: "openai:gpt-4o-mini", prompt: "Extract: {{ input }}"}
  - {name: summarize, model: "anthropic:claude-haiku-4-5", prompt: "Summarize: {{ steps.extract }}"}
  - {name: title, model: "openai:gpt-4o-mini", prompt: "Title for: {{ steps.summarize }}"}
"""


def test_a_run_loaded_in_a_new_process_forks_without_paying_again(fake_env, orchnb_home):
    pipe = orchnb.from_yaml(YAML, name="brief")
    parent = pipe(["a", "list", "input"])  # not text: the input is stored as JSON
    from orchnb.trace import get_store

    get_store().flush()
    script = textwrap.dedent(f"""
        import orchnb
        run = orchnb.load_run({parent.id!r})
        assert run.input == ["a", "list", "input"], run.input
        assert run.replay().ok
        fork = run.fork("title", prompt="Headline: {{{{ steps.summarize }}}}")
        print(fork.status, fork.pending[0].step)
        fork.resume()
        print(fork.output)
        print(fork.id)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(orchnb.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    status, output, fork_id = out.stdout.split("\n")[:3]
    assert status == "paused title"
    new = fake_env.requests[3:]
    assert [r.last_user[:9] for r in new] == ["Headline:"]
    assert output == f"fake reply to: {new[0].last_user[:60]}"
    df = orchnb.traces(run_id=fork_id)
    assert df[df.kind == "run"].forked_from.iloc[0] == parent.id
    assert df[df.kind == "model"].replayed.fillna(False).tolist() == [True, True, False]


def test_replay_of_a_cached_run_tells_a_parameter_change_from_a_prompt_change(fake_env):
    pipe = Chain("c", [Step("extract", OPENAI, "Extract: {{ input }}"),
                       Step("title", OPENAI, "Title: {{ steps.extract }}")], cache=True)
    parent = pipe("doc")
    pipe.steps[1].temperature = 0.9
    report = parent.replay()
    assert report.first.step == "title"
    assert "parameters (tools, temperature, max_tokens) differ" in report.first.why
    assert len(fake_env.requests) == 2
