"""``python -m orchnb``: run a pipeline's YAML outside the notebook, or serve it over HTTP.

The same engine as in the notebook: the YAML's budget, cache and timeout apply, every run is
traced to the SQLite store under ``ORCHNB_HOME`` (``orchnb.traces()`` reads it). Errors print
one line, ``orchnb: ...``, and exit non-zero: 2 for a bad command line, YAML or tools file,
1 for a failed run.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from ._runner import (  # noqa: F401 - re-exported for older code
    CliError,
    jsonable,
    load_namespace,
    load_pipeline,
    one_line,
    record_of,
    run_one,
    run_options,
)

_CALLABLES_HELP = """\
Python functions named in the YAML (tools, reducers, chunkers, Python steps, classifiers)
are looked up in --module (an importable module, e.g. mypkg.tools) and --tools (a .py file);
both may be repeated. Importing them also registers the sim: models they define."""

_EPILOG = f"""{_CALLABLES_HELP}

examples:
  python -m orchnb run triage.yaml --input "I was charged twice" --tools tools.py
  python -m orchnb run summarize.yaml --inputs tickets.jsonl --module mypkg.tools > out.jsonl
  python -m orchnb serve triage.yaml --port 8000 --tools tools.py
  python -m orchnb eval qa.yaml qa.csv --expected answer --save base.json
  python -m orchnb eval qa.yaml qa.csv --expected answer --baseline base.json --html eval.html
"""


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
            _say(f"{type(e).__name__}: {one_line(str(e))}")
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
    _eval_parser(sub)
    return parser


def _eval_parser(sub: Any) -> None:
    ev = sub.add_parser(
        "eval", help="evaluate a pipeline on a data file; with --baseline, a regression gate",
        description="Evaluate PIPELINE.yaml on each row of DATA (.csv, .jsonl, .parquet...) and "
                    "score the outputs. --baseline FILE (a report written by --save) or an "
                    "experiment id compares the scores row by row: exit 1 when a scorer dropped "
                    "significantly by more than --margin points, else 0 (2: bad arguments).",
        epilog=_CALLABLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("pipeline", metavar="PIPELINE.yaml")
    ev.add_argument("data", metavar="DATA")
    ev.add_argument("--text", default="text", help="column of the inputs (default text)")
    ev.add_argument("--expected", help="column of the expected answers (scored 'exact')")
    ev.add_argument("--scorer", action="append", default=None, metavar="NAME",
                    help="a built-in scorer (exact, contains, regex:..., numeric...); repeatable")
    ev.add_argument("--baseline", metavar="FILE_OR_EXPERIMENT",
                    help="an earlier report (--save FILE) or a saved experiment id or name")
    ev.add_argument("--margin", type=float, default=2.0,
                    help="points a score may drop before it counts as a regression (default 2)")
    ev.add_argument("--save", metavar="FILE.json", help="write this report (a later baseline)")
    ev.add_argument("--html", metavar="FILE.html", help="write a self-contained HTML report")
    _shared(ev)
    ev.set_defaults(handler=_cmd_eval)


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


def _cmd_eval(args: argparse.Namespace) -> int:
    import orchnb

    from .exceptions import SpecError

    if not args.expected and not args.scorer:
        raise CliError("eval: give --expected COLUMN (scored 'exact') or --scorer NAME")
    pipe = load_pipeline(args.pipeline, args.module, args.tools)
    options = run_options(pipe, args)
    try:
        report = orchnb.evaluate(pipe, args.data, text=args.text, expected=args.expected,
                                 scorers=args.scorer, progress=False,
                                 cache=options.get("cache"), budget=options.get("budget"))
        baseline = _baseline(args.baseline, pipe.name) if args.baseline else None
        check = report.check(baseline, margin=args.margin) if baseline is not None else None
    except SpecError as e:
        raise CliError(one_line(str(e))) from None
    if args.save:
        report.save(args.save)
    if args.html:
        report.to_html(args.html)
    print(repr(report))
    if check is None:
        return 0
    _say(check.sentence)
    return check.exit_code


def _baseline(source: str, name: str) -> Any:
    """A saved report file, or the candidate ``name`` (else the first) of a saved experiment."""
    from .evals import ScoreReport, load_experiment

    if Path(source).is_file():
        return ScoreReport.load(source)
    exp = load_experiment(source)
    return exp.reports.get(name) or next(iter(exp.reports.values()))


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


def _say(message: str) -> None:
    print(f"orchnb: {message}", file=sys.stderr, flush=True)


def _one_line_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: Any = None) -> None:
    _say(f"warning: {one_line(str(message))}")
