"""The rows a person labels, read from what :func:`orchnb.label` is given, and sampled.

Sources: an eval report of any pipeline (input, output, expected, the judge's score and
reason, and an agent's tool calls from the eval's run as the trajectory), a router eval
(text, route, true label), a comparison or experiment (each candidate's rows), a trace
DataFrame (one row per run, its steps and tool calls as the trajectory) or any DataFrame
(``input=`` / ``output=`` / ``expected=`` name the columns).
Each row carries its content key (``_label_store.row_key``), so a label given once is found
again whatever the order, sample or kernel.

Samples: ``"random"`` (seeded), ``"stratified:COLUMN"`` (the groups in turn, so each is
seen), ``"disagreements"`` (rows where scorers or candidates disagree first, then the judge's
least certain scores), ``"all"`` / ``"first"`` (in order).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._label_store import row_key, text_of
from ._trajectory import call_text, row_trajectories

if TYPE_CHECKING:
    import pandas as pd

SHOWN = 4000
"""Characters of each field sent to the widget (the store keeps more, the key hashes all)."""
MAX_STEPS = 40


def _report_rows(report: Any) -> pd.DataFrame:
    df = report.scores
    out = df[[c for c in ("input", "output", "expected") if c in df.columns]].copy()
    llm = [s["name"] for s in report.scorers if s.get("llm")]
    if llm:
        out["judge_score"] = df[llm[0]].to_numpy(dtype=float)
        if f"{llm[0]}_reason" in df.columns:
            out["judge_reason"] = df[f"{llm[0]}_reason"].to_numpy()
    for s in report.scorer_names:
        out[f"score:{s}"] = df[s].to_numpy(dtype=float)
    calls = _report_calls(report)
    if calls is not None and any(calls):
        out["trajectory"] = [[f"tool {call_text(c, 300)}" for c in row[:MAX_STEPS]]
                             for row in calls]
    return out


def _report_calls(report: Any) -> list[list[dict[str, Any]]] | None:
    """Each row's tool calls: from the eval's run (the trajectory scorers' reading, results
    included), else the ``tool_calls`` column a reopened report kept (no results)."""
    run = getattr(report, "run", None)
    if run is not None and getattr(run, "trace", None) is not None:
        return row_trajectories(run, len(report.scores))
    if "tool_calls" in report.scores.columns:
        return [list(v) if isinstance(v, (list, tuple)) else []
                for v in report.scores["tool_calls"]]
    return None


def _router_rows(report: Any) -> pd.DataFrame:
    p = report.predictions
    out = p[["text", "route", "label"]].rename(
        columns={"text": "input", "route": "output", "label": "expected"}).copy()
    out["output"] = out["output"].map(text_of)
    out["score:correct"] = p["correct"].astype(float).to_numpy()
    return out


def _trace_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (or per row of an eval's run: its items), with its steps and tool calls
    as the trajectory."""
    import pandas as pd

    children: dict[Any, list[int]] = {}
    for i, parent in enumerate(df["parent_id"]):
        children.setdefault(parent, []).append(i)
    spans = df.to_dict("records")
    out = []
    for r in spans:
        if r["kind"] == "run":
            items = [j for j in children.get(r["span_id"], []) if _is_item(spans[j])]
            for top in ([spans[j] for j in items] or [r]):
                out.append({"input": top["input"], "output": top["output"],
                            "run_id": r["run_id"], "pipeline": r["pipeline"],
                            "trajectory": _steps(top["span_id"], spans, children)})
    return pd.DataFrame(out, columns=["input", "output", "run_id", "pipeline", "trajectory"])


def _is_item(span: dict[str, Any]) -> bool:
    item = span.get("item")
    return item is not None and not (isinstance(item, float) and math.isnan(item))


def _steps(root: Any, spans: list[dict[str, Any]], children: dict[Any, list[int]]) -> list[str]:
    found, todo = [], list(children.get(root, []))
    while todo and len(found) < MAX_STEPS:
        s = spans[todo.pop(0)]
        if s["kind"] in ("step", "tool"):
            name = s["tool"] if s["kind"] == "tool" and isinstance(s["tool"], str) else s["step"]
            found.append((s["start"], f"{s['kind']} {name}: {text_of(s['input'])[:300]} → "
                                      f"{text_of(s['output'])[:300]}"))
        todo += children.get(s["span_id"], [])
    return [text for _, text in sorted(found, key=lambda x: str(x[0]))]


def source_rows(source: Any, *, input: str | None = None, output: str | None = None,
                expected: str | None = None) -> pd.DataFrame:
    """The rows of ``source`` with input, output (and expected, judge_score, judge_reason,
    trajectory, score:NAME when known) and the row's other columns."""
    import pandas as pd

    if hasattr(source, "reports") and isinstance(source.reports, dict):
        parts = [source_rows(r).assign(candidate=name) for name, r in source.reports.items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if hasattr(source, "scores") and hasattr(source, "scorers"):
        return _report_rows(source)
    if hasattr(source, "predictions") and isinstance(source.predictions,
                                                    pd.DataFrame):
        return _router_rows(source)
    if not isinstance(source, pd.DataFrame):
        raise SpecError(f"label: cannot label a {type(source).__name__}; give an eval report, "
                        f"a comparison, a trace DataFrame (orchnb.traces()) or a DataFrame")
    if {"span_id", "kind", "run_id"} <= set(source.columns) and input is None:
        return _trace_rows(source)
    names = {"input": input or _first(source, ("input", "text", "question", "prompt")),
             "output": output or _first(source, ("output", "answer", "response", "route")),
             "expected": expected or _first(source, ("expected", "label", "reference"))}
    for role in ("input", "output"):
        if names[role] is None or names[role] not in source.columns:
            raise SpecError(f"label: no {role} column in the DataFrame (columns: "
                            f"{', '.join(map(str, source.columns[:12]))}); name it with "
                            f"{role}='COLUMN'")
    renamed = {v: k for k, v in names.items() if v is not None and v in source.columns}
    return source.rename(columns=renamed).reset_index(drop=True)


def _first(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in df.columns), None)


def _disagreement_order(rows: pd.DataFrame, threshold: float = 0.5) -> list[int]:
    """Rows where scorers (or candidates) disagree first, then the least certain judge
    scores, then the rest; stable otherwise."""
    import numpy as np

    n = len(rows)
    split = np.zeros(n)
    cols = [c for c in rows.columns if c.startswith("score:")]
    if len(cols) >= 2:
        passed = rows[cols].to_numpy(dtype=float) >= threshold
        split = (passed.any(axis=1) & ~passed.all(axis=1)).astype(float)
    if "candidate" in rows.columns and cols:
        by_input = rows.assign(_p=rows[cols[0]] >= threshold).groupby("input")["_p"]
        split = np.maximum(split, (by_input.transform("nunique") > 1).to_numpy(dtype=float))
    doubt = np.zeros(n)
    if "judge_score" in rows.columns:
        s = rows["judge_score"].to_numpy(dtype=float)
        doubt = np.where(np.isnan(s), 0.0, 1.0 - np.abs(s - threshold) * 2)
    return sorted(range(n), key=lambda i: (-split[i], -doubt[i], i))


def sample_rows(rows: pd.DataFrame, sample: str, n: int | None, seed: int) -> pd.DataFrame:
    """``n`` rows of ``rows`` picked by the ``sample`` rule (see the module)."""
    import numpy as np

    kind, _, arg = str(sample).partition(":")
    if kind in ("all", "first"):
        order = list(range(len(rows)))
    elif kind == "random":
        order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    elif kind == "disagreements":
        order = _disagreement_order(rows)
    elif kind == "stratified":
        if arg not in rows.columns:
            raise SpecError(f"label: sample='stratified:{arg}' names no column; columns: "
                            f"{', '.join(map(str, rows.columns[:12]))}")
        perm = np.random.default_rng(seed).permutation(len(rows))
        keys = rows[arg].iloc[perm].map(text_of).to_numpy()
        lists = [perm[keys == g].tolist() for g in sorted(set(keys))]
        order = [g[k] for k in range(max(map(len, lists), default=0)) for g in lists
                 if k < len(g)]
    else:
        raise SpecError(f"label: unknown sample={sample!r}; use 'random', "
                        f"'stratified:COLUMN', 'disagreements' or 'all'")
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SpecError(f"label: n={n!r} is how many rows to label, a whole number >= 1")
        order = order[:n]
    return rows.iloc[order].reset_index(drop=True)


def widget_item(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the widget shows it (fields capped), with its key."""
    def cap(x: Any) -> str:
        s = text_of(x)
        return s if len(s) <= SHOWN else s[:SHOWN] + "…"

    score = row.get("judge_score")
    shown_score = None if score is None or (isinstance(score, float) and math.isnan(score)) \
        else round(float(score), 3)
    extra = {k: cap(v)[:200] for k, v in row.items() if k not in (
        "input", "output", "expected", "judge_score", "judge_reason", "trajectory")
        and not k.startswith("score:")}
    traj = row.get("trajectory")
    return {"key": row_key(row.get("input"), row.get("output"), row.get("expected")),
            "input": cap(row.get("input")), "output": cap(row.get("output")),
            "expected": cap(row.get("expected")), "score": shown_score,
            "reason": cap(row.get("judge_reason")),
            "trajectory": [cap(s)[:600] for s in traj][:MAX_STEPS] if isinstance(
                traj, list) else [], "extra": extra}


def label_rows(source: Any, *, sample: str = "random", n: int | None = None, seed: int = 0,
               input: str | None = None, output: str | None = None,
               expected: str | None = None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The rows of ``source`` to label, sampled: each as (the row, what the widget shows)."""
    rows = sample_rows(source_rows(source, input=input, output=output, expected=expected),
                       sample, n, seed)
    return [(r, widget_item(r)) for r in rows.to_dict("records")]
