"""LLM-as-judge: ``orchnb.judge(model, rubric)``.

Pointwise, the judge reads the input, the output (and the expected answer when there is one)
and answers a score on a 1..``scale`` scale with its reason; the score column is normalised to
[0, 1]. Pairwise (``Comparison.prefer``), it sees two outputs and names the better one, asked
twice with the order swapped so that a preference for the first (or second) position cancels:
a row counts as a win only when both orders agree, else as a tie.

Judge calls go through the engine like any call (one traced run, ``judge:NAME``: budgeted,
priced, cached), and their cost is reported apart from the pipeline's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..engine import MAX_CONCURRENCY, RunContext, check_number
from ..exceptions import SpecError
from ..models import Message, resolve_model
from ..patterns import Chain, FunctionStep
from ..trace import plural
from ._align import Alignment, align_judge, calibrate_judge
from ._scorers import Scorer, parse_json

if TYPE_CHECKING:
    from ..engine import Run
    from ._agreement import Agreement

POINTWISE = """You are grading the answer of an AI system.

Rubric: {rubric}
{examples}
Input:
{input}
{reference}
Answer to grade:
{output}

Grade the answer against the rubric on a scale of 1 (fails it) to {scale} (fully meets it).
Reply with JSON only: {{"reason": "<one sentence>", "score": <1-{scale}>}}"""

TRAJECTORY = """You are grading how an AI agent worked: the tools it called, in order, with their
arguments and results, and its final answer.

Rubric: {rubric}

Input:
{input}
{reference}
Trajectory to grade:
{output}

Grade the trajectory against the rubric on a scale of 1 (fails it) to {scale} (fully meets it).
Reply with JSON only: {{"reason": "<one sentence>", "score": <1-{scale}>}}"""

PAIRWISE = """You are comparing two answers of AI systems to the same input.

Rubric: {rubric}

Input:
{input}

Answer A:
{a}

Answer B:
{b}

Which answer meets the rubric better? Reply with JSON only:
{{"reason": "<one sentence>", "winner": "A" | "B" | "tie"}}"""

_SCORE = re.compile(r"score\W{0,4}(\d+(?:\.\d+)?)", re.IGNORECASE)
_WINNER = re.compile(r"winner\W{0,4}(A|B|tie)\b", re.IGNORECASE)


class Judge:
    """An LLM that grades outputs against a rubric (``orchnb.judge(model, rubric)``).

    Give it to :func:`~orchnb.evaluate` or :func:`~orchnb.compare` as a scorer (pointwise: a
    column ``NAME`` with scores in [0, 1] and ``NAME_reason``), or to
    ``orchnb.compare(...).prefer(judge)`` (or :meth:`prefer` on two lists of outputs) for
    pairwise A/B preferences, each row asked in both orders. With ``trajectory=True`` it grades
    each row's whole trajectory (every tool call, its arguments and result, then the final
    answer) instead of the output alone.

    >>> j = judge("sim:echo", "The answer is polite and correct.")
    >>> j.name, j.scale
    ('judge', 5)
    """

    def __init__(self, model: Any, rubric: str, *, name: str = "judge", scale: int = 5,
                 concurrency: int = 8, temperature: float | None = 0.0,
                 trajectory: bool = False):
        if not rubric or not str(rubric).strip():
            raise SpecError("judge: give a rubric, e.g. judge('openai:gpt-4o-mini', 'The answer "
                            "is correct and cites the order number')")
        check_number(scale, "judge: scale", minimum=2, integer=True, optional=False,
                     hint="the points of the rubric's scale, e.g. 5")
        check_number(concurrency, "judge: concurrency", minimum=1, integer=True,
                     optional=False, maximum=MAX_CONCURRENCY)
        check_number(temperature, "judge: temperature", hint="0 for repeatable grades")
        self.rubric = str(rubric).strip()
        self.name = name
        self.scale = int(scale)
        self.concurrency = concurrency
        self.model_ = resolve_model(model)
        self.temperature = temperature
        if not isinstance(trajectory, bool):
            raise SpecError(f"judge: trajectory must be True or False, not {trajectory!r}")
        self.trajectory = trajectory
        self.template = TRAJECTORY if trajectory else POINTWISE
        # The pipeline only carries the judge's runs (its model is checked before a run).
        self.pipeline = Chain(f"judge:{name}", [FunctionStep(name, str)])
        self.pipeline.models = lambda: [self.model_]  # type: ignore[method-assign]
        self.runs: list[Run] = []
        self.examples: list[dict[str, Any]] = []
        """Graded examples shown before each row (``align`` adds them from people's labels)."""
        self.calibration: Agreement | None = None
        """The judge's agreement with people (set by :meth:`calibrate` / :meth:`align`); eval
        reports it scores show pass rates corrected by it."""

    @property
    def model(self) -> str:
        return self.model_.id

    async def ask(self, ctx: RunContext, prompt: str, step: str) -> str:
        """One judge call, traced as a step with its model call inside."""
        with ctx.span("step", step, model=self.model_.name,
                      provider=self.model_.provider_name, input=prompt) as span:
            response = await ctx.call(self.model_, [Message("user", prompt)], step=step,
                                      temperature=self.temperature)
            span.set_output(response.text)
            return response.text

    def as_scorer(self) -> Scorer:
        return Scorer(self.name, _unused, needs_expected=False, binary=False, llm=True,
                      judge=self, reads="trajectory" if self.trajectory else "output")

    # -- pointwise ------------------------------------------------------------------------------
    def parse_score(self, text: str) -> float:
        """The grade in an answer, normalised to [0, 1] (NaN when there is none)."""
        raw: Any = None
        try:
            data = parse_json(text)
            raw = data.get("score") if isinstance(data, dict) else None
        except ValueError:
            pass
        if raw is None:
            m = _SCORE.search(text or "")
            raw = m.group(1) if m else None
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan
        value = min(max(value, 1.0), float(self.scale))
        return (value - 1.0) / (self.scale - 1.0)

    @staticmethod
    def parse_reason(text: str) -> str | None:
        try:
            data = parse_json(text)
        except ValueError:
            return (text or "").strip()[:300] or None
        reason = data.get("reason") if isinstance(data, dict) else None
        return None if reason is None else str(reason)[:500]

    def grade(self, inputs: Sequence[str], outputs: Sequence[Any], expected: Sequence[Any] | None,
              *, cache: bool | None = None, progress: bool = False,
              label: str | None = None) -> tuple[list[float], list[str | None], Run]:
        """Scores (0..1, NaN when the judge failed) and reasons for each row, in one run."""
        n = len(inputs)
        scores: list[float] = [math.nan] * n
        reasons: list[str | None] = [None] * n

        async def one(ctx: RunContext, i: int) -> None:
            if outputs[i] is None:
                reasons[i] = "no output to grade (the row failed)"
                return
            ref = _s(expected[i]) if expected is not None else ""
            prompt = self.template.format(rubric=self.rubric, input=_s(inputs[i]),
                                      examples=examples_block(self.examples, self.scale),
                                      output=_s(outputs[i]), scale=self.scale,
                                      reference=f"\nReference answer:\n{ref}\n" if ref else "")
            try:
                text = await self.ask(ctx, prompt, self.name)
            except Exception as e:  # a failed judge call: no score for this row, said why
                reasons[i] = f"judge failed: {e}"[:300]
                return
            scores[i] = self.parse_score(text)
            reasons[i] = self.parse_reason(text)
            if math.isnan(scores[i]):
                reasons[i] = f"no score in the judge's answer: {str(text)[:200]!r}"

        run = self._run(n, one, cache, progress, label or f"judge {self.name}")
        return scores, reasons, run

    # -- pairwise -------------------------------------------------------------------------------
    @staticmethod
    def parse_winner(text: str) -> str | None:
        try:
            data = parse_json(text)
            w = data.get("winner") if isinstance(data, dict) else None
        except ValueError:
            w = None
        if w is None:
            m = _WINNER.search(text or "")
            w = m.group(1) if m else None
        w = None if w is None else str(w).strip().upper()
        return {"A": "A", "B": "B", "TIE": "tie"}.get(w or "")

    def prefer(self, inputs: Sequence[str], a: Sequence[Any], b: Sequence[Any], *,
               cache: bool | None = None, progress: bool = False
               ) -> tuple[list[float], list[dict[str, Any]], Run]:
        """Per row: 1 when A is preferred in both orders, 0 when B is, 0.5 otherwise (a tie or
        the judge changed its mind with the order); and what it said each time."""
        n = len(inputs)
        pref: list[float] = [math.nan] * n
        detail: list[dict[str, Any]] = [{} for _ in range(n)]

        async def one(ctx: RunContext, i: int) -> None:
            step = f"{self.name}_pairwise"
            x, ya, yb = _s(inputs[i]), _s(a[i]), _s(b[i])
            try:
                first = await self.ask(ctx, PAIRWISE.format(rubric=self.rubric, input=x, a=ya,
                                                            b=yb), step)
                second = await self.ask(ctx, PAIRWISE.format(rubric=self.rubric, input=x, a=yb,
                                                             b=ya), step)
            except Exception as e:
                detail[i] = {"error": str(e)[:300]}
                return
            w1, w2 = self.parse_winner(first), self.parse_winner(second)
            # The second call saw B as "A": map it back.
            w2 = {"A": "B", "B": "A"}.get(w2 or "", w2)
            if w1 is None or w2 is None:
                detail[i] = {"first": w1, "swapped": w2, "error": "no winner in an answer"}
                return
            pref[i] = 1.0 if w1 == w2 == "A" else 0.0 if w1 == w2 == "B" else 0.5
            detail[i] = {"first": w1, "swapped": w2, "consistent": w1 == w2,
                         "reason": self.parse_reason(first)}

        run = self._run(n, one, cache, progress, f"judge {self.name} A/B")
        return pref, detail, run

    def _run(self, n: int, one: Any, cache: bool | None, progress: bool, label: str) -> Run:
        async def body(ctx: RunContext, _: Any) -> None:
            await ctx.gather([lambda i=i: one(ctx, i) for i in range(n)],
                             concurrency=self.concurrency, progress=label)

        self.pipeline.check_models()
        run = self.pipeline.new_run(plural(n, "row"), body=body, pattern="judge", cache=cache,
                                    progress=progress)
        run.run_sync()
        self.runs.append(run)
        return run

    # -- people's labels ------------------------------------------------------------------------
    def calibrate(self, labels: Any, *, holdout: float | None = None, threshold: float = 0.5,
                  positive: Any = "pass", n_boot: int = 1000, seed: int = 0,
                  cache: bool | None = None) -> Agreement:
        """Grade the rows people labelled (a :class:`~orchnb.evals.Labels`, the widget of
        :func:`orchnb.label`, or a DataFrame with input, output, label) and measure the
        judge against them (:func:`orchnb.agreement`); kept as ``calibration``, so the eval
        reports this judge scores show a corrected pass rate.

        >>> j.calibrate(labels).table          # doctest: +SKIP
        """
        self.calibration = calibrate_judge(self, labels, holdout=holdout, threshold=threshold,
                                           positive=positive, n_boot=n_boot, seed=seed,
                                           cache=cache)
        return self.calibration

    def align(self, labels: Any, *, holdout: float = 0.5, k: int = 8, rewrite: bool = False,
              threshold: float = 0.5, positive: Any = "pass", alpha: float = 0.1,
              seed: int = 0, cache: bool | None = None) -> Alignment:
        """Improve the judge with people's labels: grade a training share of the labelled
        rows, show the judge up to ``k`` rows it got wrong there as graded examples (and,
        with ``rewrite=True``, a rubric its model rewrote from them), then measure the
        original and the aligned judge on the held-out rows. ``.judge`` is the aligned one
        only when it agrees with people significantly more often (McNemar, ``alpha``); else
        the original, and ``.sentence`` says so.

        >>> result = j.align(labels); result.before.kappa, result.after.kappa  # doctest: +SKIP
        """
        return align_judge(self, labels, holdout=holdout, k=k, rewrite=rewrite,
                           threshold=threshold, positive=positive, alpha=alpha, seed=seed,
                           cache=cache)

    def with_examples(self, examples: Sequence[dict[str, Any]], rubric: str | None = None
                      ) -> Judge:
        """A copy of this judge that shows ``examples`` (dicts with input, output, verdict
        "pass"/"fail" and an optional reason), and ``rubric`` if given."""
        other = Judge(self.model_, rubric or self.rubric, name=self.name, scale=self.scale,
                      concurrency=self.concurrency, temperature=self.temperature)
        other.examples = [dict(e) for e in examples]
        return other

    def __repr__(self) -> str:
        return f"Judge({self.model!r}, {self.rubric[:40]!r})"


def _s(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return x if isinstance(x, str) else str(x)


def examples_block(examples: Sequence[dict[str, Any]], scale: int) -> str:
    """Graded examples for the prompt ("" when there are none, so the prompt is unchanged)."""
    if not examples:
        return ""
    parts = ["\nGraded examples (grade like these):"]
    for i, ex in enumerate(examples, 1):
        score = scale if ex.get("verdict") == "pass" else 1
        why = f" Reason: {_s(ex.get('reason'))[:300]}" if ex.get("reason") else ""
        parts.append(f"Example {i}. Input: {_s(ex.get('input'))[:1000]}\nAnswer: "
                     f"{_s(ex.get('output'))[:1000]}\nGrade: {score} ({ex.get('verdict')}).{why}")
    return "\n\n".join(parts) + "\n"


def _unused(output: Any, expected: Any, row: Any) -> float:
    raise RuntimeError("a judge scores rows through Judge.grade, not one at a time")


def judge(model: Any, rubric: str, *, name: str = "judge", scale: int = 5,
          concurrency: int = 8, temperature: float | None = 0.0,
          trajectory: bool = False) -> Judge:
    """An LLM judge for :func:`~orchnb.evaluate` / :func:`~orchnb.compare` (``trajectory=True``:
    it reads each row's tool calls and their results as well as the final answer).

    >>> j = judge("sim:echo", "Polite and correct")
    >>> report = orchnb.evaluate(chain, data, expected="answer",
    ...                          scorers=["exact", j])           # doctest: +SKIP
    >>> report.scores[["judge", "judge_reason"]]                  # doctest: +SKIP
    """
    return Judge(model, rubric, name=name, scale=scale, concurrency=concurrency,
                 temperature=temperature, trajectory=trajectory)
