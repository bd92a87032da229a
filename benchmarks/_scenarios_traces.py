"""Traces: ``orchnb.traces()`` over 100k and 1M spans already in the store.

Synthetic runs of a 5-step chain (a run span, then a step and a model span per step: 11 spans,
with prompts and outputs of ~0.2 KB each) are written straight into a temporary ORCHNB_HOME's
SQLite store. Each measurement runs in a fresh interpreter, so its peak memory (``VmHWM``) is
its own; "per span" is the peak during the call minus the memory before it, over the span
count. The floor is the bare ``sqlite3`` fetch of the same rows (no DataFrame).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path

from ._scenarios_common import Result, Scenario, python_child

SPANS_PER_RUN = 11
_WORDS = ["invoice", "refund", "shipping", "delay", "account", "password", "crash", "error",
          "report", "summary", "customer", "order", "payment", "delivery", "tracking", "support",
          "ticket", "escalation", "priority", "billing"]

_CHILD = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from benchmarks._scenarios_common import peak_rss_mib, rss_mib
what, reps = {what!r}, {reps}
import sqlite3, pandas, orchnb
try:
    import pyarrow
except ImportError:
    pass
base = rss_mib()
times, peak, rows = [], None, 0
for i in range(reps):
    t = time.perf_counter()
    if what == "orchnb":
        out = orchnb.traces()
    else:
        conn = sqlite3.connect(os.path.join(os.environ["ORCHNB_HOME"], "traces.sqlite"))
        out = conn.execute("SELECT * FROM spans ORDER BY start").fetchall()
        conn.close()
    times.append(time.perf_counter() - t)
    if peak is None:
        peak = peak_rss_mib() - base
    rows = len(out)
    del out
print(json.dumps({{"times": times, "peak_mib": peak, "base_mib": base, "rows": rows}}))
"""


def write_spans(home: str, n: int) -> None:
    """Write ``n`` synthetic spans (runs of a 5-step chain) into ``home``'s store."""
    from orchnb.trace import COLUMNS
    from orchnb.trace._migrations import connect
    from orchnb.trace._rows import INSERT as _INSERT

    conn = connect(Path(home) / "traces.sqlite")
    t0 = 1.75e9
    words = _WORDS

    def text(i: int, k: int, size: int) -> str:
        out, j = [], i * 7 + k
        while sum(len(w) + 1 for w in out) < size:
            out.append(words[j % len(words)])
            j = j * 31 + 17
        return " ".join(out)

    def row(i: int) -> tuple[object, ...]:
        run, k = divmod(i, SPANS_PER_RUN)
        rid = f"{run * 2654435761 % (1 << 48):012x}"
        start = t0 + i * 0.004
        values: dict[str, object]
        if k == 0:
            values = dict(kind="run", step="chain5", parent_id=None, latency_ms=44.0,
                          input=text(i, 0, 200), output=text(i, 1, 150))
        else:
            is_model = k % 2 == 0
            step = f"s{(k - 1) // 2}"
            values = dict(kind="model" if is_model else "step", step=step,
                          parent_id=f"{rid}.{k - 1 if is_model else 1}", latency_ms=3.5,
                          provider="openai", model="gpt-4o-mini", input=text(i, 2, 200),
                          output=text(i, 3, 150))
            if is_model:
                values.update(input_tokens=50 + k, output_tokens=38, cached_tokens=0,
                              cost_usd=3.03e-05, priced=1, attempt=1, cached=0, simulated=0)
        values.update(run_id=rid, span_id=f"{rid}.{k + 1}", pipeline="bench", pattern="chain",
                      status="ok", start=start, end=start + float(values["latency_ms"]) / 1000)  # type: ignore[arg-type]
        return tuple(values.get(c) for c in COLUMNS)

    step = 100_000
    for lo in range(0, n, step):
        conn.execute("BEGIN")
        conn.executemany(_INSERT, (row(i) for i in range(lo, min(n, lo + step))))
        conn.execute("COMMIT")
    conn.close()


def _measure(home: str, what: str, reps: int) -> dict[str, object]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = python_child(_CHILD.format(root=root, what=what, reps=reps),
                       env={"ORCHNB_HOME": home}, timeout=900)
    return json.loads(out.strip().splitlines()[-1])


def traces(quick: bool) -> list[Scenario]:
    """``orchnb.traces()`` over 100k and 1M stored spans (quick: 20k)."""
    sizes = [20_000] if quick else [100_000, 1_000_000]
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="orchnb-bench-traces-") as home:
            write_spans(home, n)
            reps = 2 if quick else (5 if n <= 100_000 else 3)
            floor_reps = 2 if quick else (3 if n <= 100_000 else 1)
            ours = _measure(home, "orchnb", reps)
            floor = _measure(home, "sqlite3", floor_reps)
            size = os.path.getsize(os.path.join(home, "traces.sqlite"))
        sc = Scenario(f"traces_{n}", f"orchnb.traces() over {n:,} stored spans: seconds",
                      floor="sqlite3 fetchall (no DataFrame)")
        for name, d in (("sqlite3 fetchall (no DataFrame)", floor), ("orchnb.traces()", ours)):
            rows = int(d["rows"])  # type: ignore[call-overload]
            peak = float(d["peak_mib"])  # type: ignore[arg-type]
            sc.add(Result.of(name, list(d["times"]), "s",  # type: ignore[arg-type]
                             peak_mib=round(peak, 1),
                             bytes_per_span=round(peak * 2**20 / max(rows, 1)), rows=rows))
        sc.notes.append(f"synthetic 5-step-chain runs, {size / n:.0f} B per span on disk; "
                        "peak memory per span = (peak RSS during the first call − RSS before) / "
                        "spans, in a fresh interpreter")
        sc.finish()
        mine = sc.get("orchnb.traces()")
        if n == 1_000_000 and mine is not None:
            sc.target("1M spans → DataFrame", mine.value, 2.0, "s")
        if mine is not None:
            mine.extra["spans_per_s"] = round(n / statistics.median(mine.samples))
        out.append(sc)
    return out
