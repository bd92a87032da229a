"""Router evals: 10,000 rows on ``sim:`` models, cold and from the response cache; and
10,003 Banking77 rows with the local MiniLM embedder against one batched encode of them.

The work is ``benchmarks/bench_eval.py`` (``run(quick) -> dict``) and ``speed`` in
``benchmarks/bench_eval_fewshot.py``; this module only turns their figures into the common
result shape, and marks a scenario skipped when its data or extra is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._scenarios_common import Result, Scenario

_PARTS = (("cold", "cold (empty cache)"), ("cached", "cached (same rows again)"),
          ("full_pipeline", "full pipeline (classifier cached, routes cold)"))


def router_eval(quick: bool) -> list[Scenario]:
    """``orchnb.evaluate`` of 10,000 rows (quick: 2,000), via ``benchmarks.bench_eval``."""
    try:
        bench = importlib.import_module("benchmarks.bench_eval")
    except ImportError as e:
        return [Scenario("router_eval", "router eval on sim:",
                         skipped=f"benchmarks/bench_eval.py not importable: {e}")]
    raw: dict[str, Any] = bench.run(quick)
    rows = raw.get("rows", "?")
    sc = Scenario("router_eval", f"orchnb.evaluate, {rows:,} rows on sim: models: seconds"
                  if isinstance(rows, int) else "orchnb.evaluate on sim: models: seconds",
                  floor="cold (empty cache)")
    for key, label in _PARTS:
        part = raw.get(key)
        if not isinstance(part, dict):
            continue
        samples = part.get("samples_s") or [part.get("total_s")]
        extra = {k: v for k, v in part.items() if k not in ("samples_s",)}
        sc.add(Result.of(label, [float(s) for s in samples], "s", **extra))
    sc.notes.append("from benchmarks/bench_eval.py; ratios are to the cold run; "
                    + ", ".join(f"{k}={v}" for k, v in raw.items() if not isinstance(v, dict)))
    return [sc.finish()]


def local_embedding_eval(quick: bool) -> list[Scenario]:
    """A nearest-example router with ``sentence-transformers:all-MiniLM-L6-v2`` over Banking77
    training rows (all 10,003; quick: 500): one batched ``encode`` of the rows (the floor),
    ``orchnb.evaluate(..., cache=False)`` (embeds the rows and the 770 examples), and the same
    eval again from the disk cache of vectors. Target: the cold eval within 1.2× the encode."""
    name, title = "local_embedding_eval", "orchnb.evaluate with a local embedder: seconds"
    bench = importlib.import_module("benchmarks.bench_eval_fewshot")
    if not bench.DATA.exists():
        return [Scenario(name, title, skipped=f"needs Banking77 at {bench.DATA} (../shared)")]
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        return [Scenario(name, title, skipped="needs pip install 'orchnb[embeddings]'")]
    raw = bench.speed(500 if quick else 10_003)["speed"]
    sc = Scenario(name, f"orchnb.evaluate, {raw['rows']:,} Banking77 rows, local MiniLM "
                  f"embedder: seconds", floor="one batched encode of the rows")
    sc.add(Result.of("one batched encode of the rows", [raw["encode_s"]], "s"))
    sc.add(Result.of("orchnb.evaluate, cache=False (rows + 770 examples)",
                     [raw["eval_cold_s"]], "s"))
    sc.add(Result.of("orchnb.evaluate again (disk cache of vectors)", [raw["eval_cached_s"]],
                     "s"))
    sc.finish()
    sc.target("cold eval / one batched encode", sc.results[1].ratio, 1.2, "×")
    sc.notes.append("from benchmarks/bench_eval_fewshot.py speed(); model loaded before "
                    "every timing; fresh ORCHNB_HOME")
    return [sc]
