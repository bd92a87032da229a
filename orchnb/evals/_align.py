"""A judge against people's labels: ``Judge.calibrate`` measures it, ``Judge.align`` improves it.

Alignment follows the practice of evaluator-alignment tools: the labelled rows are split; the
judge grades the training share, the rows where it disagreed with people become graded
examples in its prompt (and optionally feed a rewritten rubric), and both judges are measured
on the held-out share only, so no row that shaped the new judge grades it. The new judge is
kept only when it agrees with people significantly more often on those rows (exact McNemar on
the rows where exactly one of the two judges is right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ..trace import plural
from ._agreement import Agreement, agreement, split_rows
from ._agreement_inputs import human_binary, judge_binary, labels_frame
from ._html import NO_MATH
from ._paired import mcnemar

if TYPE_CHECKING:
    import pandas as pd

    from ._judge import Judge

REWRITE = """You wrote this grading rubric for an AI system's answers:

{rubric}

People disagreed with grades given under it on these answers:

{cases}

Rewrite the rubric so that a grader following it would agree with the people. Keep it short
(at most 8 sentences). Reply with the new rubric only."""


def labelled_rows(labels: Any, positive: Any) -> pd.DataFrame:
    """The labelled rows (input, output, expected, label, note) that pass or fail."""
    df = labels_frame(labels)
    if df is None:
        raise SpecError("judge: give labels as orchnb.evals.Labels, the orchnb.label(...) "
                        "widget, or a DataFrame with input, output and label columns")
    for c in ("input", "output"):
        if c not in df.columns:
            raise SpecError(f"judge: the labels have no {c!r} column to grade")
    keep = [not math.isnan(human_binary(v, positive)) for v in df["label"]]
    out = df[keep].reset_index(drop=True)
    if out.empty:
        raise SpecError("judge: no row is labelled pass or fail yet; label some with "
                        "orchnb.label(...)")
    return out


def _grade(judge: Judge, rows: pd.DataFrame, cache: bool | None) -> list[float]:
    expected = rows["expected"].tolist() if "expected" in rows.columns else None
    if expected is not None and not any(isinstance(e, str) and e for e in expected):
        expected = None
    scores, _reasons, _run = judge.grade(rows["input"].tolist(), rows["output"].tolist(),
                                         expected, cache=cache, label=f"judge {judge.name}")
    return scores


def calibrate_judge(judge: Judge, labels: Any, *, holdout: float | None, threshold: float,
                    positive: Any, n_boot: int, seed: int, cache: bool | None) -> Agreement:
    rows = labelled_rows(labels, positive)
    scores = _grade(judge, rows, cache)
    return agreement(scores, rows, threshold=threshold, positive=positive, holdout=holdout,
                     n_boot=n_boot, seed=seed, name=judge.name)


@dataclass
class Alignment:
    """What :meth:`Judge.align` did: ``before`` / ``after`` (agreements on the held-out rows),
    ``judge`` (the aligned judge if it is significantly better, else the original),
    ``improved``, ``p_value``, ``examples`` shown and the ``rubric`` used."""

    before: Agreement
    after: Agreement
    judge: Judge
    aligned: Judge
    improved: bool
    p_value: float
    examples: list[dict[str, Any]] = field(default_factory=list)
    rubric: str = ""

    @property
    def table(self) -> pd.DataFrame:
        """Held-out TPR, TNR, accuracy and κ, before and after."""
        import pandas as pd

        return pd.concat({"before": self.before.table["value"],
                          "after": self.after.table["value"]}, axis=1)

    @property
    def sentence(self) -> str:
        b, a = self.before, self.after
        figures = (f"held-out agreement {b.accuracy:.0%} → {a.accuracy:.0%}, κ {b.kappa:.2f} → "
                   f"{a.kappa:.2f} on {plural(a.n, 'row')} (McNemar p = {self.p_value:.3g})")
        if self.improved:
            return f"aligned with {plural(len(self.examples), 'example')}: {figures}"
        return (f"not improved, keeping the original judge: {figures}; label more rows or "
                f"check the disagreements for a pattern")

    def __repr__(self) -> str:
        return f"<Alignment {self.sentence}>"

    def _repr_html_(self) -> str:
        import html

        return (f"<div class='{NO_MATH}'><b>Judge alignment</b> · {html.escape(self.sentence)}"
                f"{self.table.to_html(float_format=lambda x: f'{x:.3f}')}</div>")


def _examples(train: pd.DataFrame, k: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``k`` training rows the judge got wrong, people's misses and false alarms in
    turn, as graded examples (people's verdict and note)."""
    import numpy as np

    wrong = train[~train["agree"]]
    rng = np.random.default_rng(seed)
    groups = [g.iloc[rng.permutation(len(g))] for _, g in wrong.groupby("human")]
    picked: list[Any] = []
    for i in range(max((len(g) for g in groups), default=0)):
        picked += [g.iloc[i] for g in groups if i < len(g)]
    out = []
    for r in picked[:k]:
        note = r.get("note")
        out.append({"input": r.get("input"), "output": r.get("output"),
                    "verdict": "pass" if r["human"] == 1 else "fail",
                    "reason": note if isinstance(note, str) and note else None})
    return out


def _rewrite(judge: Judge, examples: list[dict[str, Any]], cache: bool | None) -> str:
    cases = "\n\n".join(f"Input: {str(e['input'])[:500]}\nAnswer: {str(e['output'])[:500]}\n"
                        f"People's verdict: {e['verdict']}"
                        + (f" ({e['reason']})" if e.get("reason") else "") for e in examples)
    texts: list[str] = []

    async def one(ctx: Any, i: int) -> None:
        texts.append(await judge.ask(ctx, REWRITE.format(rubric=judge.rubric, cases=cases),
                                     f"{judge.name}_rewrite"))

    judge._run(1, one, cache, False, f"judge {judge.name} rubric")
    text = (texts[0] if texts else "").strip()[:3000]
    return text or judge.rubric


def _right(scores: list[float], rows: pd.DataFrame, threshold: float, positive: Any) -> Any:
    """1 where the judge agrees with the person (a failed grade counts as wrong)."""
    import numpy as np

    return np.array([int(judge_binary(s, threshold, positive) == human_binary(h, positive))
                     for s, h in zip(scores, rows["label"])])


def align_judge(judge: Judge, labels: Any, *, holdout: float, k: int, rewrite: bool,
                threshold: float, positive: Any, alpha: float, seed: int,
                cache: bool | None) -> Alignment:
    rows = labelled_rows(labels, positive)
    if len(rows) < 4:
        raise SpecError(f"judge.align: {plural(len(rows), 'labelled row')}; label at least a "
                        f"few dozen so there are rows to learn from and rows to test on")
    split = split_rows(len(rows), holdout, seed)
    held = [s == "test" for s in split]
    scores = _grade(judge, rows, cache)
    first = agreement(scores, rows, threshold=threshold, positive=positive, holdout=held,
                      n_boot=0, seed=seed, name=judge.name)
    examples = _examples(first.rows[first.rows["split"] == "train"], k, seed)
    rubric = _rewrite(judge, examples, cache) if rewrite and examples else judge.rubric
    aligned = judge.with_examples(examples, rubric)
    test = rows[held].reset_index(drop=True)
    before_scores = [x for x, h in zip(scores, held) if h]
    after_scores = _grade(aligned, test, cache)
    before = agreement(before_scores, test, threshold=threshold,
                       positive=positive, seed=seed, name=f"{judge.name} (before)")
    after = agreement(after_scores, test, threshold=threshold,
                      positive=positive, seed=seed, name=f"{judge.name} (aligned)")
    p, _after_only, _before_only = mcnemar(_right(after_scores, test, threshold, positive),
                                           _right(before_scores, test, threshold, positive))
    improved = bool(examples) and after.accuracy > before.accuracy and p < alpha
    chosen = aligned if improved else judge
    chosen.calibration = after if improved else before
    return Alignment(before, after, chosen, aligned, improved, p, examples, rubric)
