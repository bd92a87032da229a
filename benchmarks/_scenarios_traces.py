"""Traces: ``orchnb.traces()`` over 100k and 1M spans already in the store.

Synthetic runs of a 5-step chain (a run span, then a step and a model span per step: 11 spans,
with prompts and outputs of ~0.2 KB each), plus one run of 100 spans in the middle, are
written straight into a temporary ORCHNB_HOME's SQLite store. Each measurement runs in a fresh
interpreter, so its peak memory (``VmHWM``) is its own; "per span" is the peak during the
first call minus the memory before it, over the span count (memory-mapped file pages the call
touches count). The floor is the bare ``sqlite3`` fetch of the same rows (no DataFrame).

Contenders: the default read (through the columnar copy, ``orchnb.trace._columnar``, built by
a first read since the spans were inserted behind orchnb's back; in use, the writer keeps it),
the sqlite3 path it falls back to without pyarrow (what every read took before the copy), that
first read itself, and the pushed-down filters: ``since=`` the last 1% of spans, four
``columns=``, one run of 100 spans (``run_id=``).
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

ONE_RUN = "bench-one-run"
"""The run of 100 spans among the synthetic ones."""

_CALLS = {
    "orchnb": "orchnb.traces()",
    "sqlite3 path": "orchnb.traces()",
    "build": "orchnb.traces()",
    "since": "orchnb.traces(since=SINCE)",
    "columns": "orchnb.traces(columns=['run_id', 'step', 'latency_ms', 'cost_usd'])",
    "one run": f"orchnb.traces(run_id={ONE_RUN!r})",
    "before": "orchnb.traces()",
    "before, one run": f"orchnb.traces(run_id={ONE_RUN!r})",
}

_CHILD = """
import json, os, sys, time
sys.path.insert(0, {root!r})
if {orchnb_path!r}:
    sys.path.insert(0, {orchnb_path!r})  # an older orchnb, to compare with
from benchmarks._scenarios_common import peak_rss_mib, rss_mib
what, reps, SINCE = {what!r}, {reps}, {since!r}
import sqlite3, pandas, orchnb
try:
    import pyarrow
except ImportError:
    pass
if what == "sqlite3 path":  # as without pyarrow: the columnar copy is neither read nor written
    from orchnb.trace import _columnar
    _columnar._available = False
base = rss_mib()
times, peak, rows = [], None, 0
for i in range(reps):
    t = time.perf_counter()
    if what == "sqlite3":
        conn = sqlite3.connect(os.path.join(os.environ["ORCHNB_HOME"], "traces.sqlite"))
        out = conn.execute("SELECT * FROM spans ORDER BY start").fetchall()
        conn.close()
    else:
        out = {call}
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
    middle = [list(row(n // 2 + i)) for i in range(100)]
    for i, r in enumerate(middle):  # one run of 100 spans among the others
        r[COLUMNS.index("run_id")] = ONE_RUN
        r[COLUMNS.index("span_id")] = f"{ONE_RUN}.{i}"
        r[COLUMNS.index("start")] += 0.001
    conn.executemany(_INSERT, middle)
    conn.close()


def _measure(home: str, what: str, reps: int, since: float = 0.0,
             orchnb_path: str = "") -> dict[str, object]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _CHILD.format(root=root, what=what, reps=reps, since=since,
                         call=_CALLS.get(what, "None"), orchnb_path=orchnb_path)
    out = python_child(code, env={"ORCHNB_HOME": home}, timeout=900)
    return json.loads(out.strip().splitlines()[-1])


def measure(n: int, quick: bool, before: tuple[str, str] | None = None) -> Scenario:
    """One store of ``n`` synthetic spans (+ a run of 100), every contender on it; ``before``:
    ``(label, path)`` of an older orchnb checkout to measure as one more contender."""
    big = n >= 1_000_000
    with tempfile.TemporaryDirectory(prefix="orchnb-bench-traces-") as home:
        write_spans(home, n)
        size = os.path.getsize(os.path.join(home, "traces.sqlite"))
        since = 1.75e9 + n * 0.99 * 0.004  # the last 1% of spans
        reps = 2 if quick else (3 if big else 5)
        got = {"sqlite3 fetchall (no DataFrame)": _measure(home, "sqlite3", 1 if big else reps)}
        if before:
            got[f"orchnb.traces() at {before[0]}"] = _measure(home, "before", 1 if big else reps,
                                                              orchnb_path=before[1])
        got |= {"orchnb.traces() without pyarrow (sqlite3 path)":
                   _measure(home, "sqlite3 path", 1 if big else reps),
               "first orchnb.traces() (builds the columnar copy)": _measure(home, "build", 1)}
        copy = sum(os.path.getsize(e.path) for e in os.scandir(home + "/traces.sqlite.columns"))
        got["orchnb.traces()"] = _measure(home, "orchnb", reps)
        got["orchnb.traces(since=the last 1%)"] = _measure(home, "since", reps, since)
        got["orchnb.traces(columns=4 columns)"] = _measure(home, "columns", reps)
        got["orchnb.traces(run_id=one run of 100 spans)"] = _measure(home, "one run", reps)
        if before:
            got[f"orchnb.traces(run_id=one run of 100 spans) at {before[0]}"] = _measure(
                home, "before, one run", reps, orchnb_path=before[1])
    sc = Scenario(f"traces_{n}", f"orchnb.traces() over {n:,} stored spans: seconds",
                  floor="sqlite3 fetchall (no DataFrame)")
    for name, d in got.items():
        rows = int(d["rows"])  # type: ignore[call-overload]
        peak = float(d["peak_mib"])  # type: ignore[arg-type]
        sc.add(Result.of(name, list(d["times"]), "s",  # type: ignore[arg-type]
                         peak_mib=round(peak, 1),
                         bytes_per_span=round(peak * 2**20 / max(rows, 1)), rows=rows))
    sc.notes.append(f"synthetic 5-step-chain runs, {size / n:.0f} B per span in SQLite, "
                    f"{copy / n:.0f} B per span in the columnar copy; peak memory per span = "
                    "(peak RSS during the first call − RSS before) / rows returned, in a fresh "
                    "interpreter")
    sc.finish()
    mine = sc.get("orchnb.traces()")
    if mine is not None:
        mine.extra["spans_per_s"] = round(n / statistics.median(mine.samples))
        if big:
            sc.target("1M spans → DataFrame", mine.value, 1.0, "s")
            sc.target("1M spans → DataFrame, peak memory", mine.extra["bytes_per_span"],
                      1024, " B/span")
    return sc


def traces(quick: bool) -> list[Scenario]:
    """``orchnb.traces()`` over 100k and 1M stored spans (quick: 20k)."""
    return [measure(n, quick) for n in ([20_000] if quick else [100_000, 1_000_000])]
