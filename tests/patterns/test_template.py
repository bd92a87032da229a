"""Prompt templates: sandboxed Jinja2, strict variables, fast path identical to Jinja2."""

from __future__ import annotations

import pytest

from orchnb import TemplateError
from orchnb.patterns import Prompt


@pytest.mark.parametrize("source", [
    "Summarize: {{ input }}", "{{ steps.a }} and {{ steps.b }}", "plain text",
    "{{ input }}{{ input }}", "x {{ run_input }} y",
])
def test_fast_path_renders_like_jinja(source):
    values = {"input": "doc", "steps": {"a": "A", "b": 2}, "run_input": None}
    prompt = Prompt(source)
    fast = prompt.render(**values)
    prompt._parts = None
    assert fast == prompt.render(**values)


def test_filters_loops_and_conditionals_work():
    p = Prompt("{% for o in outputs %}- {{ o | upper }}\n{% endfor %}{% if input %}!{% endif %}")
    assert p.render(outputs=["a", "b"], input="x") == "- A\n- B\n!"


def test_sandbox_blocks_attribute_escapes_at_definition():
    with pytest.raises(TemplateError, match="may not read private or internal"):
        Prompt("{{ input.__class__.__mro__ }}")


def test_missing_value_at_render_is_a_template_error():
    with pytest.raises(TemplateError, match="steps"):
        Prompt("{{ steps.nope }}").render(steps={})


def test_unknown_variable_fails_at_definition():
    with pytest.raises(TemplateError, match="inptu"):
        Prompt("{{ inptu }}")


@pytest.mark.parametrize("source", [
    "{{ run_input.gi_frame }}", "{{ input.__class__ }}", "{{ input._private }}",
    "{{ f.func_globals }}", "{{ input | attr('__class__') }}", "{{ input['__class__'] }}",
    "{{ x.f_globals }}", "{% for c in input.mro %}{% endfor %}",
])
def test_private_and_internal_attributes_fail_at_definition(source):
    with pytest.raises(TemplateError, match="may not read private or internal") as info:
        Prompt(source, owner="step 's': ", allowed=frozenset({"run_input", "input", "f", "x"}))
    assert "step 's'" in str(info.value) and info.value.line == 1


def test_a_step_key_starting_with_an_underscore_is_still_an_item():
    assert Prompt("{{ steps['_prep'] }}").render(steps={"_prep": "P"}) == "P"


def test_fast_path_applies_the_sandbox_rules_by_type():
    import sys

    frame = sys._getframe()
    prompt = Prompt("{{ input.f_lineno }}")  # a harmless name, but frames are off limits
    assert prompt._parts is not None  # the fast path is the one tried first
    with pytest.raises(TemplateError, match="unsafe"):
        prompt.render(input=frame)


def test_fast_path_reads_ordinary_attributes():
    class Doc:
        title = "T"

    assert Prompt("x {{ input.title }}").render(input=Doc()) == "x T"


@pytest.mark.parametrize("source", [
    "{{ input }}", "{{ input | upper }}",
    "{% for i in range(100000) %}{{ input }}{% endfor %}",
])
def test_a_rendered_prompt_over_the_cap_is_a_template_error_naming_the_step(source):
    prompt = Prompt(source, owner="step 'big': ", max_chars=1000)
    with pytest.raises(TemplateError, match="more than the 1,000 allowed") as info:
        prompt.render(input="x" * 1001)
    assert "step 'big'" in str(info.value)


def test_repetition_is_refused_before_building_a_huge_string():
    with pytest.raises(TemplateError, match="more than a prompt may hold"):
        Prompt("{{ 'x' * 30000000 }}").render()
    with pytest.raises(TemplateError, match="too large"):
        Prompt("{{ 2 ** 100000000 }}").render()
    assert Prompt("{{ '-' * 3 }}{{ 2 ** 10 }}").render() == "---1024"


def test_the_cap_is_configurable_for_all_prompts(monkeypatch):
    monkeypatch.setattr(Prompt, "max_chars", 10)
    with pytest.raises(TemplateError, match=r"raise orchnb\.patterns\.Prompt\.max_chars"):
        Prompt("{{ input }}").render(input="x" * 11)
    assert Prompt("{{ input }}").render(input="x" * 10) == "x" * 10
