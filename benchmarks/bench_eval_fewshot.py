"""Few-shot embedding routers on real data, through ``orchnb.evaluate`` and ``orchnb.calibrate``.

    python benchmarks/bench_eval_fewshot.py [--draws 10] [--methods auto,nearest] [--skip-clinc]
        [--skip-banking] [--speed 10000] [--first-seed 1000]

Needs ``../shared/data/intents`` (Banking77, CLINC150) and the embeddings extra
(sentence-transformers with all-MiniLM-L6-v2); it says so and exits when either is missing.

- **Banking77**: for each draw (seed 0, 1, ...), 10 training examples per intent drawn at
  random; the router's accuracy on the 3,080 test rows, per ``EmbeddingClassifier`` method.
  Published reference for 10 examples per intent: 85.19 (Casanueva et al. 2020, USE+ConveRT).
- **CLINC150** (full, with out-of-scope): 10 examples per intent, default route ``oos``; the
  threshold is calibrated on the validation split (OOS recall subject to in-scope accuracy
  ≥ 87% on validation, and also overall accuracy), then the test split (4,500 + 1,000 OOS)
  is evaluated. Validation has only 100 OOS rows: "overall accuracy" there is a noisy target.

Local embeddings are cached on disk (``embeddings.sqlite`` in ORCHNB_HOME), so only the first
run of a draw encodes texts. ``--seed-cache DIR`` preloads that cache from ``.npy`` files of
the same model (``b77_train.npy``... as written by ``--dump DIR``) to skip the encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the repository (a git worktree sits one level deeper).
DATA = next((p / "shared" / "data" / "intents" for p in (_ROOT.parent, _ROOT.parent.parent)
             if (p / "shared" / "data" / "intents").exists()),
            _ROOT.parent / "shared" / "data" / "intents")
EMBED = "sentence-transformers:all-MiniLM-L6-v2"
METHODS = ("nearest", "centroid", "knn", "linear", "hybrid")


def _draw(df: Any, label: str, per: int, seed: int) -> dict[str, list[str]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    for intent, group in df.groupby(label, sort=True):
        texts = group["text"].tolist()
        out[str(intent)] = [texts[i] for i in rng.choice(len(texts), per, replace=False)]
    return out


def _router(name: str, examples: dict[str, list[str]], method: str, default: str | None = None,
            extra_routes: tuple[str, ...] = ()) -> Any:
    import orchnb
    from orchnb.patterns import EmbeddingClassifier

    answer = orchnb.FunctionStep("answer", lambda x: x)  # one node shared by every route
    routes = {k: answer for k in [*examples, *extra_routes]}
    clf = EmbeddingClassifier(examples, EMBED, method=method)
    return orchnb.Router(name, classifier=clf, routes=routes, default=default)


def _seed_cache(folder: Path) -> None:
    """Put precomputed vectors (same model, normalised) into orchnb's disk cache."""
    import numpy as np
    import pandas as pd

    from orchnb.models._embed import VectorCache

    cache = VectorCache()
    b77 = DATA / "banking77"
    for split in ("train", "test"):
        f = folder / f"b77_{split}.npy"
        if f.exists():
            cache.put(EMBED, pd.read_csv(b77 / f"{split}.csv")["text"].tolist(), np.load(f))
    clinc = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    for split in ("train", "val", "test", "oos_train", "oos_val", "oos_test"):
        f = folder / f"c150_{split}.npy"
        if f.exists():
            cache.put(EMBED, [t for t, _ in clinc[split]], np.load(f))


def banking77(draws: int, methods: list[str], first: int = 0) -> dict[str, Any]:
    import pandas as pd

    import orchnb

    train = pd.read_csv(DATA / "banking77" / "train.csv")
    test = pd.read_csv(DATA / "banking77" / "test.csv")
    results: dict[str, list[float]] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    choices: list[dict[str, Any]] = []
    for seed in range(first, first + draws):
        examples = _draw(train, "category", 10, seed)
        for method in methods:
            router = _router(f"b77-{method}", examples, method)
            started = time.perf_counter()
            report = orchnb.evaluate(router, test, label="category", progress=False,
                                     n_boot=200)
            times[method].append(time.perf_counter() - started)
            results[method].append(report.accuracy)
            _chose(choices, "banking77", seed, router)
            print(f"banking77 draw {seed} {method:>8} ({router.classifier.method}): "
                  f"{report.accuracy:.2%} in {times[method][-1]:.1f}s "
                  f"(examples in test: {report.examples_in_data})", flush=True)
    summary = {m: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
                   "draws": list(range(first, first + draws)), "accuracy": v,
                   "median_eval_s": statistics.median(times[m])} for m, v in results.items()}
    return {"banking77": summary, "banking77_auto_choices": choices}


def _chose(choices: list[dict[str, Any]], data: str, seed: int, router: Any) -> None:
    """What method="auto" chose on this draw, and by how much (cross-validation)."""
    c = router.classifier.choice
    if router.classifier.asked == "auto" and c is not None:
        choices.append({"data": data, "seed": seed, "method": c.method,
                        "margin_points": c.margin, "cv_accuracy": c.accuracy})
        print(f"  auto: {c.sentence}", flush=True)


def clinc150(draws: int, method: str, first: int = 0) -> dict[str, Any]:
    import pandas as pd

    import orchnb

    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    train = pd.DataFrame(data["train"], columns=["text", "intent"])
    val = pd.DataFrame(data["val"] + data["oos_val"], columns=["text", "intent"])
    test = pd.DataFrame(data["test"] + data["oos_test"], columns=["text", "intent"])
    rows: list[dict[str, Any]] = []
    choices: list[dict[str, Any]] = []
    for seed in range(first, first + draws):
        examples = _draw(train, "intent", 10, seed)
        router = _router(f"clinc-{method}", examples, method, default="oos",
                         extra_routes=("oos",))
        # The default route is the out-of-scope one only when said so (oos_label=).
        none = orchnb.evaluate(router, test, label="intent", progress=False, n_boot=200,
                               oos_label="oos")
        _chose(choices, "clinc150", seed, router)
        out: dict[str, Any] = {"seed": seed, "method": router.classifier.method,
                               "no_threshold": _oos(none)}
        for name, kw in (("oos_recall|in_scope>=0.87",
                          {"objective": "oos_recall", "min_in_scope_accuracy": 0.87}),
                         ("accuracy", {"objective": "accuracy"})):
            cal = orchnb.calibrate(router, val, label="intent", oos_label="oos", **kw)
            rep = orchnb.evaluate(router, test, label="intent", progress=False, n_boot=200,
                                  oos_label="oos")
            out[name] = {"threshold": cal.threshold, "val": dict(cal.chosen[
                ["in_scope_accuracy", "oos_recall"]].astype(float)), "test": _oos(rep)}
        print(f"clinc150 draw {seed} ({out['method']}): " + "; ".join(
            f"{k}: in-scope {v['in_scope_accuracy']:.2%}, OOS recall {v['oos_recall']:.2%}"
            for k, v in (("no threshold", out["no_threshold"]),
                         *((k, out[k]["test"]) for k in ("oos_recall|in_scope>=0.87",
                                                         "accuracy")))), flush=True)
        rows.append(out)
    return {"clinc150": rows, "clinc150_auto_choices": choices}


def speed(rows: int) -> dict[str, Any]:
    """Banking77 train rows through a nearest-example router with the local embedder, in a
    fresh home: one batched ``encode`` of the texts alone, the eval cold (``cache=False``:
    embeds everything), and the eval again (answered from the disk cache)."""
    import tempfile

    import pandas as pd

    import orchnb
    from orchnb.models import SentenceTransformerEmbedder

    os.environ["ORCHNB_HOME"] = tempfile.mkdtemp(prefix="orchnb-speed-")
    train = pd.read_csv(DATA / "banking77" / "train.csv")
    examples = _draw(train, "category", 10, 0)
    head = train.head(rows)
    test = head.assign(text=head["text"] + " ")  # not the examples' own texts
    st = SentenceTransformerEmbedder()
    st._encode(["warm up"])  # model loaded outside every timing
    started = time.perf_counter()
    st._load().encode(test["text"].tolist(), normalize_embeddings=True, batch_size=64,
                      show_progress_bar=False)
    encode_s = time.perf_counter() - started
    out = {"rows": len(test), "encode_s": encode_s}
    for name, cache in (("eval_cold_s", False), ("eval_cached_s", True)):
        router = _router("speed", examples, "nearest")
        started = time.perf_counter()
        orchnb.evaluate(router, test, label="category", progress=False, cache=cache, n_boot=0)
        out[name] = time.perf_counter() - started
    out["cold_vs_encode"] = out["eval_cold_s"] / encode_s
    print(f"speed, {len(test):,} rows: one batched encode {encode_s:.1f}s; eval cold "
          f"{out['eval_cold_s']:.1f}s ({out['cold_vs_encode']:.2f}x the encode), eval again "
          f"from the disk cache {out['eval_cached_s']:.1f}s", flush=True)
    return {"speed": out}


def _oos(r: Any) -> dict[str, float]:
    return {"accuracy": r.accuracy, "in_scope_accuracy": r.in_scope_accuracy,
            "oos_recall": r.oos_recall, "oos_precision": r.oos_precision,
            "oos_f1": r.oos_f1, "auroc": r.abstention_auroc}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--clinc-draws", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="draws are seeds FIRST..FIRST+N-1 (>= 1000: never used in development)")
    ap.add_argument("--methods", default="auto,nearest,centroid,knn,linear")
    ap.add_argument("--clinc-method", default="auto")
    ap.add_argument("--skip-clinc", action="store_true")
    ap.add_argument("--skip-banking", action="store_true")
    ap.add_argument("--speed", type=int, default=0, metavar="ROWS",
                    help="also time a ROWS-row eval against one batched encode")
    ap.add_argument("--seed-cache", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not DATA.exists():
        print(f"no data at {DATA}: this benchmark needs ../shared/data/intents")
        return 0
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("needs the embeddings extra: pip install 'orchnb[embeddings]'")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.seed_cache:
        _seed_cache(args.seed_cache)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    out = {} if args.skip_banking else banking77(args.draws, methods, args.first_seed)
    for m, s in out.get("banking77", {}).items():
        print(f"Banking77 10-shot {m:>8}: {s['mean']:.2%} ± {s['sd']:.2%} over draws "
              f"{s['draws'][0]}..{s['draws'][-1]} (median eval {s['median_eval_s']:.1f}s)")
    if not args.skip_clinc:
        out.update(clinc150(args.clinc_draws, args.clinc_method, args.first_seed))
    if args.speed:
        out.update(speed(args.speed))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
