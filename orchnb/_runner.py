"""What the command line and ``serve`` share: loading a pipeline and its Python names, the
options of a run, and a run's record as JSON (``python -m orchnb``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class CliError(Exception):
    """A problem to report in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def load_pipeline(path: str, modules: Sequence[str] = (), files: Sequence[str] = ()) -> Any:
    """The pipeline of a YAML file, its callables found in ``modules`` and ``files``."""
    from .exceptions import SpecError
    from .patterns import from_yaml

    namespace = load_namespace(modules, files)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        pipe = from_yaml(text, namespace=namespace)
    except SpecError as e:
        hint = ("" if namespace or "not defined in the notebook" not in str(e) else
                "; pass the file or module that defines it with --tools FILE.py or --module")
        message = one_line(str(e)).replace("is not defined in the notebook; define it in a cell "
                                        "above", "is not defined by --module/--tools")
        raise CliError(f"{path}: {message}{hint}") from None
    if not re.search(r"(?m)^name\s*:", text):
        pipe.name = Path(path).stem  # traces name the file, not "pipeline"
    return pipe


def load_namespace(modules: Sequence[str] = (), files: Sequence[str] = ()) -> dict[str, Any]:
    """The names defined by ``modules`` (importable names) and ``files`` (``.py`` paths)."""
    namespace: dict[str, Any] = {}
    if modules and "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # `orchnb` (the script) runs without the cwd
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as e:
            raise CliError(f"--module {name}: cannot import it: {type(e).__name__}: "
                           f"{one_line(str(e))}") from None
        namespace.update(_public(module))
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise CliError(f"--tools {file}: no such file")
        spec = importlib.util.spec_from_file_location(f"orchnb_tools_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CliError(f"--tools {file}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # so it can import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise CliError(f"--tools {file}: it raised {type(e).__name__}: "
                           f"{one_line(str(e))}") from None
        namespace.update(_public(module))
    return namespace


def _public(module: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("__")}


def run_options(pipe: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Per-run options from the command line: budget caps on top of the YAML's, cache."""
    from .engine import Budget

    opts: dict[str, Any] = {}
    caps = {"max_usd": args.max_usd, "max_calls": args.max_calls, "max_tokens": args.max_tokens}
    if any(v is not None for v in caps.values()):
        base = pipe.options.budget or Budget()
        opts["budget"] = Budget(**{k: caps[k] if caps[k] is not None else getattr(base, k)
                                   for k in caps})
    if args.no_cache:
        opts["cache"] = False
    if args.no_persist:
        from .engine import configure

        configure(persist=False)
    return opts


# -- running ------------------------------------------------------------------------------------
def run_one(pipe: Any, value: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Run once; the JSON record (``error`` added when the run failed, never raised)."""
    try:
        run = pipe(value, **options)
    except Exception as e:  # OrchnbError or an exception from the user's own code
        run = getattr(e, "run", None)
        record = record_of(run) if run is not None else {
            "output": None, "run_id": None, "status": "error", "cost_usd": None}
        record["error"] = f"{type(e).__name__}: {one_line(str(e))}"
        return record
    return record_of(run)


def record_of(run: Any) -> dict[str, Any]:
    """A finished run as JSON data: ``output, run_id, status, cost_usd`` (+ calls, tokens)."""
    cost = run.cost_usd
    return {"output": jsonable(run.output), "run_id": run.id, "status": run.status,
            "cost_usd": None if cost is None or math.isnan(cost) else round(cost, 10),
            "calls": run.calls, "tokens": run.tokens, "simulated": run.simulated}


def jsonable(value: Any) -> Any:
    """``value`` as JSON data (pydantic models and dataclasses as objects, else its text)."""
    import dataclasses

    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str, allow_nan=False))


def one_line(text: str) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(text.split())
