"""A pipeline resolves its models and options once, and again after any edit."""

from __future__ import annotations

import pytest

import orchnb
from orchnb.exceptions import UnknownModelError
from orchnb.models import resolve_model


def test_models_follow_edits_of_steps_and_of_the_step_list():
    a = orchnb.Step("a", "sim:echo", "{{ input }}")
    pipe = orchnb.Chain("resolved", [a], cache=False)
    assert [m.id for m in pipe.models()] == ["sim:echo"]
    assert pipe.models() == pipe.models()
    a.model = resolve_model("sim:gist")
    assert [m.id for m in pipe.models()] == ["sim:gist"]
    pipe.steps.append(orchnb.Step("b", "sim:nope_not_registered", "{{ input }}"))
    with pytest.raises(UnknownModelError):
        pipe("x")  # the new step's model is checked before the run


def test_options_follow_the_session_defaults():
    pipe = orchnb.Chain("resolved_opts", [orchnb.Step("a", "sim:echo", "{{ input }}")])
    before = pipe.options
    assert pipe.options is before  # resolved once
    try:
        orchnb.configure(timeout=7.0)
        assert pipe.options.timeout == 7.0
    finally:
        orchnb.configure(timeout=before.timeout)
    assert pipe.options.timeout == before.timeout
