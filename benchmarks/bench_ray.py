"""Map-reduce of ``openai:`` calls in the kernel (asyncio) against ``executor="ray"``.

    python benchmarks/bench_ray.py [--quick] [--out PATH]

The loopback server (``orchnb.testing.fake_server``) runs in its own process; every call goes
through the real ``openai`` SDK. For each size: wall seconds, calls/s, and the driver's memory
growth per item (RSS before/after, so Ray's workers are not in it), in-kernel with
``concurrency`` 100 against Ray with 2 workers (``concurrency`` 100 each). Ray's cluster start
is timed apart (a notebook pays it once). Last, the governor actor's own capacity: how many
``acquire`` calls per second one actor answers (the shared rate limiter's ceiling).
Figures feed docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "orchnb.testing.fake_server", "--port", "0",
                             "--latency", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"the fake server did not print its port (got {line!r})")
    return proc, f"http://127.0.0.1:{int(line)}/v1"


def _pipeline(executor: Any) -> Any:
    import orchnb

    return orchnb.MapReduce("bench", map=orchnb.Step("ask", "openai:gpt-4o-mini",
                                                     "Say hi to {{ input }}", max_tokens=16),
                            concurrency=100, executor=executor)


def _one(n: int, executor: Any) -> dict[str, float]:
    items = [f"item {i}" for i in range(n)]
    pipe = _pipeline(executor)
    rss0 = _rss_mb()
    t = time.perf_counter()
    run = pipe(items, cache=False)
    wall = time.perf_counter() - t
    assert run.status == "ok" and len(run.output) == n
    calls = sum(1 for s in run.trace.spans if s.kind == "model")
    rss = _rss_mb() - rss0
    return {"items": n, "wall_s": round(wall, 2), "calls_per_s": round(calls / wall, 1),
            "driver_kb_per_item": round(rss * 1024 / n, 2)}


def _limiter_capacity(ray: Any, seconds: float) -> dict[str, float]:
    from orchnb.engine import Budget
    from orchnb.patterns._ray_executor import _Governor

    gov = ray.remote(num_cpus=0)(_Governor).remote(Budget(), {"openai": 1e9})
    ray.get(gov.acquire.remote("openai"))
    done, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:  # 200 in flight at a time, like many workers
        ray.get([gov.acquire.remote("openai") for _ in range(200)])
        done += 200
    took = time.perf_counter() - t
    ray.kill(gov)
    return {"ops": done, "ops_per_s": round(done / took)}


def run(quick: bool) -> dict[str, Any]:
    os.environ.setdefault("ORCHNB_HOME", str(Path("/tmp") / f"orchnb-bench-ray-{os.getpid()}"))
    proc, base_url = _server()
    os.environ.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-fake")
    sizes = [500, 2000] if quick else [2000, 10000]
    out: dict[str, Any] = {"sizes": sizes, "kernel": [], "ray": []}
    try:
        import ray

        from orchnb.patterns import RayExecutor
        from orchnb.patterns._ray_executor import ray_module

        ex = RayExecutor(workers=2)
        t = time.perf_counter()
        ray_module(ex)
        out["ray_start_s"] = round(time.perf_counter() - t, 1)
        _one(50, ex)  # warm the workers (imports, SDK clients)
        _one(50, None)
        for n in sizes:
            out["kernel"].append(_one(n, None))
            out["ray"].append(_one(n, ex))
            print(json.dumps({"kernel": out["kernel"][-1], "ray": out["ray"][-1]}), flush=True)
        out["limiter"] = _limiter_capacity(ray, 2.0 if quick else 5.0)
        out["peak_driver_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        ray.shutdown()
    finally:
        proc.kill()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 and 2,000 items")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    result = run(args.quick)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
