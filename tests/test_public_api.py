"""The public surface: every public name exported, documented, and cheap to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orchnb

PACKAGE = Path(orchnb.__file__).parent


def test_every_public_name_is_exported_and_documented():
    for name in orchnb.__all__:
        obj = getattr(orchnb, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"orchnb.{name} has no docstring"
    assert orchnb.__all__ == sorted(orchnb.__all__)
    assert set(orchnb.__all__) <= set(dir(orchnb))


def test_no_helper_leaks_into_the_namespace():
    for name in ("Any", "annotations", "_Any"):
        assert name not in dir(orchnb), name
    assert not hasattr(orchnb, "Any") and not hasattr(orchnb, "annotations")


def test_design_names_exist():
    for name in ("Chain", "Router", "MapReduce", "Agent", "PlanExecute", "Team", "Run",
                 "traces", "evaluate", "Playground"):
        assert hasattr(orchnb, name), name
    assert hasattr(orchnb.testing, "FakeProvider")


def test_import_orchnb_loads_no_sdk_pandas_or_plotly():
    code = ("import sys, orchnb; heavy = [m for m in ('openai', 'anthropic', 'pandas', 'plotly', "
            "'IPython', 'anywidget') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-node.level]
                base = ".".join(parts + ((base,) if base else ()))
            names.add(base)
    return names


LAYERS = ["tools", "models", "trace", "viz", "engine", "memory", "patterns", "evals", "notebook"]
# memory sits beside patterns: steps recall from it, and it resolves embedders through patterns.
BELOW = {"models": set(), "tools": {"models"}, "trace": {"models"}, "viz": {"trace"},
         "engine": {"models", "tools", "trace", "viz"},
         "memory": {"models", "tools", "trace", "viz", "engine", "patterns"},
         "patterns": {"models", "tools", "trace", "viz", "engine", "memory"},
         "evals": {"models", "tools", "trace", "engine", "memory", "patterns", "viz"},
         "notebook": set(LAYERS) - {"notebook"}}


def test_layers_import_downward_only():
    bad = []
    for layer in LAYERS:
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in _imports(path):
                if not name.startswith("orchnb."):
                    if layer in ("models", "trace", "engine") and name.split(".")[0] in (
                            "IPython", "ipywidgets", "anywidget"):
                        bad.append(f"{path.name} imports {name}")
                    continue
                target = name.split(".")[1]
                if target in LAYERS and target != layer and target not in BELOW[layer]:
                    bad.append(f"{layer}/{path.name} imports {name}")
    assert not bad, bad


def test_no_private_name_is_imported_across_packages():
    """A package's ``_modules`` and ``_names`` are its own; others use what it exports."""
    bad = []
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            base = node.module or ""
            if node.level:
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-node.level]
                base = ".".join(parts + ((base,) if base else ()))
            parts = base.split(".")
            if parts[0] != "orchnb" or len(parts) < 2 or parts[1] == own:
                continue
            private = [p for p in parts[2:] if p.startswith("_")] + [
                a.name for a in node.names if a.name.startswith("_")]
            if private:
                bad.append(f"{path.relative_to(PACKAGE)} imports {base}: {private}")
    assert not bad, bad
