"""The ``calculator`` tool: arithmetic from a model, evaluated without ``eval``.

The expression is parsed with :mod:`ast` and walked with a whitelist (numbers, + - * / // % **,
parentheses, a few math functions and constants); its length, node count, exponents and the
size of intermediate numbers are bounded, so no input can run code or exhaust memory.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..exceptions import ToolError
from ._tool import Tool

MAX_CHARS = 500
"""Longest expression accepted."""
MAX_NODES = 200
"""Most syntax nodes an expression may have."""
MAX_EXPONENT = 1_000
"""Largest power (``x ** n``) with an integer result; bigger ones go through floats."""
MAX_INT_BITS = 4_096
"""Largest integer (in bits) an intermediate result may be."""

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "log": math.log, "log10": math.log10, "log2": math.log2,
    "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs,
    "round": round, "min": min, "max": max, "floor": math.floor, "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression; raises :class:`ToolError` saying what is wrong.

    >>> calculate("2 * (3 + 4) ** 2 / 7")
    14.0
    >>> calculate("sqrt(16) + round(pi, 2)")
    7.14
    >>> calculate("0.1 + 0.2")
    0.3
    >>> calculate("__import__('os')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    orchnb.exceptions.ToolError: calculator: unknown function '__import__'; ...
    """
    text = str(expression).strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise ToolError("calculator: the expression is empty; send e.g. '2 * (3 + 4)'")
    if len(text) > MAX_CHARS:
        raise ToolError(f"calculator: the expression is over {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError(f"calculator: {text[:80]!r} is not an arithmetic expression; use "
                        "numbers, + - * / // % ** and parentheses") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"calculator: the expression has more than {MAX_NODES} parts")
    try:
        value = _eval(tree.body)
        # 12 significant digits: 0.1 + 0.2 reads 0.3, as a person (and a model) expects.
        return float(f"{value:.12g}") if isinstance(value, float) else value
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError("calculator: division by zero") from None
    except (OverflowError, ValueError, TypeError) as e:
        raise ToolError(f"calculator: {e}") from None


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"calculator: unknown name '{node.id}'; constants: "
                        f"{', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)[:40]
        fn = _FUNCTIONS.get(name)
        if fn is None or node.keywords:
            raise ToolError(f"calculator: unknown function '{name}'; functions: "
                            f"{', '.join(_FUNCTIONS)}")
        return _bounded(fn(*[_eval(a) for a in node.args]))
    what = type(node).__name__
    raise ToolError(f"calculator: {what} is not allowed; use numbers, + - * / // % ** "
                    "and parentheses")


def _power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and abs(exponent) > MAX_EXPONENT:
        base = float(base)  # an overflow error or a float, never a huge integer
    return _bounded(base ** exponent if not isinstance(base, float) else math.pow(base, exponent))


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"calculator: a number in the expression exceeds {MAX_INT_BITS} bits")
    if isinstance(value, complex):
        raise ToolError("calculator: the result is not a real number")
    return value


def _calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression, e.g. '2 * (3 + 4) ** 2' or 'sqrt(2) * pi'.

    Supports + - * / // % ** (or ^), parentheses, sqrt, log, exp, sin, cos, tan, abs, round,
    min, max, floor, ceil and the constants pi, e and tau.
    """
    return calculate(expression)


calculator = Tool(_calculator, name="calculator")
"""The built-in calculator tool (no ``eval``): ``Agent("a", model, [orchnb.tools.calculator])``
or ``tools: [calculator]`` in YAML."""
