"""PyYAML's syntax errors in plain words: what to change, on which line.

PyYAML reports its parser's state ("expected <block end>, but found '<block mapping
start>'"); a person needs "check the indentation of `prompt` against `model`".
"""

from __future__ import annotations

import re

import yaml

_KEY = re.compile(r"^\s*(?:-\s+)?([^\s:#][^:#]*?)\s*:(?:\s|$)")


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _key(line: str) -> str | None:
    m = _KEY.match(line)
    return m.group(1).strip() if m else None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _column(line: str) -> int:
    """Where the line's key starts (after a list dash), else its indentation."""
    m = _KEY.match(line)
    return m.start(1) if m else _indent(line)


def _previous(lines: list[str], row: int) -> str | None:
    for back in range(row - 1, -1, -1):
        if lines[back].strip() and not lines[back].lstrip().startswith("#"):
            return lines[back]
    return None


def _against(lines: list[str], row: int) -> str | None:
    """"check the indentation of `b` against `a`" for the line ``row`` and the key above."""
    if not 0 <= row < len(lines):
        return None
    here, above = _key(lines[row]), _previous(lines, row)
    there = _key(above) if above is not None else None
    if here and there and _column(lines[row]) != _column(above or ""):
        return (f"check the indentation of `{here}` against `{there}`: keys of one mapping "
                f"start in the same column (YAML counts the spaces)")
    return None


def plain_yaml_error(error: yaml.MarkedYAMLError, text: str) -> str:
    """``invalid YAML: `` and what to fix, in words, for a PyYAML syntax error in ``text``."""
    return f"invalid YAML: {_words(error, text)}"


def _words(error: yaml.MarkedYAMLError, text: str) -> str:
    """What to fix, in words, for a PyYAML syntax error in ``text``.

    >>> import yaml
    >>> text = "steps:\\n  - name: a\\n    model: m\\n   prompt: hi\\n"
    >>> try:
    ...     yaml.safe_load(text)
    ... except yaml.MarkedYAMLError as e:
    ...     print(_words(e, text)[:49])
    check the indentation of `prompt` against `model`
    """
    problem = str(error.problem or error)
    mark = error.problem_mark or error.context_mark
    lines = _lines(text)
    row = mark.line if mark is not None else -1
    line = lines[row] if 0 <= row < len(lines) else ""
    if "'\\t'" in problem or "\t" in line[:_indent(line) + 1]:
        return "YAML needs spaces, not tabs: indent this line with spaces"
    if "expected <block end>" in problem or "expected <block mapping" in problem:
        return _against(lines, row) or (
            "check the indentation of this line against the line above: items of one list or "
            "mapping start in the same column")
    if "mapping values are not allowed" in problem:
        above = _previous(lines, row)
        if above is not None and _indent(line) > _indent(above) and _key(above):
            return _against(lines, row) or "check the indentation of this line"
        return ("a value holding ': ' must be quoted, e.g. name: \"a: b\" (YAML reads the "
                "second ':' as another key)")
    if "unhashable key" in problem and "{" in line:
        return ("a value starting with '{' must be quoted, e.g. prompt: \"{{ input }}\" (YAML "
                "reads '{' as the start of a mapping)")
    context = str(error.context or "")
    start = error.context_mark.line + 1 if error.context_mark is not None else "?"
    if "end of stream" in problem and "quoted scalar" in context:
        return f"the quote opened on line {start} is never closed"
    if "<stream end>" in problem and ("flow sequence" in context or "flow mapping" in context):
        bracket = "[" if "sequence" in context else "{"
        return f"the '{bracket}' opened on line {start} is never closed"
    if "<stream end>" in problem and "flow" in context:
        return "a '[' or '{' is never closed (the YAML ends inside it)"
    return problem
