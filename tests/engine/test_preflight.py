"""Fail before paying: a run checks every model of its pipeline before its first call."""

from __future__ import annotations

import pytest

import orchnb
from orchnb import Chain, MissingAPIKeyError, Step, UnknownModelError


def test_a_missing_second_key_is_reported_before_the_first_call(fake_env, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    pipe = Chain("two", [Step("a", "openai:gpt-4o-mini", "{{ input }}"),
                         Step("b", "anthropic:claude-haiku-4-5", "{{ input }}")])
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        pipe("x")
    assert fake_env.requests == []  # nothing was paid for


def test_every_missing_key_is_named_in_one_error(monkeypatch):
    pipe = Chain("two", [Step("a", "openai:gpt-4o-mini", "{{ input }}"),
                         Step("b", "anthropic:claude-haiku-4-5", "{{ input }}")])
    with pytest.raises(MissingAPIKeyError) as info:
        pipe("x")
    assert set(info.value.missing) == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    assert "OPENAI_API_KEY and ANTHROPIC_API_KEY" in str(info.value)


def test_nested_models_are_checked_too(fake_env, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    inner = Chain("inner", [Step("deep", "openai:gpt-4o-mini", "{{ input }}")])
    pipe = orchnb.Router("r", classifier=lambda text: "deep",
                         routes={"deep": inner, "easy": Step("easy", "sim:echo", "x")})
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        pipe("x")
    assert fake_env.requests == []


def test_a_sim_typo_is_an_unknown_model_naming_the_registered_ones():
    pipe = Chain("typo", [Step("a", "sim:ecoh", "{{ input }}")])
    with pytest.raises(UnknownModelError, match=r"sim:ecoh is not a registered sim model.*echo"):
        pipe("x")
    assert pipe.last_run is None  # refused before a run began


def test_user_errors_render_as_one_block_in_ipython():
    err = MissingAPIKeyError("openai", "OPENAI_API_KEY")
    lines = err._render_traceback_()
    # The message, then how to get the traceback back: no traceback.
    assert len(lines) == 2 and "OPENAI_API_KEY" in lines[0] and "%xmode verbose" in lines[1]
    budget = orchnb.BudgetExceeded("step 'a': budget", limit="calls")
    assert len(budget._render_traceback_()) == 2
