"""Hostile YAML is refused quickly, with the line: alias bombs, recursive aliases, duplicate
keys, deep nesting. Ordinary anchors, aliases and merge keys keep working."""

from __future__ import annotations

import time

import pytest

from orchnb import YAMLError, from_yaml
from orchnb.patterns._spec import MAX_YAML_NODES, load_yaml

HANG_GUARD_S = 2.0


def bomb(levels: int) -> str:
    lines = ["pattern: chain", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]")
    lines.append(f"steps: *a{levels - 1}")
    return "\n".join(lines)


@pytest.mark.parametrize("levels", [6, 9, 12])
def test_alias_bombs_are_refused_quickly_naming_the_line(levels):
    t = time.perf_counter()
    with pytest.raises(YAMLError, match="alias bomb") as info:
        from_yaml(bomb(levels))
    assert time.perf_counter() - t < HANG_GUARD_S
    # 8**6 > 100,000: the value that crosses the budget is on line 7 (a5), whatever follows
    assert info.value.line == 7
    assert f"{MAX_YAML_NODES:,}" in str(info.value)


def test_recursive_alias_is_refused_naming_the_line():
    with pytest.raises(YAMLError, match="recursive alias") as info:
        from_yaml("pattern: chain\nsteps: &s [*s]\n")
    assert info.value.line == 2


def test_recursive_mapping_alias_is_refused():
    with pytest.raises(YAMLError, match="recursive alias"):
        from_yaml("pattern: chain\nx: &m\n  inner: *m\nsteps: []\n")


def test_duplicate_keys_name_both_lines():
    text = ("pattern: chain\nsteps:\n  - {name: a, model: 'sim:echo', prompt: x}\n"
            "name: one\nsteps: []\n")
    with pytest.raises(YAMLError, match=r"duplicate key 'steps' \(first on line 2\)") as info:
        from_yaml(text)
    assert info.value.line == 5


def test_duplicate_keys_inside_a_step_are_refused():
    text = "pattern: chain\nsteps:\n  - name: a\n    model: 'sim:echo'\n    model: 'sim:x'\n"
    with pytest.raises(YAMLError, match="duplicate key 'model'") as info:
        from_yaml(text)
    assert info.value.line == 5


@pytest.mark.parametrize("text", [
    "pattern: chain\nsteps: " + "[" * 5000 + "]" * 5000 + "\n",
    "pattern: chain\nsteps: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
])
def test_deep_nesting_is_refused_quickly(text):
    t = time.perf_counter()
    with pytest.raises(YAMLError, match="nested more than"):
        from_yaml(text)
    assert time.perf_counter() - t < HANG_GUARD_S


def test_line_offset_applies_to_the_new_errors():
    with pytest.raises(YAMLError) as info:
        from_yaml("pattern: chain\nsteps: &s [*s]\n", line_offset=1)
    assert info.value.line == 3


def test_ordinary_anchors_aliases_and_merge_keys_still_work():
    text = """
pattern: chain
defaults: &d {model: "sim:echo"}
steps:
  - {<<: *d, name: a, prompt: "A {{ input }}"}
  - {<<: *d, name: b, prompt: "B {{ steps.a }}"}
"""
    _, data = load_yaml(text)
    assert data["steps"][1]["model"] == "sim:echo"


def test_invalid_yaml_still_names_its_line():
    with pytest.raises(YAMLError, match="invalid YAML") as info:
        from_yaml("pattern: chain\nsteps: [a, b\n")
    assert info.value.line is not None
