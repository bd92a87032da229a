"""Soak: many calls through both SDKs against the loopback server at mixed faults, then a storm.

    python -m benchmarks.soak [--items 5000] [--storm 9] [--faults 0.2] [--json PATH]

Phase 1 maps ``items`` items through a chain of four model calls (openai plain, anthropic
streamed, openai streamed, anthropic plain) with ``faults`` of the requests failing, spread
evenly over every fault kind the loopback server has (429, 500, 503, timeout, malformed, drop,
cut, truncate, stream_error). It reports items lost, spans lost (run trace vs SQLite store),
requests served vs attempts recorded in the trace, retries that came earlier than the server's
Retry-After, and call latency percentiles. Phase 2 answers every request with 429 for
``storm`` seconds and reports the request rate: peak per second, and the most requests in any
100 ms (a wave of retries arriving together).

The CI soak (``tests/engine/test_soak.py``, marked slow) runs this with small numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any

from orchnb.testing import pointed_at

KINDS = ("429", "500", "503", "timeout", "malformed", "drop", "cut", "truncate", "stream_error")


def _env(fake: Any) -> contextlib.AbstractContextManager[None]:
    return pointed_at(fake.env())


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def early_retries(requests: list[Any]) -> tuple[int, int]:
    """Retries that arrived before the Retry-After of the answer before them, and how many
    retries followed a Retry-After at all. Requests are matched to calls by API and prompt."""
    by_call: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in requests:
        by_call[(r.api, r.last_user)].append(r)
    early = waited = 0
    for calls in by_call.values():
        calls.sort(key=lambda r: r.received)
        for a, b in itertools.pairwise(calls):
            if a.retry_after is not None:
                waited += 1
                if b.received - a.received < a.retry_after:
                    early += 1
    return early, waited


def mixed_faults(items: int, faults: float = 0.2, *, concurrency: int = 50,
                 timeout: float = 2.0, retry_after: float = 0.2, seed: int = 0,
                 calls: int = 4) -> dict[str, Any]:
    """Phase 1: ``items`` items × ``calls`` calls (up to 4) at ``faults`` mixed faults."""
    import orchnb
    from orchnb import Chain, MapReduce, RetryPolicy, Step
    from orchnb.testing import FakeProvider

    rate = faults / len(KINDS)
    with FakeProvider(seed=seed, hang=timeout * 2, retry_after=retry_after) as fake, _env(fake):
        fake.fault_rates(**{f"rate_{k}": rate for k in KINDS})
        chain = Chain("pair", [
            Step("a", "openai:gpt-4o-mini", "A {{ input }}"),
            Step("b", "anthropic:claude-haiku-4-5", "B {{ input }}", stream=True),
            Step("c", "openai:gpt-4o-mini", "C {{ input }}", stream=True),
            Step("d", "anthropic:claude-haiku-4-5", "D {{ input }}"),
        ][:calls])
        pipe = MapReduce("soak", map=chain, concurrency=concurrency, on_error="skip", retries=0,
                         cache=False, timeout=timeout,
                         retry=RetryPolicy(max_attempts=12, backoff=0.05, max_backoff=1.0))
        t0 = time.perf_counter()
        run = pipe([f"item {i}" for i in range(items)])
        wall = time.perf_counter() - t0
        requests = fake.requests
    outputs = run.output or []
    spans = list(run.trace.spans)
    stored = orchnb.traces(run_id=run.id)
    model = [s for s in spans if s.kind == "model"]
    attempts = sum(s.attempt or 0 for s in model)
    recorded = sum(len((s.meta or {}).get("attempts", [])) + (s.status == "ok") for s in model)
    early, waited = early_retries(requests)
    lat = [s.latency_ms for s in model if s.status == "ok" and s.latency_ms is not None]
    faulted: dict[str, int] = defaultdict(int)
    for r in requests:
        faulted[r.fault or "none"] += 1
    return {
        "items": items, "calls_per_item": calls, "faults": faults, "run_status": run.status,
        "items_lost": items - len([o for o in outputs if o is not None]),
        "spans_in_run": len(spans), "spans_in_store": len(stored),
        "spans_lost": len(spans) - len(set(stored.span_id)),
        "requests": len(requests), "attempts_recorded": attempts,
        "failed_attempts_in_meta_plus_ok": recorded,
        "retries_after_retry_after": waited, "early_retries": early,
        "faults_served": dict(sorted(faulted.items())),
        "call_p50_ms": round(_percentile(lat, 0.5), 1),
        "call_p95_ms": round(_percentile(lat, 0.95), 1),
        "wall_s": round(wall, 1),
    }


def storm(seconds: float, items: int = 50, *, retry_after: float = 1.0,
          seed: int = 0) -> dict[str, Any]:
    """Phase 2: every request answered 429 (Retry-After ``retry_after``) for ``seconds``."""
    from orchnb import MapReduce, RetryPolicy, Step
    from orchnb.testing import FakeProvider

    with FakeProvider(seed=seed, retry_after=retry_after) as fake, _env(fake):
        fake.fault_rates(rate_429=1.0)
        stop = threading.Timer(seconds, fake.fault_rates)
        pipe = MapReduce("storm", map=Step("s", "openai:gpt-4o-mini", "{{ input }}"),
                         concurrency=items, on_error="skip", retries=0, cache=False,
                         retry=RetryPolicy(max_attempts=40, backoff=0.5, max_backoff=4.0))
        t0 = time.perf_counter()
        stop.start()
        try:
            run = pipe([f"storm {i}" for i in range(items)])
        finally:
            stop.cancel()
        wall = time.perf_counter() - t0
        requests = fake.requests
    times = sorted(r.received for r in requests if r.fault == "429")
    seen: set[str] = set()
    retries = []
    for r in sorted(requests, key=lambda r: r.received):
        if r.last_user in seen:
            retries.append(r.received)
        seen.add(r.last_user)
    early, waited = early_retries(requests)
    per_s = _peak(times, 1.0)
    per_100ms = _peak(retries, 0.1)
    span = max(times[-1] - times[0], 1e-9) if times else 1.0
    return {
        "storm_s": seconds, "items": items, "retry_after": retry_after,
        "requests_429": len(times), "mean_requests_per_s": round(len(times) / span, 1),
        "peak_requests_per_s": per_s, "peak_retries_in_100ms": per_100ms,
        "first_second_requests": sum(1 for t in times if t - times[0] < 1.0) if times else 0,
        "early_retries": early, "retries_after_retry_after": waited,
        "items_lost": items - len([o for o in (run.output or []) if o is not None]),
        "wall_s": round(wall, 1),
    }


def _peak(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--faults", type=float, default=0.2)
    parser.add_argument("--calls", type=int, default=4, help="calls per item (1 to 4)")
    parser.add_argument("--storm", type=float, default=9.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["ORCHNB_HOME"] = home
        import orchnb

        orchnb.configure(progress=False)
        result = {"mixed": mixed_faults(args.items, args.faults, calls=args.calls),
                  "storm": storm(args.storm)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
