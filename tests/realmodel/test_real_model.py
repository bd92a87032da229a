"""Router, agent and map-reduce against a real small model (SmolLM2-135M on llama.cpp).

The model's answers are poor, so only structure is asserted: routes are known labels or the
flagged default, the agent ends within its caps with validated tool arguments, usage is
recorded, and an unpriced model's cost is unknown (NaN), not 0. Everything goes through the
``openai:`` provider with ``base_url``.
"""

from __future__ import annotations

import json

import pytest

import orchnb
from orchnb.exceptions import MaxIterationsExceeded
from orchnb.patterns import parse_label

pytestmark = [pytest.mark.slow, pytest.mark.realmodel]

MAX_TOKENS = 48
LABELS = ("billing", "technical", "other")
TICKETS = [
    "I was charged twice for my subscription this month.",
    "The app crashes every time I open the settings page.",
    "Can I get a refund for last month's invoice?",
    "My password reset email never arrives.",
    "What are your office opening hours?",
]
CLASSIFY = """Classify the customer message into one of: {{ labels | join(", ") }}.
Answer with one word.

Message: {{ input }}
Label:"""


def _model_spans(df):
    return df[df["kind"] == "model"]


def _check_usage_and_price(df) -> None:
    """Usage comes from the server's response; the local model has no price, so NaN cost."""
    models = _model_spans(df)
    assert len(models) > 0
    assert (models["provider"] == "openai").all()
    assert (models["input_tokens"] > 0).all(), models[["step", "input_tokens"]]
    assert (models["output_tokens"] >= 0).all()
    assert not models["priced"].astype(bool).any()
    assert models["cost_usd"].isna().all()  # unknown, never a silent 0
    assert not models["simulated"].fillna(False).astype(bool).any()


def _finished(pipe, x):
    """Run ``pipe(x)``; a run stopped by its iteration cap is returned, not raised."""
    try:
        return pipe(x)
    except MaxIterationsExceeded as e:
        return e.run


def test_router_routes_to_a_known_label_or_the_flagged_default(smollm):
    routes = {label: orchnb.Step(f"{label}_reply", smollm,
                                 f"You are the {label} desk. Reply in one sentence: {{{{ input }}}}",
                                 max_tokens=MAX_TOKENS)
              for label in LABELS}
    router = orchnb.Router("triage", orchnb.Step("classify", smollm, CLASSIFY, max_tokens=8,
                                                 temperature=0.0),
                           routes, default="other")
    for text in TICKETS:
        run = router(text)
        assert run.status == "ok"
        assert isinstance(run.output, str)
        df = run.trace.df
        clf = df[(df["kind"] == "step") & (df["step"] == "classify")].iloc[0]
        assert clf["route"] in LABELS
        meta = json.loads(clf["meta"])
        assert isinstance(meta["defaulted"], bool)
        assert clf["raw_label"] is not None  # what the model said, kept for the eval
        if meta["defaulted"]:
            assert clf["route"] == "other" and meta.get("reason")
        else:
            assert parse_label(clf["raw_label"], LABELS) == clf["route"]
        # Exactly the chosen route ran, and the router's pattern span carries the same route.
        ran = set(df[df["kind"] == "model"]["step"]) - {"classify"}
        assert ran == {f"{clf['route']}_reply"}
        pattern = df[(df["kind"] == "run")].iloc[0]
        assert pattern["route"] == clf["route"]
        _check_usage_and_price(df)


def test_agent_with_one_tool_ends_within_its_caps(smollm):
    received: list[dict] = []

    def add(a: int, b: int) -> int:
        """Add two integers and return the sum."""
        received.append({"a": a, "b": b})
        return a + b

    agent = orchnb.Agent("calc", smollm, [add], max_iterations=3, max_tokens=MAX_TOKENS,
                         temperature=0.0,
                         system="Use the add tool to add numbers, then give the final answer.")
    for question in ("What is 17 + 25?", "Add 3 and 4."):
        run = _finished(agent, question)
        assert run.status in ("ok", "max_iterations"), run.error
        df = run.trace.df
        models = _model_spans(df)
        assert 1 <= len(models) <= 3  # one model call per iteration, never past the cap
        iterations = df[(df["kind"] == "step") & (df["step"] == "calc")]["iteration"]
        assert iterations.max() <= 3
        if run.status == "ok":
            assert isinstance(run.output, str)
        tools = df[df["kind"] == "tool"]
        # Every tool call was validated before it ran: the function only ever saw ints; a
        # bad call is an error observation in the trace, not a crash.
        assert all(type(v) is int for call in received for v in call.values())
        for _, span in tools.iterrows():
            assert span["status"] in ("ok", "error")
            if span["status"] == "error":
                assert span["error"] and span["output"].startswith("Error:")
        assert (tools["status"] == "ok").sum() <= len(received)
        _check_usage_and_price(df)


def test_agent_invalid_tool_arguments_become_an_observation(smollm):
    """Whatever the model sends, a tool taking a bounded int rejects bad values gracefully."""

    def lookup(order_id: int) -> str:
        """Look up an order by its numeric id."""
        return f"order {order_id}: shipped"

    agent = orchnb.Agent("orders", smollm, [lookup], max_iterations=2, max_tokens=MAX_TOKENS,
                         temperature=0.0)
    run = _finished(agent, "Where is my order ABC-XYZ? Look it up with order_id 'ABC-XYZ'.")
    assert run.status in ("ok", "max_iterations"), run.error
    df = run.trace.df
    for _, span in df[df["kind"] == "tool"].iterrows():
        if span["status"] == "error":
            assert "lookup" in span["error"] or "unknown tool" in span["error"]
    _check_usage_and_price(df)


def test_mapreduce_maps_every_item_and_reduces(smollm):
    texts = ["The cat sat on the mat.", "Rain is expected tomorrow afternoon.",
             "Stocks rose two percent on Monday."]
    pipe = orchnb.MapReduce(
        "summaries",
        map=orchnb.Step("summarize", smollm, "Summarize in five words: {{ input }}",
                        max_tokens=MAX_TOKENS),
        reduce=orchnb.Step("combine", smollm,
                           "Combine into one sentence:\n{% for o in outputs %}- {{ o }}\n"
                           "{% endfor %}", max_tokens=MAX_TOKENS),
        concurrency=3)
    run = pipe(texts)
    assert run.status == "ok"
    assert isinstance(run.output, str)
    df = run.trace.df
    mapped = _model_spans(df)[lambda d: d["step"] == "summarize"]
    assert sorted(mapped["item"].dropna().astype(int)) == [0, 1, 2]
    assert (_model_spans(df)["step"] == "combine").sum() == 1
    _check_usage_and_price(df)
    # The run's total counts only priced calls; every call here is reported as unpriced.
    assert run.unpriced_calls == len(_model_spans(df)) == 4
