"""Fan-out: many items through a slow fake model at bounded concurrency, and real SDK calls.

``fanout``: every item sleeps 20 ms (the fake model's latency) at concurrency 100. The floor is
``asyncio.gather`` over a semaphore; LangGraph maps with ``Send``, LangChain with ``abatch``,
orchnb with ``MapReduce`` on a ``SimModel(latency=0.02)``. Ideal wall: items / 100 × 20 ms.

``openai_fanout``: 1,000 chat completions through the real ``openai`` SDK against orchnb's
loopback server, run in its own process (20 ms per answer). The floor is a bare
``AsyncOpenAI`` client with a semaphore; orchnb runs a ``MapReduce`` over an ``openai:`` step.

orchnb runs with its defaults (spans traced and persisted) and the cache off. Walls stop when
the result is back; the span writer's remaining work is flushed outside the timing and
reported as ``flush_ms``.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import os
import subprocess
import sys
import time
from typing import Annotated, Any, TypedDict

from ._scenarios_common import Result, Scenario, clock

LATENCY = 0.02
CONCURRENCY = 100


async def _slow(item: str) -> str:
    await asyncio.sleep(LATENCY)
    return item


def _slow_sync(item: str) -> str:  # never called: abatch uses the async function
    time.sleep(LATENCY)
    return item


# -- contenders -----------------------------------------------------------------------------------
async def _floor(items: list[str]) -> list[str]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(x: str) -> str:
        async with sem:
            return await _slow(x)

    return await asyncio.gather(*(one(x) for x in items))


class _FanState(TypedDict):
    items: list[str]
    results: Annotated[list[str], operator.add]


def _graph() -> Any:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    async def work(state: dict[str, str]) -> dict[str, list[str]]:
        return {"results": [await _slow(state["item"])]}

    def fan(state: _FanState) -> list:  # type: ignore[type-arg]  (LangGraph evaluates hints)
        return [Send("work", {"item": x}) for x in state["items"]]

    g = StateGraph(_FanState)
    g.add_node("work", work)
    g.add_conditional_edges(START, fan, ["work"])
    g.add_edge("work", END)
    graph = g.compile()

    async def run(items: list[str]) -> list[str]:
        out = await graph.ainvoke({"items": items, "results": []},
                                  config={"max_concurrency": CONCURRENCY})
        return out["results"]

    return run


def _lcel() -> Any:
    from langchain_core.runnables import RunnableLambda

    runnable = RunnableLambda(_slow_sync, afunc=_slow)

    async def run(items: list[str]) -> list[str]:
        return await runnable.abatch(items, config={"max_concurrency": CONCURRENCY})

    return run


def _orchnb(map_step: Any, name: str) -> tuple[Any, str]:
    """A MapReduce over ``map_step`` (or ``ctx.gather`` in a minimal Pipeline without it)."""
    import orchnb

    try:
        pipe = orchnb.MapReduce(name, map=map_step, concurrency=CONCURRENCY, cache=False)
        label = "orchnb MapReduce"
    except (AttributeError, ImportError):
        pipe, label = _gather_pipeline(map_step, name), "orchnb Pipeline + ctx.gather"

    async def run(items: list[str]) -> list[str]:
        return (await pipe.arun(items)).output

    return run, label


def _gather_pipeline(map_step: Any, name: str) -> Any:
    import orchnb

    class Fan(orchnb.Pipeline):
        pattern = "mapreduce"

        async def _run(self, ctx: Any, input: Any, vars: Any) -> Any:
            return await ctx.gather([lambda x=x: map_step.invoke(ctx, x, vars) for x in input],
                                    concurrency=CONCURRENCY)

    return Fan(name, cache=False)


def _flush_ms() -> float:
    """The span writer's work left when a run returns: flush, then move the logged spans into
    the indexed table (the writer does this itself once runs go quiet)."""
    from orchnb.trace import get_store

    store = get_store()
    t = clock()
    store.flush()
    compact = getattr(store, "compact", None)
    if compact is not None:
        compact()
    return (clock() - t) * 1000


async def _measure(contenders: dict[str, Any], items: list[str], reps: int
                   ) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Rotating order; per contender: walls (ms), client CPU (ms), orchnb flush tails (ms)."""
    names = list(contenders)
    out: dict[str, tuple[list[float], list[float], list[float]]] = {
        n: ([], [], []) for n in names}
    for name in names:  # warm-up: imports, pricing tables, connection pools
        await contenders[name](items[: max(CONCURRENCY, len(items) // 10)])
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            gc.collect()
            cpu, t = time.process_time(), clock()
            result = await contenders[name](items)
            wall = (clock() - t) * 1000
            cpu = (time.process_time() - cpu) * 1000
            assert len(result) == len(items), (name, len(result))
            out[name][0].append(wall)
            out[name][1].append(cpu)
            out[name][2].append(_flush_ms() if name.startswith("orchnb") else 0.0)
            await asyncio.sleep(0.05)  # let stragglers (closed connections, writer) settle
    return out


def _results(sc: Scenario, data: dict[str, tuple[list[float], list[float], list[float]]],
             n: int) -> None:
    import statistics

    for name, (walls, cpus, flushes) in data.items():
        extra: dict[str, Any] = {"cpu_ms": statistics.median(cpus),
                                 "per_item_us": statistics.median(walls) * 1000 / n}
        if name.startswith("orchnb"):
            extra["flush_ms"] = statistics.median(flushes)
        sc.add(Result.of(name, walls, "ms", **extra))


def fanout(quick: bool) -> list[Scenario]:
    """1,000 (full mode: also 2k, 4k, 8k) items × 20 ms at concurrency 100."""
    import orchnb

    orchnb.SimModel("bench_slow", fn=lambda r: r.messages[-1].content, latency=LATENCY).register()
    step = orchnb.Step("work", "sim:bench_slow", "{{ input }}")
    ours, label = _orchnb(step, "fanout")
    contenders = {"asyncio + semaphore": _floor, "langchain abatch": _lcel(),
                  "langgraph Send": _graph(), label: ours}
    sizes = [1000] if quick else [1000, 2000, 4000, 8000]
    out = []
    loop = asyncio.new_event_loop()
    try:
        for n in sizes:
            items = [f"item {i}" for i in range(n)]
            reps = 3 if quick else (7 if n == 1000 else 3)
            t = clock()
            data = loop.run_until_complete(_measure(contenders, items, reps))
            sc = Scenario(f"fanout_{n}", f"fan-out of {n:,} items × 20 ms, concurrency 100: "
                          f"wall ms (ideal {n / CONCURRENCY * LATENCY * 1000:.0f})",
                          floor="asyncio + semaphore")
            _results(sc, data, n)
            sc.notes.append("orchnb: traced and persisted, cache off; flush_ms is the span "
                            "writer's remaining work after the result is back (flush + "
                            "indexing the logged spans; not in the wall)")
            sc.seconds = clock() - t
            sc.finish()
            mine = sc.get(label)
            if mine is not None:
                sc.target(f"{label} wall / floor", mine.ratio, 1.10, "×")
            out.append(sc)
    finally:
        loop.close()
    return out


# -- the real SDK against the loopback server -----------------------------------------------------
def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchnb.testing.fake_server", "--port", "0", "--latency",
         str(LATENCY)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"the fake server did not print its port (got {line!r})")
    return proc, f"http://127.0.0.1:{int(line)}/v1"


def openai_fanout(quick: bool) -> list[Scenario]:
    """1,000 chat completions through the openai SDK: bare client vs orchnb's provider."""
    proc, base_url = _start_server()
    os.environ["OPENAI_BASE_URL"] = base_url
    os.environ["OPENAI_API_KEY"] = "sk-fake"
    n, reps = (300, 2) if quick else (1000, 5)
    loop = asyncio.new_event_loop()
    try:
        import openai

        import orchnb

        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)

        async def floor(items: list[str]) -> list[str]:
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(x: str) -> str:
                async with sem:
                    r = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": x}])
                    return r.choices[0].message.content or ""

            return await asyncio.gather(*(one(x) for x in items))

        step = orchnb.Step("work", "openai:gpt-4o-mini", "{{ input }}")
        ours, label = _orchnb(step, "openai_fanout")
        items = [f"item {i}" for i in range(n)]
        t = clock()
        data = loop.run_until_complete(
            _measure({"AsyncOpenAI + semaphore": floor, label: ours}, items, reps))
        sc = Scenario("openai_fanout", f"{n:,} chat completions through the openai SDK, "
                      "loopback server (own process, 20 ms), concurrency 100: wall ms",
                      floor="AsyncOpenAI + semaphore")
        _results(sc, data, n)
        sc.notes += [f"openai {openai.__version__}; the server runs in its own process",
                     "orchnb: openai: provider through a pipeline, traced and persisted, "
                     "cache off"]
        sc.seconds = clock() - t
        sc.finish()
        mine = sc.get(label)
        if mine is not None:
            sc.target(f"{label} (openai:) wall / floor", mine.ratio, 1.05, "×")  # issue 23
        loop.run_until_complete(client.close())
        return [sc]
    finally:
        loop.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
