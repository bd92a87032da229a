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
    reply = "You are the {label} desk. Reply in one sentence: {{{{ input }}}}"
    routes = {label: orchnb.Step(f"{label}_reply", smollm, reply.format(label=label),
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


def _add_tool(received: list[dict]):
    def add(a: int, b: int) -> int:
        """Add two integers and return the sum."""
        received.append({"a": a, "b": b})
        return a + b

    return add


def _check_agent_run(run, received: list[dict], cap: int) -> None:
    """Ended within its caps; every tool call validated, bad ones are error observations."""
    assert run.status in ("ok", "max_iterations"), run.error
    if run.status == "ok":
        assert isinstance(run.output, str)
    df = run.trace.df
    assert 1 <= len(_model_spans(df)) <= cap  # one model call per iteration, never past the cap
    iterations = df[(df["kind"] == "step") & (df["pattern"] == "agent")]["iteration"]
    assert 1 <= iterations.max() <= cap
    # The function only ever saw validated, coerced arguments...
    assert all(type(v) is int for call in received for v in call.values())
    tools = df[df["kind"] == "tool"]
    assert set(tools["status"]) <= {"ok", "error"}
    assert (tools["status"] == "ok").sum() <= len(received)
    # ...and whatever was wrong with a call reached the model as an "Error: ..." observation.
    for _, span in tools[tools["status"] == "error"].iterrows():
        assert span["error"] and span["output"].startswith("Error:")
    _check_usage_and_price(df)


def test_agent_native_tool_calling_ends_within_its_caps(smollm):
    """openai tools through llama.cpp's chatml-function-calling (this model answers in prose)."""
    received: list[dict] = []
    agent = orchnb.Agent("calc", smollm, [_add_tool(received)], max_iterations=3,
                         max_tokens=MAX_TOKENS, temperature=0.0,
                         system="Use the add tool to add numbers, then give the final answer.")
    assert agent.native
    for question in ("What is 17 + 25?", "Add 3 and 4."):
        _check_agent_run(_finished(agent, question), received, cap=3)


# A one-shot ReAct prompt that ends mid-turn, so this small model writes an Action line at all.
REACT_PROMPT = """Example:
Question: Add 1 and 2.
Thought: I use add.
Action: add
Action Input: a=1, b=2
Observation: 3
Final Answer: 3

Question: {{ input }}
Thought: I use add.
Action: add
Action Input:"""


def test_agent_text_react_tool_calls_are_validated(smollm):
    """ReAct text protocol: the model's tool calls really reach the tool, through validation."""
    received: list[dict] = []
    agent = orchnb.Agent("calc", smollm, [_add_tool(received)], max_iterations=3,
                         max_tokens=MAX_TOKENS, temperature=0.0, tool_mode="text",
                         prompt=REACT_PROMPT)
    tool_spans = 0
    for question in ("Add 17 and 25.", "What is 17 + 25?"):
        run = _finished(agent, question)
        _check_agent_run(run, received, cap=3)
        tool_spans += int((run.trace.df["kind"] == "tool").sum())
    assert tool_spans > 0  # the tool path was exercised, not only prose answers


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
