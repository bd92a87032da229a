"""``evaluate`` for any pipeline: run every row in one traced engine run, then score outputs.

The rows run through ``ctx.gather`` with bounded concurrency inside one run (``eval:NAME`` in
the traces), so the eval is budgeted, cached and cancellable like any run; each row's cost,
tokens, latency and status are read back from its spans. Scorers run afterwards: Python ones
in-process, judges as their own traced run (their cost is reported apart).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..engine import Budget, Run, RunContext, as_text
from ..exceptions import BudgetExceeded, RunCancelled, SpecError
from ..trace import plural
from ._data import load_data
from ._scorers import Scorer, as_scorers

if TYPE_CHECKING:
    import pandas as pd

    from ._scores_report import ScoreReport


def as_pipeline(pipe: Any, name: str | None = None) -> Any:
    """A Pipeline from a pipeline, a Step, or a Python function (wrapped in a one-step chain)."""
    if callable(getattr(pipe, "new_run", None)):
        return pipe
    from ..patterns import Chain, as_node

    try:
        node = as_node(pipe, name)
    except SpecError:
        raise SpecError(f"evaluate: {pipe!r} is not a pipeline; give an orchnb pattern "
                        f"(Chain, Router, Agent...), a Step or a Python function") from None
    return Chain(name or getattr(node, "name", "pipeline"), [node])


def evaluate_pipeline(
    pipe: Any,
    data: Any,
    *,
    text: str = "text",
    expected: str | None = None,
    scorers: Any = None,
    name: str | None = None,
    concurrency: int = 8,
    progress: bool = True,
    cache: bool | None = None,
    budget: Budget | None = None,
    max_usd: float | None = None,
    sample: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
    df: pd.DataFrame | None = None,
    executor: Any = None,
) -> ScoreReport:
    """See :func:`orchnb.evaluate` (the any-pipeline form)."""
    from ._scores_report import ScoreReport

    pipe = as_pipeline(pipe)
    scs = resolve_scorers(scorers, expected)
    if df is None:
        df = load_rows(data, text=text, expected=expected, sample=sample, seed=seed)
    if concurrency < 1:
        raise SpecError(f"evaluate: concurrency must be at least 1, got {concurrency}")
    label = name or pipe.name
    if executor is not None:  # a bad executor fails before any call
        from ._remote import as_executor

        executor = as_executor(executor, f"evaluate '{label}'")
    texts = df[text].astype(str).tolist()
    wanted = df[expected].tolist() if expected is not None else [None] * len(texts)
    if max_usd is not None:
        cap = max_usd if budget is None or budget.max_usd is None else min(budget.max_usd, max_usd)
        budget = replace(budget or Budget(), max_usd=cap)
    pipe.check_models()
    run = _make_run(pipe, texts, concurrency, progress, cache, budget, label, executor)
    started = time.perf_counter()
    try:
        run.run_sync()
    except (BudgetExceeded, RunCancelled) as e:
        done = sum(1 for s in run.trace.spans if s.item is not None and s.kind != "run")
        msg = (f"evaluate '{label}': stopped ({e}); {done:,} row spans had finished. The trace "
               f"is in err.run.trace.df")
        err: Exception = (BudgetExceeded(msg, limit=getattr(e, "limit", "usd"))
                          if isinstance(e, BudgetExceeded) else RunCancelled(msg))
        err.run = run  # type: ignore[attr-defined]
        raise err from None
    wall = time.perf_counter() - started
    cols = row_columns(run, len(texts))
    frame = _frame(df, texts, wanted, cols, text, expected)
    judge_runs = score_frame(frame, scs, texts, wanted, df, cache=cache, progress=progress)
    meta = {"pattern": getattr(pipe, "pattern", "pipeline"), "text": text, "expected": expected,
            "concurrency": concurrency, "simulated": bool(run.simulated), "run_id": run.id,
            "wall_s": wall}
    return ScoreReport(label, frame, scs, meta=meta, run=run, judge_runs=judge_runs,
                       n_boot=n_boot, level=level, seed=seed, pipeline=pipe)


def resolve_scorers(scorers: Any, expected: str | None) -> list[Scorer]:
    scs = as_scorers(scorers if scorers is not None else (["exact"] if expected else None))
    if not scs:
        raise SpecError("evaluate: no scorer; give expected='COLUMN' (scored 'exact' by "
                        "default) or scorers=[...] (e.g. 'contains', 'regex:\\d+', a function "
                        "or orchnb.judge(model, rubric))")
    for s in scs:
        if s.needs_expected and expected is None:
            raise SpecError(f"evaluate: scorer {s.name!r} compares with an expected answer; "
                            f"name its column with expected='COLUMN'")
    return scs


def load_rows(data: Any, *, text: str, expected: str | None, sample: int | None,
              seed: int) -> pd.DataFrame:
    df = load_data(data, text=text, label=expected)
    if sample is not None and sample < len(df):
        df = df.sample(n=sample, random_state=seed)
    return df


def _make_run(pipe: Any, texts: list[str], concurrency: int, progress: bool,
              cache: bool | None, budget: Budget | None, label: str, executor: Any) -> Run:
    outputs: list[Any] = [None] * len(texts)

    async def one(ctx: RunContext, i: int) -> None:
        x = texts[i]
        try:
            outputs[i] = await pipe.invoke(ctx, x, {"run_input": x})
        except (BudgetExceeded, RunCancelled):
            raise
        except Exception:
            pass  # the row's error is in its spans; the report lists it

    async def body(ctx: RunContext, _: Any) -> list[Any]:
        root = ctx.current_span()
        root.meta = {"eval": {"pipeline": pipe.name, "rows": len(texts),
                              "concurrency": concurrency}}
        if executor is not None:  # executor="ray": the rows on Ray workers (see _remote)
            from ._remote import PipelineRow, rows_on_ray

            return await rows_on_ray(ctx, PipelineRow(pipe), pipe, texts, executor=executor,
                                     concurrency=concurrency, label=f"eval {label}")
        await ctx.gather([lambda i=i: one(ctx, i) for i in range(len(texts))],
                         concurrency=concurrency, progress=f"eval {label}")
        return outputs

    return pipe.new_run(plural(len(texts), "row"), body=body, name=f"eval:{label}",
                        pattern="eval", cache=cache, budget=budget, progress=progress)


_CALLS = ("model", "tool", "memory")


def row_columns(run: Run, n: int) -> dict[str, list[Any]]:
    """Per-row status, latency, cost and tokens, from the run's spans.

    A span belongs to the row of its ancestor directly under the run span (tagged with the row's
    ``item``). ``service_ms`` adds up the row's own calls (model, tool, memory spans); the rest
    of its latency is time spent waiting (for a worker, a thread, the event loop) or in Python.
    """
    spans = list(run.trace.spans)
    root = next((s for s in reversed(spans) if s.kind == "run"), None)
    by_id = {s.span_id: s for s in spans}
    row_of: dict[str, int] = {}
    tops: list[Any] = [None] * n
    if root is not None:
        for s in spans:
            if s.parent_id == root.span_id and s.item is not None and s.item < n:
                tops[s.item] = s
                row_of[s.span_id] = s.item

    def find(span: Any) -> int | None:
        path = []
        s = span
        while s is not None and s.span_id not in row_of:
            path.append(s.span_id)
            s = by_id.get(s.parent_id)
        i = None if s is None else row_of[s.span_id]
        for sid in path:
            row_of[sid] = i  # type: ignore[assignment]
        return i

    nan = math.nan
    cols: dict[str, list[Any]] = {
        "status": ["not run"] * n, "error": [None] * n, "latency_ms": [nan] * n,
        "service_ms": [0.0] * n, "cost_usd": [0.0] * n, "list_usd": [0.0] * n,
        "input_tokens": [0] * n, "output_tokens": [0] * n, "calls": [0] * n,
        "cached_calls": [0] * n}
    for i, t in enumerate(tops):
        if t is not None:
            cols["status"][i] = t.status
            cols["error"][i] = t.error if t.status != "ok" else None
            cols["latency_ms"][i] = nan if t.latency_ms is None else t.latency_ms
    for s in spans:
        if s.kind not in _CALLS:
            continue
        i = find(s)
        if i is None:
            continue
        if s.latency_ms is not None and not s.cached:
            cols["service_ms"][i] += s.latency_ms
        if s.kind != "model":
            continue
        c = nan if s.cost_usd is None else s.cost_usd
        cols["cost_usd"][i] += c
        cols["list_usd"][i] += c + (s.saved_usd or 0.0) if s.cached else c
        cols["input_tokens"][i] += s.input_tokens or 0
        cols["output_tokens"][i] += s.output_tokens or 0
        cols["calls"][i] += 1
        cols["cached_calls"][i] += bool(s.cached)
    outputs = run.output if isinstance(run.output, list) else [None] * n
    cols["output"] = [None if o is None else as_text(o) for o in outputs]
    return cols


def _frame(df: pd.DataFrame, texts: list[str], wanted: list[Any], cols: dict[str, list[Any]],
           text: str, expected: str | None) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({"input": texts}, index=df.index)
    if expected is not None:
        out["expected"] = wanted
    out["output"] = pd.Series(cols["output"], index=df.index, dtype=object)
    for k in ("status", "error", "latency_ms", "service_ms", "cost_usd", "list_usd",
              "input_tokens", "output_tokens", "calls", "cached_calls"):
        out[k] = pd.Series(cols[k], index=df.index,
                           dtype=object if k in ("status", "error") else None)
    out["tokens"] = out["input_tokens"] + out["output_tokens"]
    out["queue_ms"] = (out["latency_ms"] - out["service_ms"]).clip(lower=0)
    for c in df.columns:
        if c not in (text, expected) and c not in out.columns:
            out[c] = df[c]
    return out


def score_frame(frame: pd.DataFrame, scorers: list[Scorer], texts: list[str],
                wanted: list[Any], df: pd.DataFrame, *, cache: bool | None,
                progress: bool) -> list[Run]:
    """Add a column per scorer to ``frame`` (failed rows score 0); returns the judges' runs."""
    import numpy as np

    failed = (frame["status"] != "ok").to_numpy()
    outputs = frame["output"].tolist()
    records = df.to_dict("records")
    runs = []
    for sc in scorers:
        if sc.judge is not None:
            graded = [None if f else o for o, f in zip(outputs, failed)]
            scores, reasons, run = sc.judge.grade(
                texts, graded, wanted if any(w is not None for w in wanted) else None,
                cache=cache, progress=progress)
            runs.append(run)
            values = np.asarray(scores, dtype=float)
            frame[f"{sc.name}_reason"] = reasons
        else:
            values = np.array([math.nan if f else _score(sc, o, w, r)
                               for o, w, r, f in zip(outputs, wanted, records, failed)],
                              dtype=float)
        values[failed] = 0.0  # a row that failed fails every scorer
        frame[sc.name] = values
    return runs


def _score(sc: Scorer, output: Any, expected: Any, row: Any) -> float:
    try:
        return float(sc(output, expected, row))
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(f"scorer {sc.name!r} raised {type(e).__name__}: {e} on output "
                        f"{str(output)[:80]!r}; fix the scorer or return None to skip a "
                        f"row") from e
