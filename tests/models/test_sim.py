"""The sim: provider: deterministic, rule/script/function driven, marked simulated."""

from __future__ import annotations

import asyncio

import pytest

from orchnb import CallTimeoutError, Chain, SimModel, Step
from orchnb.exceptions import UnknownModelError
from orchnb.models import Message, ModelRequest, SimProvider, resolve_model


def ask(model: str, text: str):
    return asyncio.run(SimProvider().request(model, ModelRequest([Message("user", text)])))


def test_rules_script_and_default():
    SimModel("r", rules={"refund|charge": "billing", "crash": "technical"},
             default="other").register()
    assert ask("r", "I want a REFUND").text == "billing"
    assert ask("r", "app crash on start").text == "technical"
    assert ask("r", "hello").text == "other"
    m = SimModel("s", replies=["one", {"tool": "add", "args": {"a": 1}}], default="end").register()
    assert ask("s", "x").text == "one"
    r = ask("s", "x")
    assert r.tool_calls[0].name == "add" and r.tool_calls[0].arguments == {"a": 1}
    assert ask("s", "x").text == "end"
    m.reset()
    assert ask("s", "x").text == "one"


def test_gist_answers_the_first_sentence_and_is_deterministic():
    a, b = ask("gist", "First sentence here. Second one."), ask("gist", "First sentence "
                                                                "here. Second one.")
    assert a.text == b.text == "[sim:gist] First sentence here."
    assert a.simulated and a.usage.estimated and a.usage.input_tokens > 0


def test_unregistered_sim_name_is_an_unknown_model_listing_the_registered_ones():
    with pytest.raises(UnknownModelError, match=r"sim:ecoh is not a registered.*echo, .*gist"):
        ask("ecoh", "hello")


def test_latency_and_timeout():
    SimModel("slow", default="x", latency=1.0).register()
    pipe = Chain("t", [Step("a", "sim:slow", "{{ input }}")], timeout=0.1, cache=False)
    with pytest.raises(CallTimeoutError, match=r"0\.1s"):
        pipe("x")


def test_model_repr_says_simulated():
    assert "simulated" in repr(resolve_model("sim:echo"))
