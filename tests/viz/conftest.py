"""Realistic synthetic traces for the chart tests, built from ``Span`` objects.

Runs: a chain (with an unpriced model), ten router runs (three routes), a map-reduce with 50
overlapping map calls, an agent with iterations, a failed tool call and retries.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchnb.trace import COLUMNS, Span, spans_to_frame

T0 = 1_700_000_000.0
PRICES = {  # USD per token (input, output); None = unpriced
    "openai:gpt-4o-mini": (0.15e-6, 0.6e-6),
    "openai:gpt-4o": (2.5e-6, 10e-6),
    "anthropic:claude-3-5-haiku": (0.8e-6, 4e-6),
    "openai:ft-custom": None,
}


def frame(spans: list[Span]) -> pd.DataFrame:
    """Spans → the trace DataFrame, through the real converter."""
    return spans_to_frame(spans)


class Builder:
    """Appends spans of one run; ``t`` is seconds since T0."""

    _ids = itertools.count(1)

    def __init__(self, run_id: str, pipeline: str, t: float = 0.0):
        self.run_id, self.pipeline, self.spans = run_id, pipeline, []
        self.root = self.span(None, "run", pipeline, pipeline, t, t)

    def span(self, parent: Span | None, kind: str, pattern: str, step: str, t0: float,
             t1: float, **kw: Any) -> Span:
        s = Span(
            run_id=self.run_id, span_id=f"s{next(self._ids)}",
            parent_id=parent.span_id if parent else None, pipeline=self.pipeline,
            pattern=pattern, step=step, kind=kind,  # type: ignore[arg-type]
            status=kw.pop("status", "ok"), start=T0 + t0, end=T0 + t1,
            latency_ms=(t1 - t0) * 1000, **kw,
        )
        self.spans.append(s)
        return s

    def model(self, parent: Span, pattern: str, t0: float, t1: float, model: str, tin: int,
              tout: int, cached: int = 0, **kw: Any) -> Span:
        price = PRICES.get(model)
        cost = (tin * price[0] + tout * price[1]) if price else float("nan")
        return self.span(
            parent, "model", pattern, parent.step, t0, t1, provider=model.split(":")[0],
            model=model, input_tokens=tin, output_tokens=tout, cached_tokens=cached,
            cost_usd=cost, priced=price is not None, attempt=kw.pop("attempt", 1),
            cached=False, simulated=model.startswith("sim:"), **kw,
        )

    def close(self, t1: float, output: str | None = None) -> list[Span]:
        self.root.end = T0 + t1
        self.root.latency_ms = (T0 + t1 - self.root.start) * 1000
        self.root.output = output
        return self.spans


def chain_run(run_id: str = "chain-1", t: float = 0.0, polish_model: str = "openai:ft-custom",
              draft_output: str = "draft text") -> list[Span]:
    b = Builder(run_id, "summarize", t)
    p = b.span(b.root, "pattern", "chain", "summarize", t, t + 3.0)
    steps = [("outline", "openai:gpt-4o-mini", 0.0, 0.8, "outline text"),
             ("draft", "anthropic:claude-3-5-haiku", 0.8, 2.2, draft_output),
             ("polish", polish_model, 2.2, 3.0, "final text")]
    for name, model, a, z, out in steps:
        s = b.span(p, "step", "chain", name, t + a, t + z, output=out)
        b.model(s, "chain", t + a + 0.01, t + z - 0.01, model, 400, 150, output=out)
    return b.close(t + 3.0, output="final text")


ROUTES = ["billing", "technical", "billing", "other", "billing", "technical", "billing",
          "technical", "billing", "other"]


def router_runs(n: int = 10, t: float = 100.0) -> list[Span]:
    spans: list[Span] = []
    for i in range(n):
        route = ROUTES[i % len(ROUTES)]
        start = t + i * 5
        b = Builder(f"router-{i}", "support", start)
        r = b.span(b.root, "pattern", "router", "triage", start, start + 2.0, route=route,
                   raw_label=route.upper(), confidence=0.6 + 0.03 * i)
        c = b.span(r, "step", "router", "classify", start, start + 0.4 + 0.02 * i, output=route)
        b.model(c, "router", start + 0.01, start + 0.39 + 0.02 * i, "openai:gpt-4o-mini", 200, 3)
        a = b.span(r, "step", "chain", f"{route}_answer", start + 0.5, start + 2.0,
                   output=f"answer via {route}")
        b.model(a, "chain", start + 0.51, start + 1.99, "openai:gpt-4o", 600, 250, cached=200)
        spans += b.close(start + 2.0, output=f"answer via {route}")
    return spans


def mapreduce_run(n_items: int = 50, t: float = 200.0, concurrency: int = 10) -> list[Span]:
    b = Builder("mapreduce-1", "digest", t)
    p = b.span(b.root, "pattern", "mapreduce", "digest", t, t + 8.0)
    b.span(p, "step", "mapreduce", "split", t, t + 0.05)
    rng = np.random.default_rng(7)
    slots = [t + 0.05] * concurrency
    for i in range(n_items):
        k = int(np.argmin(slots))
        a = slots[k]
        z = a + float(rng.uniform(0.3, 1.2))
        slots[k] = z
        s = b.span(p, "step", "mapreduce", "map", a, z, item=i, output=f"summary {i}")
        b.model(s, "mapreduce", a + 0.005, z - 0.005, "openai:gpt-4o-mini", 300, 80, item=i)
    end_map = max(slots)
    r = b.span(p, "step", "mapreduce", "reduce", end_map, end_map + 1.0, output="digest")
    b.model(r, "mapreduce", end_map + 0.01, end_map + 0.99, "openai:gpt-4o", 4000, 400)
    p.end, p.latency_ms = T0 + end_map + 1.0, (end_map + 1.0 - t) * 1000
    return b.close(end_map + 1.0, output="digest")


def agent_run(t: float = 300.0) -> list[Span]:
    """Four iterations; iteration 2's tool fails once; a model call needs 3 attempts."""
    b = Builder("agent-1", "researcher", t)
    p = b.span(b.root, "pattern", "agent", "researcher", t, t + 6.0)
    for it in range(1, 5):
        a = t + (it - 1) * 1.5
        s = b.span(p, "step", "agent", "agent", a, a + 1.5, iteration=it)
        attempt = 3 if it == 3 else 1
        b.model(s, "agent", a, a + 0.7, "anthropic:claude-3-5-haiku", 800 + 200 * it, 60,
                iteration=it, attempt=attempt)
        if it < 4:
            failed = it == 2
            b.span(s, "tool", "agent", "agent", a + 0.7, a + 1.4, tool="search",
                   iteration=it, attempt=2 if failed else 1,
                   status="error" if failed else "ok",
                   error="ToolError: search timed out" if failed else None)
    return b.close(t + 6.0, output="the answer is 42")


@pytest.fixture
def chain_df() -> pd.DataFrame:
    return frame(chain_run())


@pytest.fixture
def router_df() -> pd.DataFrame:
    return frame(router_runs())


@pytest.fixture
def mapreduce_df() -> pd.DataFrame:
    return frame(mapreduce_run())


@pytest.fixture
def agent_df() -> pd.DataFrame:
    return frame(agent_run())


@pytest.fixture
def session_df() -> pd.DataFrame:
    """All of the above in one frame (a notebook session)."""
    return frame(chain_run() + router_runs() + mapreduce_run() + agent_run())


@pytest.fixture
def evals_df() -> pd.DataFrame:
    labels = ["billing"] * 10 + ["technical"] * 8 + ["other"] * 4
    routes = (["billing"] * 9 + ["technical"] + ["technical"] * 6 + ["billing"] * 2
              + ["other"] * 2 + ["billing", "technical"])
    return pd.DataFrame({"text": [f"q{i}" for i in range(len(labels))], "label": labels,
                         "route": routes})


def big_frame(runs: int, items: int) -> pd.DataFrame:
    """``runs`` map-reduce runs of ``items`` map calls each, built column-wise (2·items+5 spans
    per run), for the scale tests."""
    per = 2 * items + 5
    n = runs * per
    rng = np.random.default_rng(0)
    run_idx = np.repeat(np.arange(runs), per)
    local = np.tile(np.arange(per), runs)
    base = run_idx * (per * 10)  # span ids unique across runs
    kind = np.empty(per, dtype=object)
    kind[:3] = ["run", "pattern", "step"]
    kind[3 : 3 + 2 * items : 2] = "step"
    kind[4 : 4 + 2 * items : 2] = "model"
    kind[-2:] = ["step", "model"]
    step = np.empty(per, dtype=object)
    step[:3] = ["digest", "digest", "split"]
    step[3 : 3 + 2 * items] = "map"
    step[-2:] = "reduce"
    parent = np.empty(per, dtype=np.int64)
    parent[:3] = [-1, 0, 1]
    parent[3 : 3 + 2 * items : 2] = 1
    parent[4 : 4 + 2 * items : 2] = np.arange(3, 3 + 2 * items, 2)
    parent[-2:] = [1, per - 2]
    item = np.full(per, -1)
    item[3 : 3 + 2 * items] = np.repeat(np.arange(items), 2)
    slot_start = np.zeros(per)
    slot_start[3 : 3 + 2 * items] = 0.1 + np.repeat((np.arange(items) // 16) * 1.0, 2)
    slot_start[-2:] = 0.2 + (items // 16 + 1) * 1.0
    dur = np.full(per, 0.9)
    dur[:2] = slot_start[-1] + 1.0
    starts = T0 + run_idx * 1000.0 + np.tile(slot_start, runs)
    starts = starts + np.where(np.tile(np.arange(per), runs) < 2, 0.0, rng.uniform(0, 0.05, n))
    jitter = np.where(np.tile(np.arange(per), runs) < 2, 1.0, rng.uniform(0.8, 1.0, n))
    durs = np.tile(dur, runs) * jitter
    is_model = np.tile(kind, runs) == "model"
    par = np.tile(parent, runs)
    df = pd.DataFrame({c: pd.Series([None] * n, dtype=object) for c in COLUMNS})
    df["run_id"] = [f"big-{r}" for r in run_idx]
    df["span_id"] = [f"b{i}" for i in base + local]
    df["parent_id"] = [f"b{b + p}" if p >= 0 else None for b, p in zip(base, par, strict=True)]
    df["pipeline"] = "digest"
    df["pattern"] = "mapreduce"
    df["step"] = np.tile(step, runs)
    df["kind"] = np.tile(kind, runs)
    df["status"] = "ok"
    df["start"] = pd.to_datetime(starts, unit="s", utc=True)
    df["end"] = pd.to_datetime(starts + durs, unit="s", utc=True)
    df["latency_ms"] = durs * 1000
    df["model"] = np.where(is_model, "openai:gpt-4o-mini", None)
    df["provider"] = np.where(is_model, "openai", None)
    df["input_tokens"] = pd.Series(np.where(is_model, 300, np.nan)).astype("Int64")
    df["output_tokens"] = pd.Series(np.where(is_model, 80, np.nan)).astype("Int64")
    df["cached_tokens"] = pd.Series(np.where(is_model, 0, np.nan)).astype("Int64")
    df["cost_usd"] = np.where(is_model, 0.0001, np.nan)
    df["priced"] = pd.Series(np.where(is_model, True, None)).astype("boolean")
    df["item"] = pd.Series(np.tile(np.where(item >= 0, item, np.nan), runs)).astype("Int64")
    df["attempt"] = pd.Series(np.where(is_model, 1, np.nan)).astype("Int64")
    df["iteration"] = df["iteration"].astype("Int64")
    for c in ("confidence", "saved_usd"):
        df[c] = df[c].astype("float64")
    for c in ("cached", "simulated"):
        df[c] = df[c].astype("boolean")
    return df


@pytest.fixture
def build() -> SimpleNamespace:
    """The builders, for tests that need their own runs."""
    return SimpleNamespace(frame=frame, Builder=Builder, chain_run=chain_run,
                           router_runs=router_runs,
                           mapreduce_run=mapreduce_run, agent_run=agent_run)


@pytest.fixture(scope="session")
def big_session() -> pd.DataFrame:
    """1,000 map-reduce runs, 101,000 spans."""
    return big_frame(1000, 48)


@pytest.fixture(scope="session")
def big_run() -> pd.DataFrame:
    """One map-reduce run with 50,000 items: 100,005 spans."""
    return big_frame(1, 50_000)
