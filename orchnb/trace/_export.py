"""Export trace DataFrames: Parquet, CSV, and OpenTelemetry spans (GenAI semantic conventions).

``to_otel`` replays finished spans through an OpenTelemetry ``TracerProvider`` (the global one
by default), keeping parent/child links, start/end times and error status, with ``gen_ai.*``
attributes on model, tool and agent spans. Prompts and outputs are left out unless asked for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import scrub_secrets

if TYPE_CHECKING:
    import pandas as pd
    from opentelemetry.trace import TracerProvider

_ERRORS = frozenset({"error", "cancelled", "budget_exceeded", "max_iterations"})
_AGENTS = frozenset({"agent", "team", "plan_execute"})


def to_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a trace DataFrame to a Parquet file (needs ``pyarrow``); dtypes survive a round trip.

    >>> to_parquet(orchnb.traces(), "traces.parquet")   # doctest: +SKIP
    PosixPath('traces.parquet')
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_parquet needs pyarrow: pip install pyarrow") from e
    path = Path(path)
    _scrubbed(df).to_parquet(path, index=False)
    return path


def to_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a trace DataFrame to CSV (times in ISO 8601 UTC, NaN cost left empty).

    >>> to_csv(run.trace.df, "run.csv")   # doctest: +SKIP
    PosixPath('run.csv')
    """
    path = Path(path)
    _scrubbed(df).to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
    return path


_TEXT_COLUMNS = ("error", "input", "output", "raw_label", "meta")


def _scrubbed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with API keys scrubbed out of its text columns (a copy only when one had any):
    exports are written where keys must never go, whatever built the frame."""
    out = df
    for col in _TEXT_COLUMNS:
        if col in df.columns and df[col].dtype.kind in "OSUT":  # T: pandas' str dtype
            clean = df[col].map(scrub_secrets, na_action="ignore")
            if not clean.equals(df[col]):
                out = out.copy() if out is df else out
                out[col] = clean
    return out


def _ns(v: Any) -> int | None:
    """A start/end value (Timestamp, datetime or epoch seconds) as epoch nanoseconds."""
    import pandas as pd

    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, (int, float)):
        return int(v * 1e9)
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


def _val(v: Any) -> Any:
    """A cell as an OpenTelemetry attribute value, or None when missing."""
    if v is None:
        return None
    try:
        if v != v:  # NaN
            return None
    except (TypeError, ValueError):  # pd.NA
        return None
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def _attributes(x: dict[str, Any], include_content: bool) -> tuple[str, dict[str, Any]]:
    """Span name and attributes for one row, following the GenAI semantic conventions."""
    kind, step = x.get("kind"), _val(x.get("step")) or ""
    a: dict[str, Any] = {
        "orchnb.run_id": x.get("run_id"), "orchnb.span_id": x.get("span_id"),
        "orchnb.kind": kind, "orchnb.pipeline": x.get("pipeline"),
        "orchnb.pattern": x.get("pattern"), "orchnb.step": step,
        "orchnb.status": x.get("status"),
    }  # fmt: skip
    for col in ("route", "raw_label", "confidence", "iteration", "item", "attempt", "cost_usd",
                "priced", "cached", "saved_usd", "simulated"):  # fmt: skip
        a[f"orchnb.{col}"] = x.get(col)
    a["gen_ai.conversation.id"] = x.get("run_id")
    provider = _val(x.get("provider"))
    if kind == "model":
        model = _val(x.get("model")) or ""
        name = model.split(":", 1)[1] if ":" in model else model
        provider = provider or (model.split(":", 1)[0] if ":" in model else None)
        a.update({
            "gen_ai.operation.name": "chat", "gen_ai.request.model": name,
            "gen_ai.response.model": name, "gen_ai.provider.name": provider,
            "gen_ai.system": provider, "gen_ai.usage.input_tokens": x.get("input_tokens"),
            "gen_ai.usage.output_tokens": x.get("output_tokens"),
            "gen_ai.usage.cache_read.input_tokens": x.get("cached_tokens"),
        })  # fmt: skip
        span_name = f"chat {name}"
    elif kind == "tool":
        tool = _val(x.get("tool")) or step
        a.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                  "gen_ai.tool.type": "function"})  # fmt: skip
        span_name = f"execute_tool {tool}"
    elif kind == "pattern" and x.get("pattern") in _AGENTS:
        a.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": step})
        span_name = f"invoke_agent {step}"
    elif kind in ("run", "pattern"):
        wf = _val(x.get("pipeline")) if kind == "run" else step
        a.update({"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": wf})
        span_name = f"invoke_workflow {wf}"
    else:
        span_name = f"step {step}"
    if x.get("status") in _ERRORS:
        err = _val(x.get("error")) or str(x.get("status"))
        a["error.type"] = err.split(":", 1)[0].strip() or str(x.get("status"))
    if include_content:
        a["orchnb.input"] = x.get("input")
        a["orchnb.output"] = x.get("output")
        if kind == "tool":
            a["gen_ai.tool.call.arguments"] = x.get("input")
            a["gen_ai.tool.call.result"] = x.get("output")
    clean = {k: v for k, v in ((k, _val(v)) for k, v in a.items()) if v is not None}
    return span_name, clean


def to_otel(
    df: pd.DataFrame,
    tracer_provider: TracerProvider | None = None,
    *,
    include_content: bool = False,
) -> int:
    """Replay a trace DataFrame as OpenTelemetry spans; returns how many were emitted.

    Each run becomes one OpenTelemetry trace; parents are started before their children, start
    and end times are kept, failed spans get ``StatusCode.ERROR`` and ``error.type``. Model calls
    are ``chat`` spans (``gen_ai.request.model``, ``gen_ai.provider.name``,
    ``gen_ai.usage.*``), tool calls ``execute_tool`` (``gen_ai.tool.name``), agent patterns
    ``invoke_agent``, runs and other patterns ``invoke_workflow``. orchnb fields travel as
    ``orchnb.*`` attributes. Prompts and outputs are exported only with
    ``include_content=True``. Needs ``pip install 'orchnb[otel]'``.

    >>> from opentelemetry.sdk.trace import TracerProvider          # doctest: +SKIP
    >>> to_otel(orchnb.traces(), TracerProvider())                  # doctest: +SKIP
    42
    """
    try:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError as e:
        raise ImportError(
            "to_otel needs the OpenTelemetry SDK: pip install 'orchnb[otel]'"
        ) from e
    provider = tracer_provider or trace.get_tracer_provider()
    tracer = provider.get_tracer("orchnb")
    rows = _scrubbed(df).to_dict("records")
    by_id = {(str(r.get("run_id")), str(r.get("span_id"))): i for i, r in enumerate(rows)}

    def parent_of(i: int) -> int | None:
        p = _val(rows[i].get("parent_id"))
        return None if p is None else by_id.get((str(rows[i].get("run_id")), str(p)))

    depth: dict[int, int] = {}
    for i in range(len(rows)):  # depth by walking up (cycle-safe)
        chain, j = [], i
        while j is not None and j not in depth and len(chain) <= len(rows):
            chain.append(j)
            j = parent_of(j)
        d = depth.get(j, -1) if j is not None else -1
        for k in reversed(chain):
            d += 1
            depth[k] = d
    order = sorted(range(len(rows)), key=lambda i: (depth[i], _ns(rows[i].get("start")) or 0))
    live: dict[int, Any] = {}
    for i in order:
        x = rows[i]
        name, attrs = _attributes(x, include_content)
        p = parent_of(i)
        # a root starts a fresh trace (an empty Context), not a child of the caller's span
        ctx = trace.set_span_in_context(live[p]) if p in live else Context()
        start = _ns(x.get("start"))
        kind = SpanKind.CLIENT if x.get("kind") == "model" else SpanKind.INTERNAL
        live[i] = tracer.start_span(name, context=ctx, kind=kind, attributes=attrs,
                                    start_time=start)  # fmt: skip
    for i in reversed(order):  # children end before their parents, as they did in the run
        x, span = rows[i], live[i]
        status = x.get("status")
        if status in _ERRORS:
            span.set_status(Status(StatusCode.ERROR, _val(x.get("error")) or str(status)))
        elif status == "ok":
            span.set_status(Status(StatusCode.OK))
        end = _ns(x.get("end"))
        start = _ns(x.get("start"))
        if end is None and start is not None:
            lat = _val(x.get("latency_ms"))
            end = start + int(lat * 1e6) if isinstance(lat, (int, float)) else start
        span.end(end_time=end)
    return len(order)
