"""A misspelt model warns when the pipeline is defined, naming the likely model; known and
merely new or unrelated names do not."""

from __future__ import annotations

import warnings

import pytest

from orchnb import Step
from orchnb.exceptions import OrchnbWarning
from orchnb.models import _names


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(_names, "_WARNED", set())


def test_a_misspelt_model_warns_at_definition_with_the_likely_name():
    with pytest.warns(OrchnbWarning, match=r"did you mean gpt-4o-mini\?") as record:
        Step("a", "openai:gpt-4o-mnii", "{{ input }}")
    assert record[0].filename == __file__  # points at the user's line, not orchnb's
    with pytest.warns(OrchnbWarning, match="did you mean claude-sonnet-4-5"):
        Step("a", "anthropic:claude-sonet-4-5", "{{ input }}")


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "openai:gpt-4o-mini-2024-07-18",
                                   "anthropic:claude-haiku-4-5", "openai:no-such-model-xyz",
                                   "openai:my-finetune-2031", "sim:gpt-4o-mnii"])
def test_known_new_or_unrelated_names_do_not_warn(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Step("a", model, "{{ input }}")


def test_the_warning_is_given_once_per_model():
    with pytest.warns(OrchnbWarning):
        Step("a", "openai:gpt-4o-mnii", "x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Step("b", "openai:gpt-4o-mnii", "x")
