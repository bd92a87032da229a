"""How evals/ is built, kept so: a front door over modules that import downward only (no circle,
no sibling imported inside a function to dodge one), small modules and functions, one options
object checked where it is made, and totals that keep an unknown amount unknown."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import orchnb
from orchnb.evals import ScoreReport
from orchnb.evals._options import EvalOptions
from orchnb.evals._totals import usd_total

EVALS = Path(orchnb.__file__).parent / "evals"


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return getattr(t, "id", None) == "TYPE_CHECKING" or getattr(t, "attr", None) == "TYPE_CHECKING"


def _sibling_imports(tree: ast.AST, siblings: set[str]) -> list[tuple[str, bool]]:
    """(sibling, inside a function) for each ``from .x import`` outside ``if TYPE_CHECKING``."""
    out: list[tuple[str, bool]] = []

    def walk(node: ast.AST, in_func: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for c in child.orelse:
                    walk(c, in_func)
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 1:
                names = [child.module] if child.module else [a.name for a in child.names]
                out.extend((n.split(".")[0], in_func) for n in names if n.split(".")[0] in siblings)
            walk(child, in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    walk(tree, False)
    return out


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    files = {p.stem: p for p in EVALS.glob("*.py")}
    graph, local = {}, []
    for name, path in files.items():
        imports = _sibling_imports(ast.parse(path.read_text()), set(files) - {name})
        graph[name] = {m for m, _ in imports}
        local += [f"{name} -> {m}" for m, inside in imports if inside]
    return graph, local


def test_evals_modules_import_each_other_without_a_circle():
    graph, _ = _graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            pytest.fail("import circle in orchnb.evals: " + " -> ".join(
                [*path[path.index(node):], node]))
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert {"_router_eval", "_pipeline_eval", "_compare", "_candidates"} <= graph["_evaluate"]


def test_no_evals_module_imports_a_sibling_inside_a_function():
    _, local = _graph()
    assert local == []  # optional heavy deps (pandas, plotly) may be; siblings never need it


def test_evals_modules_and_functions_are_small():
    big, long = [], []
    for path in EVALS.glob("*.py"):
        text = path.read_text()
        if text.count("\n") > 500:
            big.append(path.name)
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.end_lineno - node.lineno + 1 > 60):  # type: ignore[operator]
                long.append(f"{path.name}:{node.name}")
    assert big == [] and long == []


def test_options_are_frozen_and_checked_on_every_entry_point(make_router):
    opts = EvalOptions(entry="evaluate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.seed = 3  # type: ignore[misc]
    with pytest.raises(orchnb.SpecError, match="evaluate: concurrency must be a whole number"):
        opts.but(concurrency=0)
    rows = pd.DataFrame({"text": ["a", "b"], "answer": ["a", "b"]})
    echo = orchnb.Chain("echo", [orchnb.FunctionStep("say", lambda x: x)])
    with pytest.raises(orchnb.SpecError, match="compare: level must be between 0 and 1"):
        orchnb.compare([echo, echo], rows, expected="answer", level=2, save=False)
    with pytest.raises(orchnb.SpecError, match="evaluate: n_boot must be a whole number"):
        orchnb.evaluate(echo, rows, expected="answer", n_boot=-1)
    with pytest.raises(orchnb.SpecError, match="compare_routers: progress must be True or"):
        orchnb.compare_routers([make_router("a")], rows, label="answer", progress="yes")


def test_a_total_over_an_unpriced_row_is_unknown_not_the_priced_part():
    assert usd_total([0.25, 0.5]) == 0.75
    assert math.isnan(usd_total([0.25, math.nan]))
    scores = pd.DataFrame({"input": ["a", "b"], "output": ["a", "b"], "exact": [1.0, 1.0],
                           "status": ["ok", "ok"], "cost_usd": [0.25, np.nan],
                           "list_usd": [0.25, np.nan], "calls": [1, 1], "cached_calls": [0, 1],
                           "tokens": [3, 3], "latency_ms": [1.0, 1.0], "service_ms": [1.0, 1.0]})
    report = ScoreReport("t", scores, [{"name": "exact", "binary": True, "llm": False}],
                         n_boot=0)
    assert math.isnan(report.cost_usd) and math.isnan(report.list_usd)
    assert (report.calls, report.cached_calls) == (2, 1)
    assert "unpriced per 1k inputs" in repr(report)


def test_cache_hits_on_an_unpriced_router_saved_an_unknown_amount(tickets, make_router):
    router = make_router("dark", model="eval-unpriced", priced_as="openai:my-finetune-xyz")
    rows = tickets.head(4)
    orchnb.evaluate(router, rows, progress=False, n_boot=0)
    again = orchnb.evaluate(router, rows, progress=False, n_boot=0)
    assert again.cached_calls == 4
    assert math.isnan(again.saved_usd)  # not "4 cached calls saved $0.00"
    assert "saved unpriced" in again._repr_html_()
