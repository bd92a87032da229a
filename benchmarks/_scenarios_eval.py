"""Router eval: 10,000 rows on ``sim:`` models, cold and from the response cache.

The work is ``benchmarks/bench_eval.py`` (``run(quick) -> dict``); this module only turns its
figures into the common result shape, and marks the scenario skipped if that file is absent.
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
