"""Bad input fails before any model call, naming the line and key at fault."""

from __future__ import annotations

import pytest

from orchnb import SpecError, TemplateError, UnknownModelError, YAMLError
from orchnb.models import SimModel
from orchnb.patterns import from_yaml

GOOD_STEP = "  - name: a\n    model: sim:echo\n    prompt: hi\n"

CASES = [
    # (yaml body, error type, line, key, words in the message)
    ("pattern: chain\nsteps: [\n", YAMLError, 3, None, ["invalid YAML", "never closed"]),
    ("pattern: chain\n  steps: x\n bad", YAMLError, None, None,
     ["invalid YAML", "check the indentation of `steps` against `pattern`"]),
    # Syntax errors in plain words, not the parser's state ("expected <block end>...").
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n   prompt: hi\n", YAMLError,
     5, None, ["check the indentation of `prompt` against `model`"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n      prompt: hi\n",
     YAMLError, 5, None, ["check the indentation of `prompt` against `model`"]),
    ("pattern: chain\nsteps:\n\t- name: a\n", YAMLError, 3, None,
     ["YAML needs spaces, not tabs"]),
    ("pattern: chain\nname: a: b\n", YAMLError, 2, None, ["must be quoted", 'name: "a: b"']),
    ("pattern: chain\nprompt: {{ input }}\n", YAMLError, 2, None,
     ['prompt: "{{ input }}"']),
    ("- a\n- b\n", YAMLError, 1, None, ["mapping", "pattern"]),
    ("steps: []\n", SpecError, 1, "pattern", ["needs a 'pattern:' key"]),
    ("pattern: chian\nsteps: []\n", SpecError, 1, "pattern", ["chian", "chain"]),
    ("pattern: chain\nstepz: []\n", SpecError, 2, "stepz", ["unknown key 'stepz'"]),
    ("pattern: chain\nsteps: []\n", SpecError, 2, "steps", ["no steps"]),
    ("pattern: chain\nsteps:\n  - name: a\n    modle: sim:echo\n    prompt: x\n", SpecError, 4,
     "steps[0].modle", ["unknown key 'modle'", "model"]),
    ("pattern: chain\nsteps:\n  - name: a\n    prompt: x\n", SpecError, 3, "steps[0].model",
     ["'model' is required"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: gpt-4o\n    prompt: x\n", UnknownModelError,
     4, "steps[0].model", ["provider:model"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: opnai:gpt-4o\n    prompt: x\n",
     UnknownModelError, 4, "steps[0].model", ["unknown provider 'opnai'", "openai"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n    prompt: '{{ inptu }}'\n",
     TemplateError, 5, "steps[0].prompt", ["inptu", "input"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n    prompt: |\n      ok\n"
     "      {{ input \n", TemplateError, 7, "steps[0].prompt", ["syntax error"]),
    ("pattern: chain\nsteps:\n" + GOOD_STEP + "  - name: b\n    model: sim:echo\n"
     "    prompt: '{{ steps.c }}'\n", TemplateError, 8, "steps[1].prompt", ["steps.c", "a"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n    prompt: '{{ steps.b }}'\n"
     "  - name: b\n    model: sim:echo\n    prompt: x\n", TemplateError, 5, "steps[0].prompt",
     ["comes later"]),
    ("pattern: chain\nsteps:\n" + GOOD_STEP + GOOD_STEP, SpecError, None, "steps[1].name",
     ["two steps are named 'a'"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n    prompt: x\n"
     "    temperature: hot\n", SpecError, 6, "steps[0].temperature", ["valid number"]),
    ("pattern: chain\nsteps:\n  - name: a\n    model: sim:echo\n    prompt: [1, 2]\n",
     SpecError, 5, "steps[0].prompt", ["string"]),
    ("pattern: chain\nsteps:\n  - not_defined_fn\n", SpecError, 3, "steps[0]",
     ["not_defined_fn", "not defined"]),
    ("pattern: chain\nbudget: {max_cals: 3}\nsteps:\n" + GOOD_STEP, SpecError, 2,
     "budget.max_cals", ["unknown key 'max_cals'", "max_calls"]),
]


@pytest.mark.parametrize(("body", "error", "line", "key", "words"), CASES)
def test_bad_spec_fails_with_line_and_key(body, error, line, key, words):
    calls = []
    SimModel("echo_spy", fn=lambda r: calls.append(r) or "x").register()
    with pytest.raises(error) as info:
        from_yaml(body, "p")
    e = info.value
    if line is not None:
        assert e.line == line, str(e)
        assert f"line {line}" in str(e)
    if key is not None:
        assert e.key == key, str(e)
    for word in words:
        assert word in str(e), str(e)
    assert calls == []


def test_line_numbers_account_for_the_magic_line():
    with pytest.raises(SpecError) as info:
        from_yaml("pattern: chian\n", "p", line_offset=1)
    assert info.value.line == 2


def test_callables_are_looked_up_in_the_namespace():
    def clean(text: str) -> str:
        return text.strip().lower()

    body = "pattern: chain\nsteps:\n  - clean\n" + GOOD_STEP.replace("hi", "'{{ input }}'")
    pipe = from_yaml(body, "p", {"clean": clean})
    assert pipe("  HELLO ").output == "hello"


@pytest.mark.parametrize(("body", "shown", "absent"), [
    ("pattern: chain\nsteps:\n  - {name: a, model: 'sim:echo', prompt: '{{ inptu }}'}\n",
     "history, input, memory, run_input, steps (", ["workspace", "labels", "item", "agents"]),
    ("pattern: mapreduce\nmap:\n  pattern: chain\n  steps:\n"
     "    - {name: a, model: 'sim:echo', prompt: '{{ inptu }}'}\n",
     "history, input, item, memory, outputs, run_input, steps (", ["workspace", "labels"]),
])
def test_the_available_variables_hint_names_only_what_the_enclosing_patterns_give(
        body, shown, absent):
    with pytest.raises(TemplateError, match="undefined template variable") as e:
        from_yaml(body, "hint")
    message = str(e.value)
    assert f"available: {shown}" in message
    assert not [name for name in absent if name in message]
