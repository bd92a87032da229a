"""Cascade: try the weak step; escalate to the strong one when a check on its answer fails."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..engine import RunContext, as_text, check_number
from ..exceptions import SpecError
from ..models import Model
from ._base import Pipeline
from ._labels import parse_confidence
from ._step import Node, Step, Vars, as_node, check_name

CONFIDENCE = "confidence"
_VERDICT = re.compile(r"\b(yes|pass|passed|correct|ok|no|fail|failed|incorrect|wrong)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])(0(?:\.\d+)?|1(?:\.0+)?)(?![\w.])")


class Cascade(Pipeline):
    """``input → weak → check → (strong if the check fails)``: the cheap model answers first;
    the strong model is called only when a check on that answer fails. Each decision is a
    ``check`` span with ``route`` "weak" (kept) or "strong" (escalated) and the check's score
    in ``confidence``.

    ``check`` is one of:

    - a function ``check(input, answer) -> bool | float`` (a scorer; a float passes at
      ``threshold`` or above);
    - ``"confidence"``: the weak answer's self-reported confidence (``Confidence: 0.8``), which
      passes at ``threshold`` or above (an answer that reports none escalates);
    - a verifier step or pattern: it sees the input as ``{{ input }}`` and the weak answer as
      ``{{ steps.NAME }}`` (NAME the weak step's name) and answers yes/no or a score in 0..1.

    >>> from orchnb import Step
    >>> c = Cascade("c", weak=Step("cheap", "sim:echo", "{{ input }}"),
    ...             strong=Step("dear", "sim:echo", "sure: {{ input }}"),
    ...             check=lambda q, a: "?" not in a)
    >>> c("2+2").output, c("why?").output
    ('2+2', 'sure: why?')
    """

    pattern = "cascade"
    model_attrs: ClassVar[tuple[str, ...]] = ()
    """Its models live in its children (weak, strong, a verifier step)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset({"check"})
    """The check's span (a decision, not a node, unless the check is a step)."""

    def __init__(self, name: str, weak: Any, strong: Any, check: Any, *,
                 threshold: float = 0.5, **options: Any):
        super().__init__(name, **options)
        self.weak: Node = as_node(_step(weak, "weak"), "weak")
        self.strong: Node = as_node(_step(strong, "strong"), "strong")
        if self.weak.name == self.strong.name:
            raise SpecError(f"cascade '{name}': weak and strong are both named "
                            f"'{self.weak.name}'; give them distinct names", key="strong")
        check_number(threshold, "Cascade(threshold=...)", maximum=1.0, optional=False,
                     hint="the score a check must reach to keep the weak answer, 0..1")
        self.threshold = float(threshold)
        self.check = _check(check, name)

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        answer = await self.weak.invoke(ctx, input, vars)
        steps = {**(vars.get("steps") or {}), self.weak.name: answer}
        with ctx.span("step", "check", input=answer) as span:
            score = await self._score(ctx, input, answer, {**vars, "steps": steps})
            keep = score is not None and score >= self.threshold
            route = "weak" if keep else "strong"
            span.set_route(route, raw_label="kept" if keep else "escalated", confidence=score)
            span.note(escalated=not keep, threshold=self.threshold)
            span.set_output(route)
        if keep:
            return answer
        return await self.strong.invoke(ctx, input, {**vars, "steps": steps})

    async def _score(self, ctx: RunContext, input: Any, answer: Any,
                     vars: Vars) -> float | None:
        check = self.check
        if check == CONFIDENCE:
            return parse_confidence(as_text(answer))
        if hasattr(check, "invoke"):  # a verifier step or pattern
            return parse_verdict(as_text(await check.invoke(ctx, input, vars)))
        out = check(input, answer)
        if inspect.isawaitable(out):
            out = await out
        return None if out is None else float(out)

    # -- what tooling asks the pattern ---------------------------------------------------
    def children(self) -> list[Node]:
        verifier = [self.check] if hasattr(self.check, "invoke") else []
        return [self.weak, *verifier, self.strong]

    def edges(self) -> list[tuple[str, str, str]]:
        w, s = self.weak.name, self.strong.name
        return [("__in__", w, ""), (w, s, "check fails"), (w, "__out__", "check passes"),
                (s, "__out__", "")]

    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the weak call, then (if its check fails) the strong call."""
        here = w.within(at, self.name)
        answer = w.walk(self.weak, input, vars, here)
        steps = {**(vars.get("steps") or {}), self.weak.name: answer}
        if hasattr(self.check, "invoke"):
            w.walk(self.check, input, {**vars, "steps": steps}, here)
        w.walk(self.strong, input, {**vars, "steps": steps},
               w.under(here, "if the check fails", certain=False))
        return w.pending(f"output of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        """YAML keys: weak, strong, check (a function name, "confidence" or a step)."""
        from ._to_yaml import fn_name, node_spec

        c = self.check
        check = (c if c == CONFIDENCE else node_spec(c) if hasattr(c, "invoke")
                 else fn_name(c, f"cascade '{self.name}': check"))
        out = {"weak": node_spec(self.weak), "strong": node_spec(self.strong),
               "check": check}
        if self.threshold != 0.5:
            out["threshold"] = self.threshold
        return out


def parse_verdict(text: str) -> float | None:
    """A verifier's answer as a score: yes/pass → 1, no/fail → 0, or a number in 0..1 (the
    last word of these wins: "no issues, so yes" is a yes). None when it says neither.

    >>> parse_verdict("Verdict: PASS"), parse_verdict("score 0.3"), parse_verdict("hmm")
    (1.0, 0.3, None)
    """
    text = text[-2000:]  # a verdict is at the end; bounded work on a long reply
    words = list(_VERDICT.finditer(text))
    numbers = list(_NUMBER.finditer(text))
    last = max([*words, *numbers], key=lambda m: m.start(), default=None)
    if last is None:
        return None
    if last in numbers:
        return float(last.group(1))
    return 1.0 if last.group(1).lower() in ("yes", "pass", "passed", "correct", "ok") else 0.0


def _step(obj: Any, name: str) -> Any:
    return Step(name, obj, "{{ input }}") if isinstance(obj, (str, Model)) else obj


def _check(check: Any, name: str) -> Any:
    if check == CONFIDENCE:
        return CONFIDENCE
    if isinstance(check, (str, Model)):
        raise SpecError(f"cascade '{name}': check={check!r}; use 'confidence', a function "
                        f"check(input, answer) -> bool | float, or a verifier orchnb.Step",
                        key="check")
    if isinstance(check, Step) or getattr(check, "kind", None) == "pattern":
        check_name(getattr(check, "name", None), "Cascade(check=...)")
        return check
    if callable(check):
        return check
    raise SpecError(f"cascade '{name}': check={check!r} is not a function, 'confidence' or a "
                    f"step", key="check")
