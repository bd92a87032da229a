"""``%%orch`` and ``%orch``: thin sugar over the Python API."""

from __future__ import annotations

import ast
import shlex
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool

from ..exceptions import SpecError

_USAGE = """usage:
  %%orch NAME                 (cell) define a pipeline from the YAML body, bound to NAME
  %orch run NAME INPUT        run NAME to the end on INPUT (a quoted string, a variable or text)
  %orch run NAME INPUT --dry-run   show the messages, tokens and cost of every call the run
                              would make, making none (pipe.preview(INPUT))
  %orch step NAME [INPUT]     with INPUT: start a run paused at its first call;
                              without: let one more call happen
  %orch resume NAME           run the paused run of NAME to the end
  %orch traces [NAME]         every persisted span (of NAME) as a DataFrame
  %orch eval ROUTER DATA [--text COL] [--label COL]   router accuracy eval over a DataFrame
  %orch play NAME             the interactive playground for NAME
"""


@magics_class
class OrchMagics(Magics):
    """The orchnb magics. ``%config OrchMagics.show_pipeline = False`` hides the summary
    printed after ``%%orch`` defines a pipeline."""

    show_pipeline = Bool(True, help="Display the pipeline after %%orch defines it.").tag(
        config=True)

    @cell_magic
    def orch(self, line: str, cell: str) -> Any:
        """Define a pipeline: ``%%orch NAME`` with a YAML body (``pattern: chain`` ...)."""
        name = line.strip()
        if not name or not name.isidentifier():
            raise SpecError(f"%%orch needs a pipeline name that is a Python identifier, "
                            f"got {line.strip()!r}: write '%%orch brief' above the YAML")
        from ..patterns import from_yaml

        # line_offset=1: errors count lines as the cell shows them, the %%orch line being 1.
        pipe = from_yaml(cell, name, self.shell.user_ns, line_offset=1)  # type: ignore[union-attr]
        self.shell.user_ns[name] = pipe  # type: ignore[union-attr]
        return pipe if self.show_pipeline else None

    @line_magic("orch")
    def orch_line(self, line: str) -> Any:
        """Run, step, trace, evaluate or play a pipeline: see ``%orch help``."""
        try:
            words = shlex.split(line, posix=False)
        except ValueError as e:
            raise SpecError(f"%orch: cannot parse {line!r}: {e}") from None
        if not words or words[0] in ("help", "-h", "--help"):
            print(_USAGE)
            return None
        command, args = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise SpecError(f"%orch: unknown command '{command}'.\n{_USAGE}")
        return handler(args, line)

    # -- commands ------------------------------------------------------------------------------
    def _pipeline(self, name: str) -> Any:
        from ..patterns import Pipeline

        obj = self.shell.user_ns.get(name)  # type: ignore[union-attr]
        if not isinstance(obj, Pipeline):
            known = [k for k, v in self.shell.user_ns.items()  # type: ignore[union-attr]
                     if isinstance(v, Pipeline) and not k.startswith("_")]
            raise SpecError(f"%orch: '{name}' is not a pipeline in this notebook"
                            + (f"; pipelines defined: {', '.join(known)}" if known else
                               "; define one with %%orch NAME"))
        return obj

    def _input(self, words: list[str]) -> Any:
        text = " ".join(words)
        if not text:
            raise SpecError("%orch: an INPUT is needed, e.g. %orch run brief \"some text\"")
        if len(words) == 1 and words[0].isidentifier() and words[0] in self.shell.user_ns:  # type: ignore[union-attr]
            return self.shell.user_ns[words[0]]  # type: ignore[union-attr]
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def _cmd_run(self, args: list[str], line: str) -> Any:
        dry = "--dry-run" in args
        args = [a for a in args if a != "--dry-run"]
        if not args:
            raise SpecError("%orch run NAME INPUT [--dry-run]: name the pipeline")
        pipe = self._pipeline(args[0])
        return pipe.preview(self._input(args[1:])) if dry else pipe(self._input(args[1:]))

    def _cmd_step(self, args: list[str], line: str) -> Any:
        if not args:
            raise SpecError("%orch step NAME [INPUT]: name the pipeline")
        pipe = self._pipeline(args[0])
        if len(args) > 1:
            return pipe.start(self._input(args[1:]))
        run = pipe.last_run
        if run is None or run.done:
            raise SpecError(f"%orch step {args[0]}: no paused run; start one with "
                            f"%orch step {args[0]} INPUT")
        return run.step()

    def _cmd_resume(self, args: list[str], line: str) -> Any:
        if not args:
            raise SpecError("%orch resume NAME: name the pipeline")
        run = self._pipeline(args[0]).last_run
        if run is None:
            raise SpecError(f"%orch resume {args[0]}: nothing to resume")
        return run.resume()

    def _cmd_traces(self, args: list[str], line: str) -> Any:
        from ..trace import traces

        return traces(pipeline=args[0] if args else None)

    def _cmd_eval(self, args: list[str], line: str) -> Any:
        import argparse

        parser = argparse.ArgumentParser(prog="%orch eval", add_help=False)
        parser.add_argument("router")
        parser.add_argument("data")
        parser.add_argument("--text", default="text")
        parser.add_argument("--label", default="label")
        parser.add_argument("--pipeline", action="store_true")
        parser.add_argument("--concurrency", type=int, default=None)
        try:
            ns = parser.parse_args(args)
        except SystemExit:
            raise SpecError("usage: %orch eval ROUTER DATA [--text COL] [--label COL] "
                            "[--pipeline] [--concurrency N]") from None
        from ..evals import evaluate

        data = self.shell.user_ns.get(ns.data, ns.data)  # type: ignore[union-attr]
        extra = {"concurrency": ns.concurrency} if ns.concurrency else {}
        return evaluate(self._pipeline(ns.router), data, text=ns.text, label=ns.label,
                        full_pipeline=ns.pipeline, **extra)

    def _cmd_play(self, args: list[str], line: str) -> Any:
        if not args:
            raise SpecError("%orch play NAME: name the pipeline")
        from ._playground import Playground  # widgets load on first use

        return Playground(self._pipeline(args[0]))


