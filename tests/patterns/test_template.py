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
