"""Hypothesis strategies for scenarios: random pipelines (every pattern, nested up to depth 3,
concurrency 1–50), fault schedules, budgets and retry policies."""

from __future__ import annotations

from _world import FAKE_FAULTS, SIM_FAULTS, Node, Scenario
from hypothesis import strategies as st

SIM_PATTERNS = ("chain", "router", "mapreduce", "agent", "plan", "team")
FAKE_PATTERNS = ("chain", "router", "mapreduce")
"""FakeProvider answers are plain text: patterns that need a plan, a label or a tool call from
the model run on sim models (the router falls back to its default route)."""
_CHILDREN = {"chain": (1, 3), "router": (1, 3), "mapreduce": (1, 1), "agent": (0, 0),
             "plan": (1, 1), "team": (1, 2)}


@st.composite
def nodes(draw: st.DrawFn, world: str, depth: int = 1) -> Node:
    """A pipeline tree; ``depth`` counts patterns from the root (at most 3 nested)."""
    patterns = SIM_PATTERNS if world == "sim" else FAKE_PATTERNS
    # The root is a pattern, a fan-out twice as often as any other (where most can go wrong).
    choices = ("mapreduce", *patterns) if depth == 1 else ("step", *patterns)
    kind = draw(st.sampled_from(choices)) if depth <= 3 else "step"
    if kind == "step":
        return Node("step", stream=draw(st.booleans()))
    low, high = _CHILDREN[kind]
    kids = tuple(draw(nodes(world, depth + 1)) for _ in range(draw(st.integers(low, high))))
    return Node(
        kind, kids,
        # Mostly fewer slots than items: where waits, slots and reservations contend.
        concurrency=draw(st.integers(1, 4) | st.integers(1, 50)),
        on_error=draw(st.sampled_from(("fail", "skip"))),
        retries=draw(st.integers(0, 1)),
        loops=draw(st.integers(1, 3 if depth == 1 else 2)),
        default_route=draw(st.booleans()),
        reduce=draw(st.booleans()),
    )


def _rates(kinds: tuple[str, ...]) -> st.SearchStrategy[tuple[tuple[str, float], ...]]:
    """Fault rates per kind: most scenarios have a few kinds at low to harsh rates."""
    rate = st.sampled_from((0.0, 0.0, 0.0, 0.05, 0.2, 0.5))
    return st.tuples(*(rate for _ in kinds)).map(
        lambda rs: tuple((k, r / max(1.0, sum(rs) * (1 + 1e-9))) for k, r in zip(kinds, rs)
                          if r > 0))


@st.composite
def budgets(draw: st.DrawFn) -> dict[str, object]:
    """One cap (sometimes two): a zero in one cap would end most runs before they begin."""
    caps = {
        "max_calls": st.integers(0, 8),
        "max_tokens": st.sampled_from((0, 20, 60, 150, 400)),
        "max_usd": st.sampled_from((0.0, 1e-6, 5e-6, 2e-5)),
    }
    kinds = draw(st.lists(st.sampled_from(("max_calls", "max_calls", "max_tokens", "max_usd")),
                          min_size=1, max_size=2, unique=True))
    return {k: draw(caps[k]) for k in kinds}


@st.composite
def scenarios(draw: st.DrawFn, world: str = "sim") -> Scenario:
    """One scenario of ``world`` (``sim`` or ``fake``)."""
    budget = draw(budgets()) if draw(st.integers(0, 4)) else {}
    faults = draw(_rates(SIM_FAULTS if world == "sim"
                         else (*FAKE_FAULTS, "bad_text", "bad_utf8")))
    if world == "sim":
        timing = {"latency": draw(st.sampled_from((0.0, 0.0, 0.001, 0.005))),
                  "hang": draw(st.sampled_from((0.03, 0.1, 0.3))),
                  "timeout": draw(st.sampled_from((None, 0.01, 0.03, 0.1)))}
    else:
        timing = {"hang": draw(st.sampled_from((0.1, 0.3))),
                  "timeout": draw(st.sampled_from((0.05, 0.2, 1.0)))}
    return Scenario(
        root=draw(nodes(world)),
        world=world,
        seed=draw(st.integers(0, 2**31)),
        items=draw(st.integers(1, 6)),
        faults=faults,
        retry_after=draw(st.sampled_from((0.0, 0.005, 0.03))),
        max_attempts=draw(st.integers(1, 4)),
        backoff=draw(st.sampled_from((0.001, 0.01, 0.0))),
        max_retry_after=draw(st.sampled_from((0.02, 1.0))),
        usage_less=world == "fake" and draw(st.booleans()),
        mode=draw(st.sampled_from(("background", "call"))),
        **timing, **budget,
    )
