"""The calculator tool: arithmetic without eval, bounded, errors the model can read."""

from __future__ import annotations

import asyncio
import re

import pytest

from orchnb.exceptions import ToolError
from orchnb.tools import calculator
from orchnb.tools._calculator import MAX_CHARS, calculate


@pytest.mark.parametrize(("expression", "value"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("7 / 2", 3.5), ("7 // 2", 3), ("7 % 4", 3),
    ("2 ** 10", 1024), ("2 ^ 3", 8), ("-3 + +4", 1), ("sqrt(16)", 4.0), ("round(pi, 3)", 3.142),
    ("max(1, 5, 2)", 5), ("abs(-2.5)", 2.5), ("3 × 4 ÷ 2", 6.0), ("1e3 + 1", 1001.0),
])
def test_calculates(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize(("expression", "problem"), [
    ("__import__('os').system('echo hi')", "unknown function '__import__("),
    ("__import__('os')", "unknown function '__import__'"),
    ("().__class__", "not allowed"),
    ("x + 1", "unknown name 'x'"),
    ("'a' * 3", "not allowed"),
    ("[1, 2]", "not allowed"),
    ("lambda: 1", "not allowed"),
    ("1 / 0", "division by zero"),
    ("9 ** 9 ** 9", "math range error"),
    ("(10 ** 999) * (10 ** 999) * (10 ** 999) * (10 ** 999) * (10 ** 999)", "4096 bits"),
    ("1 +", "not an arithmetic expression"),
    ("", "empty"),
    ("1+" * 150 + "1", "more than 200 parts"),
    ("1" * (MAX_CHARS + 1), f"over {MAX_CHARS} characters"),
    ("sqrt(-1)", "math domain error"),
    ("(-8) ** 0.5", "not a real number"),
    ("round(1.5, ndigits=2)", "unknown function"),
])
def test_refuses_with_a_reason(expression, problem):
    with pytest.raises(ToolError, match="calculator: .*" + re.escape(problem)):
        calculate(expression)


def test_is_a_tool_with_a_schema():
    assert calculator.name == "calculator"
    assert calculator.spec.parameters["required"] == ["expression"]
    assert asyncio.run(calculator.invoke({"expression": "6 * 7"})) == 42
