"""``python -m orchnb``: run a pipeline's YAML outside the notebook, or serve it over HTTP.

The same engine as in the notebook: the YAML's budget, cache and timeout apply, every run is
traced to the SQLite store under ``ORCHNB_HOME`` (``orchnb.traces()`` reads it). Errors print
one line, ``orchnb: ...``, and exit non-zero: 2 for a bad command line, YAML or tools file,
1 for a failed run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

_CALLABLES_HELP = """\
Python functions named in the YAML (tools, reducers, chunkers, Python steps, classifiers)
are looked up in --module (an importable module, e.g. mypkg.tools) and --tools (a .py file);
both may be repeated. Importing them also registers the sim: models they define."""

_EPILOG = f"""{_CALLABLES_HELP}

examples:
  python -m orchnb run triage.yaml --input "I was charged twice" --tools tools.py
  python -m orchnb run summarize.yaml --inputs tickets.jsonl --module mypkg.tools > out.jsonl
  python -m orchnb serve triage.yaml --port 8000 --tools tools.py
"""


class CliError(Exception):
    """A problem to report in one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """The ``orchnb`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return int(args.handler(args))
        except CliError as e:
            _say(str(e))
            return e.code
        except KeyboardInterrupt:
            _say("interrupted")
            return 130
        except Exception as e:  # anything else still gets one line, never a traceback
            if getattr(args, "debug", False):
                raise
            _say(f"{type(e).__name__}: {_line(str(e))}")
            return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m orchnb", description="Run or serve an orchnb pipeline YAML.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run a pipeline once (--input) or once per JSONL line (--inputs)",
        description="Run PIPELINE.yaml on one input, printing its output, or on each line of "
                    "a JSONL file, printing one JSON record per line (output, run_id, status, "
                    "cost_usd).", epilog=_CALLABLES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("pipeline", metavar="PIPELINE.yaml")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--input", metavar="TEXT", help="the input text ('-' reads stdin)")
    which.add_argument("--inputs", metavar="FILE.jsonl",
                       help="one run per line: a JSON value, or an object with an 'input' key "
                            "(its other keys are copied to the output record)")
    run.add_argument("--output", metavar="FILE", help="write the output (JSONL) here, not to "
                                                      "stdout")
    run.add_argument("--json", action="store_true",
                     help="with --input: print the JSON record, not only the output")
    _shared(run)
    run.set_defaults(handler=_cmd_run)

    serve = sub.add_parser(
        "serve", help="serve a pipeline over HTTP (POST /run, GET /health)",
        description="Serve PIPELINE.yaml: POST /run {\"input\": ...} answers {\"output\", "
                    "\"run_id\", \"status\", \"cost_usd\"}; GET /health. Needs "
                    "pip install 'orchnb[serve]'.", epilog=_CALLABLES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("pipeline", metavar="PIPELINE.yaml")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port (default "
                                                               "8000)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="default 127.0.0.1 (this machine only); the server has no "
                            "authentication, so expose it only behind one")
    _shared(serve)
    serve.set_defaults(handler=_cmd_serve)
    return parser


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--module", action="append", default=[], metavar="MODULE",
                   help="import Python callables named in the YAML from this module")
    p.add_argument("--tools", action="append", default=[], metavar="FILE.py",
                   help="import Python callables named in the YAML from this file")
    p.add_argument("--max-usd", type=float, help="budget: dollars per run")
    p.add_argument("--max-calls", type=int, help="budget: model calls per run")
    p.add_argument("--max-tokens", type=int, help="budget: tokens per run")
    p.add_argument("--no-cache", action="store_true", help="do not answer from the response "
                                                           "cache")
    p.add_argument("--no-persist", action="store_true",
                   help="do not write traces to the store under ORCHNB_HOME")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


# -- loading ------------------------------------------------------------------------------------
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
        message = _line(str(e)).replace("is not defined in the notebook; define it in a cell "
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
                           f"{_line(str(e))}") from None
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
                           f"{_line(str(e))}") from None
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
        record["error"] = f"{type(e).__name__}: {_line(str(e))}"
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


def _cmd_run(args: argparse.Namespace) -> int:
    pipe = load_pipeline(args.pipeline, args.module, args.tools)
    options = run_options(pipe, args)
    if args.input is not None:
        value = sys.stdin.read() if args.input == "-" else args.input
        record = run_one(pipe, value, options)
        with _out(args.output) as out:
            if args.json:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            elif record.get("error") is None:
                output = record["output"]
                out.write((output if isinstance(output, str) else
                           json.dumps(output, ensure_ascii=False)) + "\n")
        _summary(record)
        if record.get("error"):
            _say(f"run {record['run_id'] or '(not started)'} {record['status']}: "
                 f"{record['error']}")
            return 1
        return 0
    failed = total = 0
    with _out(args.output) as out:
        for record in _batch(pipe, args.inputs, options):
            total += 1
            failed += record["status"] != "ok"
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
    if failed:
        _say(f"{failed} of {total} runs failed (their records have 'error')")
        return 1
    _say(f"{total} runs ok")
    return 0


def _batch(pipe: Any, path: str, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            yield {"line": n, "output": None, "run_id": None, "status": "error",
                   "cost_usd": None, "error": f"{path} line {n}: invalid JSON: {e.msg}"}
            continue
        extra: dict[str, Any] = {}
        if isinstance(item, dict):
            if "input" not in item:
                yield {**item, "line": n, "output": None, "run_id": None, "status": "error",
                       "cost_usd": None, "error": f"{path} line {n}: an object needs an "
                                                  f"'input' key"}
                continue
            extra = {k: v for k, v in item.items() if k != "input"}
            item = item["input"]
        yield {**extra, "line": n, **run_one(pipe, item, options)}


def _cmd_serve(args: argparse.Namespace) -> int:
    pipe = load_pipeline(args.pipeline, args.module, args.tools)
    options = run_options(pipe, args)
    from ._serve import serve

    return serve(pipe, host=args.host, port=args.port, options=options)


# -- output -------------------------------------------------------------------------------------
class _out:
    """stdout, or a file opened for the duration."""

    def __init__(self, path: str | None):
        self.path, self.file = path, None

    def __enter__(self) -> TextIO:
        if self.path is None:
            return sys.stdout
        try:
            self.file = open(self.path, "w", encoding="utf-8")
        except OSError as e:
            raise CliError(f"cannot write {self.path}: {e.strerror or e}") from None
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _summary(record: dict[str, Any]) -> None:
    from .trace import fmt_usd

    cost = record.get("cost_usd")
    price = "cost unknown" if cost is None else fmt_usd(cost)
    sim = " (simulated)" if record.get("simulated") else ""
    if record.get("run_id"):
        _say(f"run {record['run_id']} {record['status']} · {record.get('calls', 0)} calls · "
             f"{record.get('tokens', 0)} tokens · {price}{sim}")


def _line(text: str) -> str:
    return " ".join(text.split())


def _say(message: str) -> None:
    print(f"orchnb: {message}", file=sys.stderr, flush=True)


def _one_line_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: Any = None) -> None:
    _say(f"warning: {_line(str(message))}")
