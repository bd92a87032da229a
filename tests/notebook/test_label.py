"""orchnb.label: the widget's rows from each kind of source, labels saved as given and back
after a restart (a new widget over the same rows), bad messages ignored."""

from __future__ import annotations

import pandas as pd
import pytest

import orchnb
from orchnb.exceptions import SpecError

ROWS = pd.DataFrame({"question": [f"q{i}" for i in range(30)],
                     "answer": [f"a{i}" for i in range(30)]})


def _msg(w, i, label, **kw):
    w._on_msg(w, {"type": "label", "key": w.items[i]["key"], "label": label, **kw}, None)


def test_labels_are_saved_as_given_and_come_back_in_a_new_widget():
    w = orchnb.label(ROWS, input="question", output="answer", n=10, name="s")
    assert len(w.items) == 10 and w.index == 0 and w.scale == ["pass", "fail"]
    _msg(w, 0, "pass")
    _msg(w, 1, "fail", note="made up a date", tags="dates, facts")
    _msg(w, 2, "maybe")                       # not on the scale: ignored
    w._on_msg(w, {"type": "label", "key": "nope", "label": "pass"}, None)   # unknown row
    assert w.saved == 2 and len(w.df) == 2
    again = orchnb.label(ROWS, input="question", output="answer", n=10, name="s")
    assert again.given == w.given and again.index == 2      # resumes at the first unlabelled
    df = again.df
    assert df["label"].tolist() == ["pass", "fail"] and df["tags"][1] == ["dates", "facts"]
    assert again.categories()["count"].to_dict() == {"dates": 1, "facts": 1}
    assert "2 of 10 rows labelled" in repr(again) and "2 of 10" in again.static_html()
    _msg(again, 0, None)                      # a label taken back
    assert len(orchnb.Labels("s").df) == 1


def test_label_reads_eval_reports_and_traces(fake_env):
    fake_env.responder = lambda req: '{"reason": "fine", "score": 4}'
    chain = orchnb.Chain("bot", [orchnb.FunctionStep("say", lambda x: x.upper())])
    report = orchnb.evaluate(chain, ["a", "b", "c"], text="text", progress=False,
                             scorers=[orchnb.judge("openai:gpt-4o-mini", "ok")])
    w = orchnb.label(report, sample="all")
    assert w.labels.name == "bot" and [it["output"] for it in w.items] == ["A", "B", "C"]
    assert w.items[0]["score"] == 0.75 and w.items[0]["reason"] == "fine"
    traces = orchnb.traces()
    t = orchnb.label(traces[traces["pipeline"] == "eval:bot"], sample="all", name="runs")
    assert [it["input"] for it in t.items] == ["a", "b", "c"]  # an eval's run: a row per item
    assert t.items[0]["trajectory"] == ["step say: a → A"]


def test_label_refuses_bad_arguments():
    with pytest.raises(SpecError, match="scale"):
        orchnb.label(ROWS, input="question", output="answer", scale=("only",))
    with pytest.raises(SpecError, match="cannot label a int"):
        orchnb.label(3)
    with pytest.raises(SpecError, match="n=0"):
        orchnb.label(ROWS, input="question", output="answer", n=0)


def test_an_agent_reports_rows_show_their_tool_calls_with_arguments_and_results():
    from orchnb.patterns._react_text import sim_agent_policy

    def search(q: str) -> str:
        """Search the orders."""
        return f"found {q}"

    def lookup(id: int) -> str:
        """Look an order up."""
        return f"order {id}: shipped"

    plans = {"q0": [("search", {"q": "o1"}), ("lookup", {"id": 1})], "q1": [("lookup",
             {"id": 7})], "q2": []}
    policies = {k: sim_agent_policy(v, "done") for k, v in plans.items()}
    orchnb.SimModel("label-agent", fn=lambda req: policies[next(
        m.content for m in req.messages if m.role == "user")](req)).register()
    agent = orchnb.Agent("helpdesk", "sim:label-agent", [search, lookup])
    report = orchnb.evaluate(agent, list(plans), scorers=["regex:done"], progress=False,
                             n_boot=0)
    w = orchnb.label(report, sample="all")
    by_input = {it["input"]: it["trajectory"] for it in w.items}
    assert by_input["q0"] == ['tool search({"q": "o1"}) [ok] → found o1',
                              'tool lookup({"id": 1}) [ok] → order 1: shipped']
    assert by_input["q1"] == ['tool lookup({"id": 7}) [ok] → order 7: shipped']
    assert by_input["q2"] == []
    w.give(w.items[0]["key"], "fail", note="looked up twice")  # the trajectory is not stored
    assert "trajectory" not in w.df.columns
