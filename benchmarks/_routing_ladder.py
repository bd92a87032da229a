"""Ladder rows of ``bench_routing.py`` (``--ladder``): MMLU with a synthetic middle model.

RouteLLM recorded two models, so the middle rung is **synthetic**: "mid" is right wherever
Mixtral is, and on half (one seeded draw, seed 0) of the remaining questions gpt-4 gets right.
Prices per query (~120 prompt tokens, 5 answer tokens): Mixtral $0.000075, mid $0.000375
($3 per million tokens), gpt-4-1106 $0.00135. For each seed a random half of the rows trains
the ladder router's scorer (``LadderScorer``, the classifier of ``QualityRouter(ladder=...)``),
its thresholds are set on out-of-fold training rows for each target, and the other half is
judged with ``evaluate_routing(..., scores=[...], costs=[...])``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

NAMES = ("mixtral", "mid", "gpt-4")
COLUMNS = ("weak_correct", "mid_correct", "strong_correct")
PRICES = (0.000075, 0.000375, 0.00135)
TARGETS = (("quality", 0.5), ("quality", 0.8), ("quality", 0.9), ("strong_share", 0.3),
           ("budget_per_1k", 0.5))
BEGIN, END = "<!-- ladder rows: bench_routing.py --ladder -->", "<!-- end of ladder rows -->"


def with_mid(df: Any) -> Any:
    """``df`` with the synthetic middle model's grades (``mid_correct``)."""
    import numpy as np

    weak = df["weak_correct"].astype(bool).to_numpy()
    strong = df["strong_correct"].astype(bool).to_numpy()
    coin = np.random.default_rng(0).random(len(df)) < 0.5
    return df.assign(mid_correct=(weak | (strong & coin)).astype(float))


def one_seed(df: Any, x: Any, seed: int, bootstrap: int) -> dict[str, Any]:
    """APGR by cost (with its CI when ``bootstrap``), the oracle's, the two-end APGR of the
    same scores, and each target's held-out point, for one random half."""
    import numpy as np

    from orchnb.evals import evaluate_routing
    from orchnb.patterns import LadderScorer

    train = np.zeros(len(df), dtype=bool)
    train[np.random.default_rng(seed).permutation(len(df))[: len(df) // 2]] = True
    fit = df[train]
    scorer = LadderScorer(fit["prompt"].tolist(), fit[list(COLUMNS)].to_numpy(float),
                          list(NAMES), vectors=x[train], seed=seed)
    test = df[~train].reset_index(drop=True)
    pred = scorer.predict_vectors(x[~train])
    out: dict[str, Any] = {"head": str(scorer.head), "targets": {}}
    for i, (knob, value) in enumerate(TARGETS):
        t = scorer.threshold_for(knob, value, list(PRICES))
        r = evaluate_routing(pred, test, text="prompt", scores=list(COLUMNS),
                             costs=list(PRICES), models=list(NAMES), threshold=t,
                             bootstrap=bootstrap, seed=seed)
        out["targets"][(knob, value)] = {"shares": r.shares, "pgr": r.pgr,
                                         "saving": r.saving, "cost": r.cost_per_1k,
                                         "ci": r.point_ci}
        if i == 1:
            out.update(apgr=r.apgr, apgr_ci=r.apgr_ci, oracle=r.oracle_apgr, summary=r.summary,
                       singles=r.singles)
    two = evaluate_routing(pred[:, 2] - pred[:, 0], test, text="prompt",
                           weak_score="weak_correct", strong_score="strong_correct",
                           bootstrap=0)
    out["two_model_apgr"] = two.apgr
    return out


def _ms(values: list[float], pct: bool = False) -> str:
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.1%} ± {sd:.1%}" if pct else f"{m:.3f} ± {sd:.3f}"


def section(df: Any, x: Any, seeds: int, embedder_id: str, embed_cpu: float = 0.0) -> str:
    """The ladder rows as a Markdown section (between markers, so a re-run replaces it)."""
    c0, w0 = time.process_time(), time.perf_counter()
    df = with_mid(df)
    runs = [one_seed(df, x, seed, 300 if seed == 0 else 0) for seed in range(seeds)]
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    first = runs[0]
    alone = first["singles"]
    lines = [BEGIN, f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
             f"`python benchmarks/bench_routing.py --ladder` (`{embedder_id}`, {seeds} seeds, "
             f"held-out half of {len(df):,} MMLU rows; mean ± sd over seeds).", "",
             "Each model alone (seed 0's test half): " + ", ".join(
                 f"{m} {q:.3f} at ${c:.3f} per 1,000" for m, q, c in
                 zip(alone.index, alone["quality"], alone["cost_per_1k"], strict=True)) + ".",
             "", "| measure | value |", "|---|---:|",
             f"| APGR by cost (ladder router) | {_ms([r['apgr'] for r in runs])} |",
             f"| seed 0: 95% bootstrap CI | {first['apgr_ci'][0]:.3f}–{first['apgr_ci'][1]:.3f} |",
             f"| oracle APGR by cost | {_ms([r['oracle'] for r in runs])} |",
             f"| the same scores as a two-model router (mixtral / gpt-4), APGR by share | "
             f"{_ms([r['two_model_apgr'] for r in runs])} |", "",
             "| target (set on out-of-fold training rows) | sent to mixtral / mid / gpt-4 | "
             "gap kept (held-out) | saving against gpt-4 alone | seed 0, 95% CI of gap kept; "
             "of saving |", "|---|---|---:|---:|---|"]
    for key in TARGETS:
        pts = [r["targets"][key] for r in runs]
        split = " / ".join(f"{statistics.mean(p['shares'][n] for p in pts):.0%}" for n in NAMES)
        ci = pts[0]["ci"]
        band = ("; ".join(f"{c[0]:.0%}–{c[1]:.0%}" for c in (ci["pgr"], ci["saving"]))
                if ci["pgr"] and ci["saving"] else "—")
        lines.append(f"| {key[0]}={key[1]:g} | {split} | {_ms([p['pgr'] for p in pts], True)} "
                     f"| {_ms([p['saving'] for p in pts], True)} | {band} |")
    lines += ["", f"Seed 0 at quality=0.8: {first['summary']}", "",
              f"Heads chosen: {', '.join(r['head'] for r in runs)}. Fitting, thresholds and "
              f"evaluation: {cpu:.1f} s CPU ({wall:.1f} s wall); embedding {len(df):,} prompts "
              f"{embed_cpu:.1f} s CPU (0 when cached on disk).", END]
    return "\n".join(lines)


def splice(text: str, block: str) -> str:
    """``text`` with its ladder section replaced by ``block`` (appended when absent)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"
