"""A map-reduce inside a live Jupyter kernel, the setting users are in.

``kernel_fanout``: 1,000 chat completions through the real ``openai`` SDK against orchnb's
loopback server (its own process, 20 ms an answer), run from cells of a real ipykernel started
with ``jupyter_client``. The floor is what a user writes with the bare SDK in a notebook: an
``AsyncOpenAI`` client and a semaphore, awaited at the top level of the cell. orchnb's cell is
``pipe(items)``, a synchronous call like a user's (after ``%load_ext orchnb``): the run goes on
the engine's loop thread while the cell waits. Both time themselves inside the kernel; cells
run in rotating order. orchnb traces and persists (cache off); the span writer's remaining
work is flushed after the timing and reported as ``flush_ms``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from ._scenarios_common import Result, Scenario, clock
from ._scenarios_fanout import CONCURRENCY, _start_server

FLOOR = "AsyncOpenAI + semaphore (top-level await)"
OURS = "orchnb MapReduce, pipe(items) (sync cell)"

_SETUP = """
import asyncio, gc, json, time
import openai
%load_ext orchnb
import orchnb
from orchnb.trace import get_store

_client = openai.AsyncOpenAI(base_url={base_url!r}, api_key="sk-fake", max_retries=0)

async def floor(items):
    sem = asyncio.Semaphore({concurrency})

    async def one(x):
        async with sem:
            r = await _client.chat.completions.create(
                model="gpt-4o-mini", messages=[{{"role": "user", "content": x}}])
            return r.choices[0].message.content or ""

    return await asyncio.gather(*(one(x) for x in items))

pipe = orchnb.MapReduce("kernel_fanout", map=orchnb.Step("work", "openai:gpt-4o-mini",
                        "{{{{ input }}}}"), concurrency={concurrency}, cache=False)
items = [f"item {{i}}" for i in range({n})]
warm = items[:max({concurrency}, len(items) // 10)]

def report(wall, cpu, out, flush=0.0):
    assert len(out) == len(items), len(out)
    print("RESULT " + json.dumps({{"wall_ms": wall * 1000, "cpu_ms": cpu * 1000,
                                   "flush_ms": flush * 1000}}))

def flush():
    t = time.perf_counter()
    store = get_store()
    store.flush()
    store.compact()
    return time.perf_counter() - t
"""

_WARM = """
_ = await floor(warm)
_ = pipe(warm).output
flush()
"""

_FLOOR_CELL = """
gc.collect()
_cpu, _t = time.process_time(), time.perf_counter()
_out = await floor(items)
_wall, _cpu = time.perf_counter() - _t, time.process_time() - _cpu
report(_wall, _cpu, _out)
"""

_OURS_CELL = """
gc.collect()
_cpu, _t = time.process_time(), time.perf_counter()
_out = pipe(items).output
_wall, _cpu = time.perf_counter() - _t, time.process_time() - _cpu
report(_wall, _cpu, _out, flush())
"""


class _Kernel:
    """A real ipykernel (this interpreter's) and a blocking client to run cells in it."""

    def __init__(self, env: dict[str, str], cwd: str):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f",
                              "{connection_file}"]
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code: str, timeout: float = 300) -> list[str]:
        """Execute a cell; its stdout lines (raises on an error in the cell)."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content.get("traceback", [])) or content.get("evalue"))

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout,
                                            allow_stdin=False)
        if errors or reply["content"].get("status") != "ok":
            raise RuntimeError(f"cell failed in the kernel: {' '.join(errors)[-2000:]}")
        return "".join(out).splitlines()

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)


def _result(lines: list[str]) -> dict[str, float]:
    for line in lines:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"the cell printed no result: {lines[-5:]}")


def kernel(quick: bool) -> list[Scenario]:
    """A map-reduce of 1,000 openai: calls from a live kernel's cells vs the bare SDK there."""
    n, reps = (300, 3) if quick else (1000, 7)
    root = str(Path(__file__).resolve().parent.parent)
    proc, base_url = _start_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-fake",
               PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])))
    t = clock()
    k = None
    try:
        k = _Kernel(env, root)
        k.run(_SETUP.format(base_url=base_url, concurrency=CONCURRENCY, n=n))
        k.run(_WARM)
        cells = {FLOOR: _FLOOR_CELL, OURS: _OURS_CELL}
        names = list(cells)
        got: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for rep in range(reps):
            i = rep % len(names)
            for name in names[i:] + names[:i]:
                got[name].append(_result(k.run(cells[name])))
                k.run("await asyncio.sleep(0.05)")  # let stragglers settle, as elsewhere
        versions = k.run("import ipykernel, jupyter_client\n"
                         "print(ipykernel.__version__, jupyter_client.__version__)")
    finally:
        if k is not None:
            k.close()
        proc.terminate()
        proc.wait(10)
    sc = Scenario("kernel_fanout", f"{n:,} chat completions (openai SDK, loopback server, 20 ms, "
                  "concurrency 100) from a live Jupyter kernel's cells: wall ms", floor=FLOOR)
    for name in names:
        rows = got[name]
        extra: dict[str, Any] = {"cpu_ms": statistics.median(r["cpu_ms"] for r in rows),
                                 "per_item_us": statistics.median(r["wall_ms"] for r in rows)
                                 * 1000 / n}
        if name == OURS:
            extra["flush_ms"] = statistics.median(r["flush_ms"] for r in rows)
        sc.add(Result.of(name, [r["wall_ms"] for r in rows], "ms", **extra))
    ipk, jc = [*(versions[-1].split() if versions else []), "?", "?"][:2]
    sc.notes += [f"ipykernel {ipk}, jupyter_client {jc}; the kernel is this interpreter's, "
                 "the server runs in its own process",
                 "the floor's cell awaits at the top level (the kernel's own loop); orchnb's "
                 "cell calls pipe(items) synchronously after %load_ext orchnb (the run goes on "
                 "orchnb's engine loop thread); traced and persisted, cache off; client CPU is "
                 "the kernel process's, both threads"]
    sc.seconds = clock() - t
    sc.finish()
    mine = sc.get(OURS)
    if mine is not None:
        sc.target("orchnb pipe(items) in a kernel, wall / floor", mine.ratio, 1.05, "×")  # issue 23
    return [sc]
