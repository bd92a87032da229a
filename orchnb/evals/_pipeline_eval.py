"""``evaluate`` for any pipeline: run every row in one traced engine run, then score outputs.

The rows run through ``ctx.gather`` with bounded concurrency inside one run (``eval:NAME`` in
the traces), so the eval is budgeted, cached and cancellable like any run; each row's cost,
tokens, latency and status are read back from its spans. Scorers run afterwards: Python ones
in-process, judges as their own traced run (their cost is reported apart).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import BudgetExceeded, RunCancelled, SpecError
from ..patterns import Chain, as_node
from ._collect import PROMPT_CACHE, pipeline_columns
from ._remote import PipelineRow
from ._rows import load_rows, rows_run
from ._scorers import Scorer, as_scorers
from ._scores_report import ScoreReport
from ._trajectory import render, row_trajectories

if TYPE_CHECKING:
    import pandas as pd

    from ..engine import Run
    from ._options import EvalOptions


def as_pipeline(pipe: Any, name: str | None = None) -> Any:
    """A Pipeline from a pipeline, a Step, or a Python function (wrapped in a one-step chain)."""
    if callable(getattr(pipe, "new_run", None)):
        return pipe
    try:
        node = as_node(pipe, name)
    except SpecError:
        raise SpecError(f"evaluate: {pipe!r} is not a pipeline; give an orchnb pattern "
                        f"(Chain, Router, Agent...), a Step or a Python function") from None
    return Chain(name or getattr(node, "name", "pipeline"), [node])


def evaluate_pipeline(pipe: Any, data: Any, opts: EvalOptions, scorers: list[Scorer], *,
                      name: str | None = None, df: pd.DataFrame | None = None) -> ScoreReport:
    """Run every row of ``data`` (or the rows already read, ``df``) through ``pipe`` in one
    traced run, then score the outputs (see :func:`orchnb.evaluate`, the any-pipeline form)."""
    pipe = as_pipeline(pipe)
    if df is None:
        df = load_rows(data, opts, opts.expected)
    _check_columns(scorers, df)
    label = name or pipe.name
    texts = df[opts.text].astype(str).tolist()
    wanted = df[opts.expected].tolist() if opts.expected is not None else [None] * len(texts)
    meta = {"pipeline": pipe.name, "rows": len(texts), "concurrency": opts.concurrency}
    run = rows_run(pipe, PipelineRow(pipe), texts, opts, name=label, meta=meta)
    started = time.perf_counter()
    try:
        run.run_sync()
    except (BudgetExceeded, RunCancelled) as e:
        raise _stopped(e, run, label) from None
    wall = time.perf_counter() - started
    frame = _frame(df, texts, wanted, pipeline_columns(run, len(texts)), opts.text,
                   opts.expected)
    trajectories = None
    if any(s.reads == "trajectory" for s in scorers):
        trajectories = row_trajectories(run, len(texts))
        frame["tool_calls"] = pd_series([[{k: c[k] for k in ("name", "args", "status")}
                                          for c in t] for t in trajectories], frame.index)
    judge_runs = score_frame(frame, scorers, texts, wanted, df, cache=opts.cache,
                             progress=opts.progress, trajectories=trajectories)
    meta = {"pattern": getattr(pipe, "pattern", "pipeline"), "text": opts.text,
            "expected": opts.expected, "concurrency": opts.concurrency,
            "simulated": bool(run.simulated), "run_id": run.id, "wall_s": wall,
            "batch": opts.batch is True}
    return ScoreReport(label, frame, scorers, meta=meta, run=run, judge_runs=judge_runs,
                       n_boot=opts.n_boot, level=opts.level, seed=opts.seed, pipeline=pipe)


def pd_series(values: list[Any], index: Any) -> Any:
    import pandas as pd

    return pd.Series(values, index=index, dtype=object)


def _check_columns(scorers: list[Scorer], df: pd.DataFrame) -> None:
    for s in scorers:
        missing = [c for c in s.columns if c not in df.columns]
        if missing:
            have = ", ".join(map(str, df.columns))
            raise SpecError(f"evaluate: scorer {s.name!r} reads column {missing[0]!r}, which "
                            f"the data does not have; its columns: {have}")


def _stopped(e: BaseException, run: Run, label: str) -> Exception:
    done = sum(1 for s in run.trace.spans if s.item is not None and s.kind != "run")
    msg = (f"evaluate '{label}': stopped ({e}); {done:,} row spans had finished. The trace "
           f"is in err.run.trace.df")
    err: Exception = (BudgetExceeded(msg, limit=getattr(e, "limit", "usd"))
                      if isinstance(e, BudgetExceeded) else RunCancelled(msg))
    err.run = run  # type: ignore[attr-defined]
    return err


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


def _frame(df: pd.DataFrame, texts: list[str], wanted: list[Any], cols: dict[str, list[Any]],
           text: str, expected: str | None) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({"input": texts}, index=df.index)
    if expected is not None:
        out["expected"] = wanted
    out["output"] = pd.Series(cols["output"], index=df.index, dtype=object)
    for k in ("status", "error", "latency_ms", "service_ms", "cost_usd", "list_usd",
              "input_tokens", "output_tokens", "calls", "cached_calls", "batch_calls",
              "batch_saved_usd", *PROMPT_CACHE):
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
                progress: bool, trajectories: list[list[Any]] | None = None) -> list[Run]:
    """Add a column per scorer to ``frame`` (failed rows score 0), ``NAME_reason`` for judges
    and ``NAME_diff`` for scorers that say what differs; returns the judges' runs."""
    import numpy as np

    failed = (frame["status"] != "ok").to_numpy()
    outputs = frame["output"].tolist()
    records = df.to_dict("records")
    runs = []
    for sc in scorers:
        seen = (outputs if sc.reads == "output" else trajectories or [[] for _ in outputs])
        if sc.judge is not None:
            graded = [None if f else o if sc.reads == "output" else render(t, o)
                      for o, t, f in zip(outputs, seen, failed)]
            scores, reasons, run = sc.judge.grade(
                texts, graded, wanted if any(w is not None for w in wanted) else None,
                cache=cache, progress=progress)
            runs.append(run)
            values = np.asarray(scores, dtype=float)
            frame[f"{sc.name}_reason"] = reasons
        elif sc.diff is not None:
            pairs = [(math.nan, None) if f else _diff(sc, v, r)
                     for v, r, f in zip(seen, records, failed)]
            values = np.array([p[0] for p in pairs], dtype=float)
            frame[f"{sc.name}_diff"] = [None if f else p[1] for p, f in zip(pairs, failed)]
        else:
            values = np.array([math.nan if f else _score(sc, o, w, r)
                               for o, w, r, f in zip(seen, wanted, records, failed)],
                              dtype=float)
        values[failed] = 0.0  # a row that failed fails every scorer
        frame[sc.name] = values
    return runs


def _diff(sc: Scorer, value: Any, row: Any) -> tuple[float, str | None]:
    try:
        score, why = sc.diff(value, row)  # type: ignore[misc]
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(f"scorer {sc.name!r} raised {type(e).__name__}: {e}; fix the "
                        f"scorer (or its argument function)") from e
    return float(score), why


def _score(sc: Scorer, output: Any, expected: Any, row: Any) -> float:
    try:
        return float(sc(output, expected, row))
    except SpecError:
        raise
    except Exception as e:
        raise SpecError(f"scorer {sc.name!r} raised {type(e).__name__}: {e} on output "
                        f"{str(output)[:80]!r}; fix the scorer or return None to skip a "
                        f"row") from e
