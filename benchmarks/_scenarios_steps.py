"""Orchestration overhead: a 5-step chain and a two-route router around an instant fake model.

Every contender calls the same fake model: a function that answers at once with its prompt
(``fake``/``afake``). LangChain gets a ``RunnableLambda`` chain (with ``afunc`` so ``ainvoke``
does not go through a thread pool), LangGraph a ``StateGraph``, orchnb a ``Chain``/``Router`` of
``Step``s on a ``SimModel(fn=...)`` with ``{{ input }}`` prompts. orchnb always traces (spans in
memory); "persisted" also writes every span to the SQLite store: its batches include the final
flush (every span durable on disk), and the writer's later move of logged spans into the indexed
table is timed apart and reported per span. The response cache is off throughout.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, TypedDict

from ._scenarios_common import Batch, Result, Scenario, clock, interleave

STEPS = 5
ROUTES = ("billing", "technical")
TEXTS = ("I want a refund for my order", "the app crashes when I log in")


def fake(prompt: str) -> str:
    """The instant fake model every contender calls."""
    return prompt


async def afake(prompt: str) -> str:
    return prompt


def classify(text: str) -> str:
    """The fake classifier: its answer is a route label."""
    return "billing" if "refund" in text else "technical"


async def aclassify(text: str) -> str:
    return classify(text)


# -- plain Python (the floor) ---------------------------------------------------------------------
def _python_chain(n: int) -> float:
    steps = [fake] * STEPS
    t = clock()
    for _ in range(n):
        x = "hello"
        for f in steps:
            x = f(x)
    return clock() - t


async def _apython_chain(n: int) -> float:
    steps = [afake] * STEPS
    t = clock()
    for _ in range(n):
        x = "hello"
        for f in steps:
            x = await f(x)
    return clock() - t


def _python_router(n: int) -> float:
    routes = {"billing": fake, "technical": fake}
    texts = itertools.cycle(TEXTS)
    t = clock()
    for _ in range(n):
        x = next(texts)
        routes[classify(x)](x)
    return clock() - t


async def _apython_router(n: int) -> float:
    routes = {"billing": afake, "technical": afake}
    texts = itertools.cycle(TEXTS)
    t = clock()
    for _ in range(n):
        x = next(texts)
        await routes[await aclassify(x)](x)
    return clock() - t


# -- LangChain LCEL -------------------------------------------------------------------------------
def _lcel_chain() -> Any:
    from langchain_core.runnables import RunnableLambda

    chain = RunnableLambda(fake, afunc=afake)
    for _ in range(STEPS - 1):
        chain = chain | RunnableLambda(fake, afunc=afake)
    return chain


def _lcel_router() -> Any:
    # LangChain's documented routing idiom: a function that returns the runnable to run next.
    from langchain_core.runnables import RunnableLambda

    routes = {r: RunnableLambda(fake, afunc=afake) for r in ROUTES}

    def pick(d: dict[str, str]) -> Any:
        return routes[d["route"]]

    def label(x: str) -> dict[str, str]:
        return {"route": classify(x), "x": x}

    async def alabel(x: str) -> dict[str, str]:
        return {"route": await aclassify(x), "x": x}

    return RunnableLambda(label, afunc=alabel) | RunnableLambda(pick)


# -- LangGraph ------------------------------------------------------------------------------------
class _ChainState(TypedDict):
    x: str


class _RouterState(TypedDict):
    x: str
    route: str
    out: str


def _graph_chain(checkpointer: bool = False) -> Any:
    from langgraph.graph import END, START, StateGraph

    def node(state: _ChainState) -> dict[str, str]:
        return {"x": fake(state["x"])}

    async def anode(state: _ChainState) -> dict[str, str]:
        return {"x": await afake(state["x"])}

    graphs = []
    for fn in (node, anode):
        g = StateGraph(_ChainState)
        prev = START
        for i in range(STEPS):
            g.add_node(f"s{i}", fn)
            g.add_edge(prev, f"s{i}")
            prev = f"s{i}"
        g.add_edge(prev, END)
        if checkpointer:
            from langgraph.checkpoint.memory import InMemorySaver

            graphs.append(g.compile(checkpointer=InMemorySaver()))
        else:
            graphs.append(g.compile())
    return graphs


def _graph_router() -> Any:
    from langgraph.graph import END, START, StateGraph

    def route_of(state: _RouterState) -> str:
        return state["route"]

    graphs = []
    for is_async in (False, True):
        g = StateGraph(_RouterState)
        if is_async:
            async def cls(state: _RouterState) -> dict[str, str]:
                return {"route": await aclassify(state["x"])}

            async def handle(state: _RouterState) -> dict[str, str]:
                return {"out": await afake(state["x"])}
        else:
            def cls(state: _RouterState) -> dict[str, str]:
                return {"route": classify(state["x"])}

            def handle(state: _RouterState) -> dict[str, str]:
                return {"out": fake(state["x"])}
        g.add_node("classify", cls)
        for r in ROUTES:
            g.add_node(r, handle)
            g.add_edge(r, END)
        g.add_edge(START, "classify")
        g.add_conditional_edges("classify", route_of, {r: r for r in ROUTES})
        graphs.append(g.compile())
    return graphs


# -- orchnb ---------------------------------------------------------------------------------------
def _sim_models() -> None:
    from orchnb import SimModel

    SimModel("bench_echo", fn=lambda request: request.messages[-1].content).register()
    SimModel("bench_classify", fn=lambda request: classify(request.messages[-1].content)
             ).register()


def _orchnb_chain(persist: bool) -> Any:
    import orchnb

    return orchnb.Chain(f"chain5_{'p' if persist else 'np'}", [
        orchnb.Step(f"s{i}", "sim:bench_echo", "{{ input }}") for i in range(STEPS)
    ], cache=False, persist=persist)  # fmt: skip


def _orchnb_router(persist: bool) -> Any:
    import orchnb

    return orchnb.Router(
        f"router_{'p' if persist else 'np'}",
        classifier=orchnb.Step("classify", "sim:bench_classify", "{{ input }}"),
        routes={r: orchnb.Step(r, "sim:bench_echo", "{{ input }}") for r in ROUTES},
        cache=False, persist=persist)  # fmt: skip


class _Tail:
    """The span writer's work for one persisted contender: the flush is timed with the batch
    (spans durable on disk); moving the logged spans into the indexed table happens after the
    timing stops and is reported per span (``index_us_per_span``)."""

    def __init__(self, pipe: Any):
        self.pipe, self.seconds, self.spans = pipe, 0.0, 0

    def flush(self) -> None:
        from orchnb.trace import get_store

        get_store().flush()

    def settle(self, n: int) -> None:
        from orchnb.trace import get_store

        compact = getattr(get_store(), "compact", None)
        if compact is None:  # a store without a log writes its rows in flush()
            return
        t = clock()
        compact()
        self.seconds += clock() - t
        run = self.pipe.last_run
        self.spans += n * (len(run.trace) if run is not None else 0)

    @property
    def us_per_span(self) -> float | None:
        return self.seconds / self.spans * 1e6 if self.spans else None


def _sync_batch(call: Any, tail: _Tail | None, texts: tuple[str, ...] = ("hello",)) -> Batch:
    def batch(n: int) -> float:
        it = itertools.cycle(texts)
        t = clock()
        for _ in range(n):
            call(next(it))
        if tail is not None:
            tail.flush()
        took = clock() - t
        if tail is not None:
            tail.settle(n)
        return took

    return batch


def _async_batch(loop: asyncio.AbstractEventLoop, call: Any, tail: _Tail | None,
                 texts: tuple[str, ...] = ("hello",)) -> Batch:
    async def go(n: int) -> float:
        it = itertools.cycle(texts)
        t = clock()
        for _ in range(n):
            await call(next(it))
        if tail is not None:
            tail.flush()
        took = clock() - t
        if tail is not None:
            tail.settle(n)
        return took

    return lambda n: loop.run_until_complete(go(n))


_PERSIST_NOTE = (
    "orchnb: response cache off; 'persisted' writes every span to SQLite and each batch "
    "includes the final flush (spans durable on disk); index_us_per_span is the writer's later "
    "work moving logged spans into the indexed table, done when runs go quiet (not timed)")
_ids = itertools.count()


def _thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"t{next(_ids)}"}}


def chain(quick: bool) -> list[Scenario]:
    """Per-step orchestration overhead of a 5-step chain, sync and async."""
    import orchnb  # noqa: F401  (imports are not what this measures)

    _sim_models()
    lcel = _lcel_chain()
    graph, agraph = _graph_chain()
    cgraph, acgraph = _graph_chain(checkpointer=True)
    persisted, transient = _orchnb_chain(True), _orchnb_chain(False)
    reps = 3 if quick else 9
    scale = 0.2 if quick else 1.0
    counts = {"python": 20000, "langchain LCEL": 300, "langgraph": 200,
              "langgraph + InMemorySaver": 100, "orchnb (traced, persisted)": 400,
              "orchnb (traced, not persisted)": 400}
    counts = {k: max(10, int(v * scale)) for k, v in counts.items()}

    tails = {"sync": _Tail(persisted), "async": _Tail(persisted)}
    sync: dict[str, Batch] = {
        "python": _python_chain,
        "langchain LCEL": _sync_batch(lcel.invoke, None),
        "langgraph": _sync_batch(lambda x: graph.invoke({"x": x}), None),
        "langgraph + InMemorySaver": _sync_batch(
            lambda x: cgraph.invoke({"x": x}, _thread()), None),
        "orchnb (traced, persisted)": _sync_batch(persisted, tails["sync"]),
        "orchnb (traced, not persisted)": _sync_batch(transient, None),
    }
    loop = asyncio.new_event_loop()
    try:
        asyn: dict[str, Batch] = {
            "python": lambda n: loop.run_until_complete(_apython_chain(n)),
            "langchain LCEL": _async_batch(loop, lcel.ainvoke, None),
            "langgraph": _async_batch(loop, lambda x: agraph.ainvoke({"x": x}), None),
            "langgraph + InMemorySaver": _async_batch(
                loop, lambda x: acgraph.ainvoke({"x": x}, _thread()), None),
            "orchnb (traced, persisted)": _async_batch(loop, persisted.arun, tails["async"]),
            "orchnb (traced, not persisted)": _async_batch(loop, transient.arun, None),
        }
        out = []
        for mode, contenders in (("sync", sync), ("async", asyn)):
            samples = interleave(contenders, reps=reps, n=counts, per=STEPS)
            sc = Scenario(f"chain_{mode}", f"5-step chain, instant fake model, {mode}: "
                          "µs per step", floor="python")
            for name, s in samples.items():
                extra = {}
                if name == "orchnb (traced, persisted)" and tails[mode].us_per_span:
                    extra["index_us_per_span"] = round(tails[mode].us_per_span, 2)
                sc.add(Result.of(name, [x * 1e6 for x in s], "µs/step", **extra))
            sc.notes.append(_PERSIST_NOTE)
            _versus_langgraph(sc, targets=True)
            out.append(sc.finish())
        return out
    finally:
        loop.close()


def _versus_langgraph(sc: Scenario, targets: bool) -> None:
    """Each contender's median over LangGraph's (``vs_langgraph``); the targets on orchnb's."""
    theirs = sc.get("langgraph")
    if theirs is None or not theirs.value:
        return
    for r in sc.results:
        if r.value is not None and r is not theirs:
            r.extra["vs_langgraph"] = round(r.value / theirs.value, 4)
    for r in sc.results:  # the chain's contenders and the router's ("orchnb Router (...)")
        if targets and r.contender.startswith("orchnb") and r.value:
            unit = "per-step" if sc.name.startswith("chain") else "per-request"
            sc.target(f"{r.contender} {unit} overhead / LangGraph's", r.value / theirs.value,
                      0.10, "×")


def router(quick: bool) -> list[Scenario]:
    """Per-request overhead of a classifier + two routes, sync and async."""
    import orchnb

    if "Router" not in dir(orchnb):
        return [Scenario(f"router_{m}", f"router, {m}", skipped="orchnb.Router does not exist")
                for m in ("sync", "async")]
    try:
        persisted, transient = _orchnb_router(True), _orchnb_router(False)
    except (ImportError, AttributeError) as e:
        return [Scenario(f"router_{m}", f"router, {m}", skipped=f"orchnb.Router: {e}")
                for m in ("sync", "async")]
    _sim_models()
    lcel = _lcel_router()
    graph, agraph = _graph_router()
    reps = 3 if quick else 9
    scale = 0.2 if quick else 1.0
    counts = {"python": 20000, "langchain LCEL": 300, "langgraph": 200,
              "orchnb Router (traced, persisted)": 400,
              "orchnb Router (traced, not persisted)": 400}
    counts = {k: max(10, int(v * scale)) for k, v in counts.items()}
    tails = {"sync": _Tail(persisted), "async": _Tail(persisted)}
    sync: dict[str, Batch] = {
        "python": _python_router,
        "langchain LCEL": _sync_batch(lcel.invoke, None, TEXTS),
        "langgraph": _sync_batch(lambda x: graph.invoke({"x": x}), None, TEXTS),
        "orchnb Router (traced, persisted)": _sync_batch(persisted, tails["sync"], TEXTS),
        "orchnb Router (traced, not persisted)": _sync_batch(transient, None, TEXTS),
    }
    loop = asyncio.new_event_loop()
    try:
        asyn: dict[str, Batch] = {
            "python": lambda n: loop.run_until_complete(_apython_router(n)),
            "langchain LCEL": _async_batch(loop, lcel.ainvoke, None, TEXTS),
            "langgraph": _async_batch(loop, lambda x: agraph.ainvoke({"x": x}), None, TEXTS),
            "orchnb Router (traced, persisted)": _async_batch(
                loop, persisted.arun, tails["async"], TEXTS),
            "orchnb Router (traced, not persisted)": _async_batch(
                loop, transient.arun, None, TEXTS),
        }
        out = []
        for mode, contenders in (("sync", sync), ("async", asyn)):
            samples = interleave(contenders, reps=reps, n=counts)
            sc = Scenario(f"router_{mode}", f"router (classifier + 2 routes), {mode}: "
                          "µs per request", floor="python")
            for name, s in samples.items():
                extra = {}
                if name == "orchnb Router (traced, persisted)" and tails[mode].us_per_span:
                    extra["index_us_per_span"] = round(tails[mode].us_per_span, 2)
                sc.add(Result.of(name, [x * 1e6 for x in s], "µs/request", **extra))
            sc.notes.append("the classifier and the route each make one fake-model call; "
                            + _PERSIST_NOTE)
            _versus_langgraph(sc, targets=True)
            out.append(sc.finish())
        return out
    finally:
        loop.close()

