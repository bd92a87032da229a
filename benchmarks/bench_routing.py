"""The quality router on recorded answers (RouteLLM's GSM8K and MMLU: Mixtral-8x7B weak,
gpt-4-1106-preview strong), scored as RouteLLM scores routers: APGR, CPT(50%), CPT(80%).

    python benchmarks/bench_routing.py [--seeds 5] [--embed st:all-MiniLM-L6-v2] [--out FILE]
    python benchmarks/bench_routing.py --ladder [--seeds 5]    # only the ladder rows

``--ladder`` runs only the three-model ladder rows on MMLU (``_routing_ladder.py``: a synthetic
middle model, documented there) and replaces their marked section in ``--out``, leaving the
rest of the file as it is.

Needs ``../shared/data/routing`` and the embeddings extra; says so and exits when missing.

- **held-out**: for each seed, a random half of the rows trains ``QualityScorer`` (the
  classifier of ``orchnb.QualityRouter``: kNN, ridge or their blend on centred embeddings,
  chosen by 5-fold cross-validated APGR), the other half is evaluated with
  ``orchnb.evaluate_routing``.
- **cross-subject** (MMLU): for each seed, a random half (or 80%) of the 45 subjects trains,
  the other subjects are evaluated; and five folds of the subjects (each subject scored once by
  a scorer trained on the other four fifths, scores pooled). The scorer cross-validates by
  whole subjects there (``groups=``), so its head is chosen for unseen subjects.
- Beside it, on the same test rows: a random router (uniform scores, drawn per seed) and the
  oracle (knows both grades).

Embedding is done once per data set (and cached on disk by the embedder); CPU seconds for the
embedding and for the fitting + evaluation are reported apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
DATA = next((p / "shared" / "data" / "routing" for p in (_ROOT.parent, _ROOT.parent.parent)
             if (p / "shared" / "data" / "routing").exists()),
            _ROOT.parent / "shared" / "data" / "routing")


def _evaluate(scores: Any, test: Any) -> dict[str, float]:
    from orchnb.evals import evaluate_routing

    r = evaluate_routing(scores, test, text="prompt", weak_score="weak_correct",
                         strong_score="strong_correct", bootstrap=0)
    return {"apgr": r.apgr, "cpt50": r.cpt(0.5), "cpt80": r.cpt(0.8), "oracle": r.oracle_apgr}


def _split_runs(df: Any, x: Any, seeds: int, by_subject: float) -> dict[str, list[dict]]:
    """``by_subject``: 0 for random halves of the rows, else the share of subjects trained on
    (1.0: five folds of the subjects, each tested once, scores pooled per seed)."""
    import numpy as np

    out: dict[str, list[dict]] = {"quality router": [], "random": [], "oracle": []}
    heads: list[str] = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        if by_subject == 1.0:
            got, test = _subject_folds(df, x, seed, heads)
        else:
            if by_subject:
                subjects = np.array(sorted(df["domain"].unique()))
                chosen = set(rng.permutation(subjects)[: round(len(subjects) * by_subject)])
                train = df["domain"].isin(chosen).to_numpy()
            else:
                train = np.zeros(len(df), dtype=bool)
                train[rng.permutation(len(df))[: len(df) // 2]] = True
            scorer = _fit(df, x, train, seed, by_subject > 0)
            heads.append(str(scorer.head))
            test = df[~train].reset_index(drop=True)
            got = _evaluate(scorer.score_vectors(x[~train], test["prompt"].tolist()), test)
        out["quality router"].append(got)
        out["random"].append(_evaluate(rng.random(len(test)), test))
        out["oracle"].append({"apgr": got["oracle"], "cpt50": float("nan"),
                              "cpt80": float("nan")})
    out["heads"] = heads  # type: ignore[assignment]
    return out


def _fit(df: Any, x: Any, train: Any, seed: int, by_group: bool) -> Any:
    """The quality router's scorer on the training rows; across subjects it cross-validates by
    whole subjects (``groups=``) and may add a prompt-length term (``length=True``), as a user
    would who expects new topics."""
    from orchnb.patterns import QualityScorer

    gains = (df["strong_correct"].astype(float) - df["weak_correct"].astype(float)).to_numpy()
    return QualityScorer(df["prompt"][train].tolist(), gains[train], vectors=x[train],
                         seed=seed, groups=df["domain"][train].tolist() if by_group else None,
                         length=by_group)


def _subject_folds(df: Any, x: Any, seed: int, heads: list[str]) -> tuple[dict, Any]:
    """Five folds of the subjects: each fold's subjects scored by a scorer trained on the
    other four; the pooled scores evaluated once."""
    import numpy as np

    subjects = np.random.default_rng(seed).permutation(sorted(df["domain"].unique()))
    fold_of = {s: i % 5 for i, s in enumerate(subjects)}
    fold = df["domain"].map(fold_of).to_numpy()
    scores = np.zeros(len(df))
    for f in range(5):
        train = fold != f
        scorer = _fit(df, x, train, seed, True)
        heads.append(str(scorer.head))
        scores[~train] = scorer.score_vectors(x[~train], df["prompt"][~train].tolist())
    return _evaluate(scores, df), df


def _fmt(values: list[float], pct: bool = False) -> str:
    vals = [v for v in values if v == v]
    if not vals:
        return "—"
    m = statistics.mean(vals)
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{m:.1%} ± {sd:.1%}" if pct else f"{m:.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--embed", default="st:all-MiniLM-L6-v2")
    ap.add_argument("--out", default=str(_ROOT / "benchmarks" / "results" / "routing.md"))
    ap.add_argument("--ladder", action="store_true",
                    help="only the ladder rows (MMLU, synthetic mid model), spliced into --out")
    args = ap.parse_args(argv)
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (the shared routing data)")
        return 0
    import pandas as pd

    from orchnb.models import resolve_embedder
    from orchnb.patterns._quality_scorer import embed_now

    embedder = resolve_embedder(args.embed)
    if args.ladder:
        return _ladder_only(args, embedder, embed_now)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# Routing on recorded answers ({when})",
             "", f"Embedder `{embedder.id}`; {args.seeds} seeds; mean ± standard deviation over "
             "seeds. Regenerate with `python benchmarks/bench_routing.py`.", "",
             "| data | split | router | APGR | CPT(50%) | CPT(80%) |",
             "|---|---|---|---:|---:|---:|"]
    notes = []
    for name in ("mmlu", "gsm8k"):
        df = pd.read_csv(DATA / f"{name}.csv")
        c0, w0 = time.process_time(), time.perf_counter()
        x = embed_now(embedder, df["prompt"].astype(str).tolist())
        c1, w1 = time.process_time(), time.perf_counter()
        splits = [("held-out half", 0.0)] + ([
            ("cross-subject, half the subjects", 0.5),
            ("cross-subject, 80% of subjects", 0.8),
            ("cross-subject, 5 folds of subjects, pooled", 1.0)] if name == "mmlu" else [])
        for split, by_subject in splits:
            runs = _split_runs(df, x, args.seeds, by_subject)
            for router in ("quality router", "random", "oracle"):
                r = runs[router]
                lines.append(f"| {name} ({len(df):,}) | {split} | {router} | "
                             f"{_fmt([v['apgr'] for v in r])} | "
                             f"{_fmt([v['cpt50'] for v in r], True)} | "
                             f"{_fmt([v['cpt80'] for v in r], True)} |")
            notes.append(f"- {name} {split}: heads chosen by cross-validation: "
                         f"{', '.join(runs['heads'])}")  # type: ignore[arg-type]
        c2, w2 = time.process_time(), time.perf_counter()
        notes.append(f"- {name}: embedding {len(df):,} prompts {c1 - c0:.1f} s CPU "
                     f"({w1 - w0:.1f} s wall; 0 when cached on disk); fitting + evaluating "
                     f"all splits and seeds {c2 - c1:.1f} s CPU ({w2 - w1:.1f} s wall)")
        print("\n".join(lines[-9:]), file=sys.stderr)
    text = "\n".join([*lines, "", *notes, ""])
    out = Path(args.out)
    out.write_text(text + _kept(out.read_text() if out.exists() else ""))
    print(text)
    return 0


def _kept(old: str) -> str:
    """What a full run keeps of the file it rewrites: everything from its first ``## `` heading
    on (the headline, the goals, the ladder section: written by hand or by ``--ladder``)."""
    at = old.find("\n## ")
    return "" if at < 0 else old[at:]


def _ladder_only(args: Any, embedder: Any, embed_now: Any) -> int:
    """Run the ladder rows only and splice them into ``args.out``."""
    import pandas as pd

    try:
        from benchmarks._routing_ladder import section, splice
    except ImportError:  # run as a script from elsewhere: its own folder is on the path
        from _routing_ladder import section, splice  # type: ignore[no-redef]

    df = pd.read_csv(DATA / "mmlu.csv")
    c0 = time.process_time()
    x = embed_now(embedder, df["prompt"].astype(str).tolist())
    block = section(df, x, args.seeds, embedder.id, time.process_time() - c0)
    out = Path(args.out)
    out.write_text(splice(out.read_text() if out.exists() else "", block))
    print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
