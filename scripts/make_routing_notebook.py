"""Writes notebooks/routing.ipynb (route by measured quality).

    python scripts/make_routing_notebook.py
"""

from pathlib import Path

import nbformat as nbf

cells = []


def md(text: str) -> None:
    cells.append(nbf.v4.new_markdown_cell(text))


def code(text: str) -> None:
    cells.append(nbf.v4.new_code_cell(text))

md("""# Route by measured quality

A router's usual promise is cost: *send the simple queries to the cheap model*. This notebook
measures the question behind it on **real recorded answers**: for these queries, how much of the
strong model's quality do we keep if we send X% of them to the cheap one, which queries are those,
and what does it cost?

The data: graded answers of **Mixtral-8x7B-Instruct** (weak) and **gpt-4-1106-preview** (strong)
on MMLU and GSM8K, from [RouteLLM](https://github.com/lm-sys/RouteLLM) (Apache-2.0). orchnb ships a
slice (3,015 MMLU questions over 45 subjects, all 1,319 GSM8K problems; see
`orchnb/data/LICENSE-routing.md`); when the full data sit in `shared/data/routing/` beside the
project, `load_routing()` reads them instead.

Scores, as RouteLLM defines them: **PGR** is the share of the weak-to-strong gap recovered;
**APGR** the area under PGR against the share of strong calls (weak-only 0, strong-only 1, random
routing 0.5); **CPT(50%)** the share of strong calls needed to recover half the gap.""")
code("""%load_ext orchnb
import os, tempfile
# A fresh home for traces and the embedding cache, so every run of this notebook is the same.
os.environ["ORCHNB_HOME"] = tempfile.mkdtemp(prefix="orchnb-")

import orchnb
from orchnb.evals import load_routing

mmlu = load_routing("mmlu").drop_duplicates("prompt")   # the shipped slice, or the full set
print(mmlu.attrs["source"], "·", len(mmlu), "questions ·",
      f"weak right {mmlu.weak_correct.mean():.1%}, strong right {mmlu.strong_correct.mean():.1%},"
      f" either {(mmlu.weak_correct | mmlu.strong_correct).mean():.1%}")""")
md("""## Learn when the weak model is enough

`QualityRouter` learns, from graded answers, the gain of the strong model over the weak one for a
query, from the query's embedding alone (a kNN vote and a linear head; the better by
cross-validated APGR is kept). Its threshold is set from a target share of strong calls (or a
target quality, or a budget per 1,000 queries), met on held-out examples.

It learns from one half of the questions; the other half is kept to judge it. `EMBED = "sim"` is
orchnb's offline hashing embedder (instant, crude); `"st:all-MiniLM-L6-v2"` is what the benchmark
uses (`benchmarks/results/routing.md`).""")
code("""EMBED = "sim"      # or "st:all-MiniLM-L6-v2" (sentence-transformers, local)
cols = dict(text="prompt", weak_score="weak_correct", strong_score="strong_correct")

shuffled = mmlu.sample(frac=1.0, random_state=0)
train, test = shuffled.iloc[: len(shuffled) // 2], shuffled.iloc[len(shuffled) // 2:]

# Simulated stand-ins for the two models (offline): each says which model answered.
weak = orchnb.Step("mixtral", "sim:echo", "[mixtral] {{ input }}")
strong = orchnb.Step("gpt4", "sim:echo", "[gpt-4] {{ input }}")
router = orchnb.QualityRouter("mmlu_router", weak=weak, strong=strong, examples=train,
                              embed=EMBED, strong_share=0.4, **cols)
print(router)
print("cross-validated APGR of each head:", {h: round(a, 3) for h, a in router.scorer.cv})""")
md("A `QualityRouter` is a router like any other: it runs, steps and traces.")
code("""run = router("Statement 1 | Every group of order 4 is cyclic. Statement 2 | ...")
print(run.output[:60])
run.trace.df[["step", "kind", "route", "confidence"]]""")
md("""## The routing report

`evaluate_routing` scores the router on the held-out half: the quality–share curve against the
weak-only, strong-only, random and oracle lines, APGR with a bootstrap interval, CPT(20/50/80%),
and cost per 1,000 queries from the pricing table (prompt tokens from the text, 5 answer tokens
for an MMLU letter).""")
code("""models = ("together:mistralai/Mixtral-8x7B-Instruct-v0.1", "openai:gpt-4-1106-preview")
report = orchnb.evaluate_routing(router, test, models=models, output_tokens=5, **cols)
print(report.summary)
report.points""")
code("report.plot()")
md("""With the offline `sim` embedder on this slice the router is barely better than random. With
MiniLM on the full 12,047 questions, held-out halves over 5 seeds reach APGR 0.661 ± 0.011
(CPT(50%) 29%), against 0.509 for random routing: see `benchmarks/results/routing.md`.""")
md("The questions it gets most wrong: sent to the weak model though only the strong one was right, and the reverse.")
code("""report.mistakes(3)[["text", "score", "weak_score", "strong_score", "mistake"]]""")
md("""A report on the rows the router learned from would flatter it: it is refused (or, on request,
dropped or flagged).""")
code("""try:
    orchnb.evaluate_routing(router, train, **cols)
except orchnb.SpecError as e:
    print(e)""")
md("""## Across subjects

Trained on some MMLU subjects and judged on the others, the router can only use what transfers
(question style, length, kinds of reasoning).""")
code("""import numpy as np

subjects = np.random.default_rng(0).permutation(sorted(mmlu.domain.unique()))
seen = set(subjects[: len(subjects) // 2])
by_subject = orchnb.QualityRouter("by_subject", weak=weak, strong=strong,
                                  examples=mmlu[mmlu.domain.isin(seen)], embed=EMBED,
                                  strong_share=0.4, **cols)
other = orchnb.evaluate_routing(by_subject, mmlu[~mmlu.domain.isin(seen)],
                                models=("mixtral", "gpt-4"), **cols)
print(other.summary)""")
md("""## Your own graded answers

Any table with a text column and one score column per model works (`graded_answers` checks it),
and `orchnb.compare([...], data, scorers=...)` over two candidates hands one back:
`orchnb.evals.graded_answers(comparison)` gives `text`, `<name>_score` and `<name>_cost` per row.
Plain scores work too: here GSM8K, routed by prompt length alone, as a baseline to beat.""")
code("""gsm8k = load_routing("gsm8k")
by_length = orchnb.evaluate_routing(gsm8k.prompt.str.len().to_numpy(float), gsm8k,
                                    models=("mixtral", "gpt-4"), **cols)
print(by_length.summary)""")
md("""## A cascade is a candidate too

`Cascade` lets the weak model answer and calls the strong one only when a check on that answer
fails: a function, the answer's self-reported confidence, or a verifier step. Each decision is a
`check` span in the trace (route `weak` = kept, `strong` = escalated). On recorded answers it is
scored on the same axes with `evaluate_routing(..., cascade=True)`: an escalated query pays for
both models.""")
code("""orchnb.SimModel("hedging", fn=lambda req: (
    "Answer: B. Confidence: 0.9" if "group" in req.messages[-1].content
    else "Answer: C? Confidence: 30%")).register()
cascade = orchnb.Cascade("cascade", weak=orchnb.Step("mixtral", "sim:hedging", "{{ input }}"),
                         strong=strong, check="confidence", threshold=0.6)
for q in ("Is every group of order 4 cyclic?", "What is the molar mass of ozone?"):
    run = cascade(q)
    check = run.trace.df.query("step == 'check'").iloc[0]
    print(f"{q[:36]:38} confidence {check.confidence:.1f} -> {check.route:6} {run.output[:24]}")""")
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "language_info": {"name": "python"}})
nbf.write(nb, str(Path(__file__).resolve().parents[1] / "notebooks" / "routing.ipynb"))
