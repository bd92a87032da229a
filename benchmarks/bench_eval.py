"""Router eval speed: a 10,000-row eval on sim models, cold and answered from the response cache.

    python benchmarks/bench_eval.py [--quick]

``run(quick)`` returns the figures as a dict (``benchmarks/__main__.py`` calls it). Each
repetition uses a fresh ORCHNB_HOME, so "cold" means an empty response cache and trace store;
"cached" is the same eval run again in that home. Times are wall-clock seconds for the whole
``orchnb.evaluate`` call (estimate, run, report with a 1,000-resample bootstrap); ``run_s`` is the
engine run alone. Medians over the repetitions, with every sample kept.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from typing import Any

RULES = [(r"refund|charg|invoice|bill|pay", "billing"),
         (r"crash|error|bug|app\b|api", "technical"),
         (r"password|account|log ?in|email", "account"),
         (r"deliver|ship|parcel|package|track|courier", "shipping")]


def _router() -> Any:
    import orchnb

    compiled = [(re.compile(p, re.IGNORECASE), label) for p, label in RULES]

    def answer(request: Any) -> str:
        message = request.messages[-1].content.split("Message:", 1)[-1]
        return next((label for p, label in compiled if p.search(message)), "not sure")

    orchnb.sim_model("bench-kw", fn=answer, priced_as="openai:gpt-4o-mini")
    orchnb.sim_model("bench-small", default="Done.", priced_as="openai:gpt-4o-mini")
    orchnb.sim_model("bench-big", default="A careful answer.", priced_as="openai:gpt-4o")
    routes = {label: orchnb.Step(f"{label}_team", "sim:bench-big" if label == "technical"
                                 else "sim:bench-small", "Help with: {{ input }}")
              for label in ("billing", "technical", "account", "shipping", "other")}
    prompt = ("Route this message to one of: {{ labels | join(', ') }}. Answer with the label.\n"
              "Message: {{ input }}")
    return orchnb.Router("bench_triage", classifier=orchnb.Step("classify", "sim:bench-kw", prompt),
                         routes=routes, default="other")


def _rows(n: int) -> Any:
    import pandas as pd

    from orchnb.evals import load_tickets

    t = load_tickets()
    copies = -(-n // len(t))
    # Distinct texts, so that a cold run pays for every row (no cache hits among the copies).
    big = pd.concat([t.assign(text=t.text + f" (case {i})") for i in range(copies)])
    return big.head(n).reset_index(drop=True)


def _one(router: Any, data: Any, full: bool) -> dict[str, float]:
    import orchnb
    from orchnb.trace import get_store

    started = time.perf_counter()
    report = orchnb.evaluate(router, data, progress=False, full_pipeline=full)
    total = time.perf_counter() - started
    flush_started = time.perf_counter()
    get_store().flush()
    return {"total_s": total, "run_s": report.wall_s,
            "flush_s": time.perf_counter() - flush_started,
            "cached_calls": report.cached_calls, "calls": report.calls,
            "accuracy": report.accuracy, "paid_usd": report.cost_usd}


def _median(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def run(quick: bool) -> dict[str, Any]:
    """Time a router eval of 10,000 rows (2,000 when ``quick``) cold and from the cache."""
    n = 2_000 if quick else 10_000
    reps = 1 if quick else 3
    router = _router()
    data = _rows(n)
    cold: list[dict[str, float]] = []
    cached: list[dict[str, float]] = []
    full: list[dict[str, float]] = []
    old_home = os.environ.get("ORCHNB_HOME")
    try:
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="orchnb-bench-eval-") as home:
                os.environ["ORCHNB_HOME"] = home
                cold.append(_one(router, data, False))
                cached.append(_one(router, data, False))
                full.append(_one(router, data, True))  # classifier cached, routes cold
    finally:
        if old_home is None:
            os.environ.pop("ORCHNB_HOME", None)
        else:
            os.environ["ORCHNB_HOME"] = old_home
    out: dict[str, Any] = {"rows": n, "reps": reps, "concurrency": 16}
    for name, samples in (("cold", cold), ("cached", cached), ("full_pipeline", full)):
        med = _median(samples, "total_s")
        out[name] = {
            "total_s": round(med, 3), "run_s": round(_median(samples, "run_s"), 3),
            "flush_s": round(_median(samples, "flush_s"), 3),
            "rows_per_s": round(n / med), "samples_s": [round(s["total_s"], 3) for s in samples],
            "calls": int(samples[0]["calls"]), "cached_calls": int(samples[0]["cached_calls"]),
            "paid_usd": round(samples[0]["paid_usd"], 6),
        }
    out["accuracy"] = round(cold[0]["accuracy"], 4)
    out["cache_speedup"] = round(out["cold"]["total_s"] / out["cached"]["total_s"], 2)
    return out


if __name__ == "__main__":
    result = run("--quick" in sys.argv[1:])
    print(json.dumps(result, indent=2))
