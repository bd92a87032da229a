"""Instruction counts (valgrind's callgrind) of the hot paths, orchnb against LangGraph.

    python -m benchmarks.callgrind [--quick] [--out PATH] [--profile DIR]

Timings on a shared machine move with its load; the instructions a workload executes do not.
A child interpreter runs under ``valgrind --tool=callgrind --instr-atstart=no``; for each
workload it builds and warms the contender with instrumentation off, then turns it on, zeroes
the counters, runs a fixed batch and dumps the counts under the workload's name (valgrind
client requests, issued from Python through a few bytes of machine code: see ``_Valgrind``).
Every thread is counted, so the span writer's work (the batch ends with the store's flush) is
in the figure. Imports, set-up and warm-up are not.

Workloads (``n`` runs, 200; 20 with ``--quick``): the 5-step chain and the router of
``_scenarios_steps`` (orchnb traced and persisted, cache off; LangGraph ``StateGraph``), sync
and async; and ``n`` chat completions through the real ``openai`` SDK against the loopback
server (its own process, not counted): a bare ``AsyncOpenAI`` with a semaphore, and orchnb's
``MapReduce`` over an ``openai:`` step. What orchnb adds per call is the difference.

The results go to ``benchmarks/results/callgrind.json`` under ``full`` or ``quick``; the quick
benchmark run (``python -m benchmarks --quick``, group ``callgrind``) compares its ratios with
the committed ``quick`` ones and fails when one has grown by more than 20%.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import mmap
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "callgrind.json"
FULL_RUNS, QUICK_RUNS = 200, 20
TOLERANCE = 1.20
"""A ratio may grow by this factor over the committed one before the quick run fails."""
_BASE = (ord("C") << 24) | (ord("T") << 16)  # VG_USERREQ_TOOL_BASE('C', 'T')
_DUMP_AT, _ZERO, _START, _STOP = _BASE + 3, _BASE + 1, _BASE + 4, _BASE + 5
_RUNNING_ON_VALGRIND = 0x1001
# amd64: rax = &args, rdx = default; the magic preamble (rotations summing to 128 bits, then
# xchg rbx,rbx) is a no-op on a real CPU and a client request under valgrind; result in rdx.
_REQUEST_CODE = bytes.fromhex("4889f8" "31d2" "48c1c703" "48c1c70d" "48c1c73d" "48c1c733"
                              "4887db" "4889d0" "c3")
Batch = Callable[[int], None]


class _Valgrind:
    """Valgrind client requests from Python: a tiny function in an executable page."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(_REQUEST_CODE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._fn = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p)(addr)

    def request(self, code: int, arg: int = 0) -> int:
        args = (ctypes.c_size_t * 6)(code, arg, 0, 0, 0, 0)
        return int(self._fn(ctypes.addressof(args)))

    @property
    def running(self) -> bool:
        return self.request(_RUNNING_ON_VALGRIND) > 0

    def measure(self, label: str, batch: Batch, n: int, warm: int | None = None) -> None:
        """Warm ``batch`` uninstrumented, then count the instructions of ``batch(n)``."""
        batch(warm or max(5, n // 10))
        self.request(_START)
        batch(2)  # the first instrumented calls after a translation flush, not counted
        self.request(_ZERO)
        batch(n)
        name = ctypes.create_string_buffer(label.encode())
        self.request(_DUMP_AT, ctypes.addressof(name))
        self.request(_STOP)


# -- the workloads (run in the child, under valgrind) ----------------------------------------------
def _flush() -> None:
    from orchnb.trace import get_store

    get_store().flush()


def _sync(call: Callable[[str], Any], texts: tuple[str, ...], flush: bool) -> Batch:
    def batch(n: int) -> None:
        for i in range(n):
            call(texts[i % len(texts)])
        if flush:
            _flush()

    return batch


def _async(call: Callable[[str], Any], texts: tuple[str, ...], flush: bool) -> Batch:
    loop = asyncio.new_event_loop()

    async def go(n: int) -> None:
        for i in range(n):
            await call(texts[i % len(texts)])

    def batch(n: int) -> None:
        loop.run_until_complete(go(n))
        if flush:
            _flush()

    return batch


def _steps_workloads(only: str | None = None) -> dict[str, tuple[Batch, int]]:
    """label → (batch, units per iteration): chain steps, router requests."""
    from . import _scenarios_steps as s

    s._sim_models()
    chain = s._orchnb_chain(True)
    hello, texts = ("hello",), s.TEXTS
    if only == "chain_async/orchnb":
        return {only: (_async(chain.arun, hello, True), s.STEPS)}
    router = s._orchnb_router(True)
    graph, agraph = s._graph_chain()
    rgraph, argraph = s._graph_router()
    return {
        "chain_sync/orchnb": (_sync(chain, hello, True), s.STEPS),
        "chain_sync/langgraph": (_sync(lambda x: graph.invoke({"x": x}), hello, False), s.STEPS),
        "chain_async/orchnb": (_async(chain.arun, hello, True), s.STEPS),
        "chain_async/langgraph": (_async(lambda x: agraph.ainvoke({"x": x}), hello, False),
                                  s.STEPS),
        "router_sync/orchnb": (_sync(router, texts, True), 1),
        "router_sync/langgraph": (_sync(lambda x: rgraph.invoke({"x": x}), texts, False), 1),
        "router_async/orchnb": (_async(router.arun, texts, True), 1),
        "router_async/langgraph": (_async(lambda x: argraph.ainvoke({"x": x}), texts, False),
                                   1),
    }


def _openai_workloads(base_url: str) -> dict[str, tuple[Batch, int]]:
    """n chat completions, bare SDK with a semaphore vs orchnb's MapReduce (one batch each)."""
    os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = base_url, "sk-fake"
    import openai

    import orchnb

    # Fewer connections than the timed scenario's 100: under valgrind, a hundred connects at
    # once outlast the SDK's connect timeout; the per-call work is the same.
    concurrency, timeout = 10, 600.0
    loop = asyncio.new_event_loop()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0,
                                timeout=timeout)
    sem = asyncio.Semaphore(concurrency)

    async def one(x: str) -> str:
        async with sem:
            r = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": x}])
            return r.choices[0].message.content or ""

    def bare(n: int) -> None:
        async def go() -> None:
            await asyncio.gather(*(one(f"item {i}") for i in range(n)))
        loop.run_until_complete(go())

    # Progress bars redraw on a clock (~10 times a second): under valgrind that is ~50× as
    # often per call as on a real CPU, so they are off here (and counted nowhere).
    orchnb.configure(progress=False)
    pipe = orchnb.MapReduce("cg_openai", map=orchnb.Step("work", "openai:gpt-4o-mini",
                                                         "{{ input }}"),
                            concurrency=concurrency, cache=False, timeout=timeout)

    def ours(n: int) -> None:
        loop.run_until_complete(pipe.arun([f"item {i}" for i in range(n)]))
        _flush()

    return {"openai/bare": (bare, 1), "openai/orchnb": (ours, 1)}


def _quiet_writer() -> None:
    """The span writer writes only at ``flush()`` and never compacts: its work per span is then
    the same in every run (under valgrind its 20 ms timer would fire ~50× as often per span as
    on a real CPU). Compaction is timed apart in the timing benchmarks too."""
    from orchnb.trace import get_store

    store = get_store()
    store.interval = store.quiet = 3600.0
    store.max_log = 1 << 40


def native_us_per_step(reps: int = 5, n: int = 200) -> float:
    """CPU µs per step of the async orchnb chain on this machine, natively (best of ``reps``):
    with its instruction count, the rate that turns instructions into µs-equivalents."""
    _quiet_writer()
    batch, units = _steps_workloads(only="chain_async/orchnb")["chain_async/orchnb"]
    batch(n // 5)
    best = float("inf")
    for _ in range(reps):
        t = time.process_time()
        batch(n)
        best = min(best, time.process_time() - t)
    return best * 1e6 / (n * units)


def _child(quick: bool, only: tuple[str, ...] = ()) -> None:
    from ._scenarios_fanout import _start_server

    vg = _Valgrind()
    if not vg.running:
        raise SystemExit("the child must run under valgrind --tool=callgrind")
    n = QUICK_RUNS if quick else FULL_RUNS
    _quiet_writer()
    for label, (batch, _) in _steps_workloads().items():
        if not only or label.startswith(only):
            vg.measure(label, batch, n)
    if only and not any(o.startswith("openai") for o in only):
        return
    proc, base_url = _start_server()
    try:
        for label, (batch, _) in _openai_workloads(base_url).items():
            vg.measure(label, batch, n, warm=n)  # every pooled connection open
    finally:
        proc.terminate()
        proc.wait(10)


# -- the parent: run the child, read the dumps, compare ------------------------------------------
def _units() -> dict[str, int]:
    from ._scenarios_steps import STEPS

    return {"chain": STEPS, "router": 1, "openai": 1}


def _read_dumps(prefix: Path) -> dict[str, int]:
    """label → instructions, from the numbered dump files callgrind wrote."""
    out: dict[str, int] = {}
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        text = path.read_text(errors="replace")
        label = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        total = re.search(r"^summary: (\d+)$", text, re.M)
        if label and total:
            out[label.group(1).strip()] = int(total.group(1))
    return out


def _child_env(tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "ORCHNB_"))}
    env["ORCHNB_HOME"] = str(Path(tmp) / "home")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def run(quick: bool, profile: Path | None = None, only: str = "") -> dict[str, Any]:
    """Run the workloads under callgrind; instructions per unit, ratios, µs-equivalents."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError("callgrind figures need valgrind on x86-64 (apt install valgrind)")
    n = QUICK_RUNS if quick else FULL_RUNS
    root = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="orchnb-cg-") as tmp:
        dest = Path(profile) if profile else Path(tmp)
        dest.mkdir(parents=True, exist_ok=True)
        prefix = dest / "cg.out"
        env = _child_env(tmp)
        native = subprocess.run([sys.executable, "-m", "benchmarks.callgrind", "--native"],
                                env=env, cwd=root, capture_output=True, text=True,
                                timeout=600, check=True)
        native_us = float(native.stdout.strip().splitlines()[-1])
        cmd = [valgrind, "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={prefix}", sys.executable, "-m", "benchmarks.callgrind",
               "--child", f"--only={only}"] + (["--quick"] if quick else [])
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True,
                              timeout=3600, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"callgrind child failed: {proc.stderr[-3000:]}")
        counts = _read_dumps(prefix)
        took = time.perf_counter() - t
    return summarize(counts, n, native_us, took)


def summarize(counts: dict[str, int], n: int, native_us: float, seconds: float
              ) -> dict[str, Any]:
    """Per-unit instruction counts and the ratios the quick run guards; µs-equivalents at the
    rate of the async chain (its instructions per step over its native CPU µs per step)."""
    units = _units()
    per = {label: instr / (n * units[label.split("_")[0].split("/")[0]])
           for label, instr in counts.items()}
    per_us = per.get("chain_async/orchnb", 0) / native_us or 1.0
    ratios: dict[str, float] = {}
    for scenario in ("chain_sync", "chain_async", "router_sync", "router_async"):
        ours, theirs = per.get(f"{scenario}/orchnb"), per.get(f"{scenario}/langgraph")
        if ours and theirs:
            ratios[f"{scenario}/orchnb_vs_langgraph"] = ours / theirs
    added = None
    if "openai/bare" in per and "openai/orchnb" in per:
        added = per["openai/orchnb"] - per["openai/bare"]
        ratios["openai/orchnb_vs_bare"] = per["openai/orchnb"] / per["openai/bare"]
    return {
        "runs": n, "seconds": round(seconds, 1), "python": platform.python_version(),
        "instructions_per_us": round(per_us),
        "per_unit": {k: round(v) for k, v in sorted(per.items())},
        "us_equivalent": {k: round(v / per_us, 2) for k, v in sorted(per.items())},
        "openai_added_per_call": None if added is None else {
            "instructions": round(added), "us_equivalent": round(added / per_us, 2)},
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
    }


def regressions(now: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """The ratios that grew by more than ``TOLERANCE`` over the committed ones."""
    out = []
    for key, was in committed.get("ratios", {}).items():
        got = now.get("ratios", {}).get(key)
        if got is not None and was and got > was * TOLERANCE:
            out.append(f"{key}: {got:.4f} > {was:.4f} × {TOLERANCE} (committed)")
    return out


def committed(quick: bool) -> dict[str, Any] | None:
    """The committed results of that mode (the quick ones fall back to the full ones)."""
    if not RESULTS.exists():
        return None
    data = json.loads(RESULTS.read_text())
    return data.get("quick" if quick else "full") or data.get("full")


def save(result: dict[str, Any], quick: bool, path: Path = RESULTS) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data["quick" if quick else "full"] = result
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def markdown(result: dict[str, Any]) -> str:
    """The README table: instructions per unit, orchnb vs LangGraph."""
    per, us = result["per_unit"], result["us_equivalent"]
    rows = ["| scenario | orchnb instr/unit | LangGraph instr/unit | ratio | orchnb µs-equiv |",
            "|---|---:|---:|---:|---:|"]
    for sc, unit in (("chain_sync", "step"), ("chain_async", "step"),
                     ("router_sync", "request"), ("router_async", "request")):
        r = result["ratios"].get(f"{sc}/orchnb_vs_langgraph")
        rows.append(f"| {sc} (per {unit}) | {per.get(sc + '/orchnb', 0):,} | "
                    f"{per.get(sc + '/langgraph', 0):,} | "
                    f"{'—' if r is None else f'{r:.3f}×'} | {us.get(sc + '/orchnb')} |")
    added = result.get("openai_added_per_call")
    if added:
        rows.append(f"| openai call, bare SDK / orchnb (per call) | "
                    f"{per['openai/orchnb']:,} | bare {per['openai/bare']:,} | "
                    f"{result['ratios']['openai/orchnb_vs_bare']:.3f}× | "
                    f"+{added['instructions']:,} instr = +{added['us_equivalent']} µs |")
    return "\n".join(rows) + "\n"


def scenarios(quick: bool) -> list[Any]:
    """The ``callgrind`` group of ``python -m benchmarks``: instructions per unit, and one
    target per guarded ratio (at most ``TOLERANCE`` × the committed one)."""
    from ._scenarios_common import Result, Scenario

    sc = Scenario("callgrind", "instructions (callgrind) per chain step / router request / "
                  "openai call, orchnb (traced, persisted) vs LangGraph and the bare SDK")
    try:
        result = run(quick)
    except RuntimeError as e:
        sc.skipped = str(e)[-500:]
        return [sc]
    for label, value in result["per_unit"].items():
        unit = "instr/step" if label.startswith("chain") else (
            "instr/request" if label.startswith("router") else "instr/call")
        extra = {"us_equivalent": result["us_equivalent"][label]}
        sc.add(Result.of(label, [float(value)], unit, **extra))
    was = committed(quick) or {}
    for key, got in result["ratios"].items():
        before = was.get("ratios", {}).get(key)
        if before:
            sc.target(f"{key} (instructions) ≤ {TOLERANCE:g} × committed", got,
                      round(before * TOLERANCE, 4), "×")
    sc.notes.append(f"{result['runs']} runs a workload; µs-equivalents at "
                    f"{result['instructions_per_us']:,} instructions/µs; orchnb adds "
                    f"{result['openai_added_per_call']} per openai call; regressions: "
                    f"{regressions(result, was) or 'none'}")
    sc.seconds = result["seconds"]
    return [sc]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_RUNS} runs a workload, not {FULL_RUNS}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", type=Path, help="keep the callgrind dumps in this folder")
    parser.add_argument("--only", default="",
                        help="comma-separated label prefixes (e.g. chain_sync,openai); "
                             "a partial run is printed, not saved")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--native", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.native:
        print(native_us_per_step())
        return 0
    if args.child:
        _child(args.quick, tuple(o for o in args.only.split(",") if o))
        return 0
    result = run(args.quick, args.profile, args.only)
    print(json.dumps(result, indent=1))
    if not args.only:
        print(markdown(result))
        save(result, args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
