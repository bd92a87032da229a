"""Export trace DataFrames: Parquet, CSV, and OpenTelemetry spans (GenAI semantic conventions).

``to_otel`` replays finished spans through an OpenTelemetry ``TracerProvider`` (the global one
by default), keeping parent/child links, start/end times and error status, with ``gen_ai.*``
attributes on model, tool and agent spans. Prompts and outputs are left out unless asked for.

``_attributes`` is the one mapping from orchnb's span fields to the GenAI semantic conventions
(checked against the conventions' registry after they moved to
open-telemetry/semantic-conventions-genai; ``gen_ai.system`` and the prompt/completion
attributes are gone, content travels as ``gen_ai.input.messages`` / ``gen_ai.output.messages``
JSON). The live exporter (``_otel_live.py``) uses the same mapping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import scrub_secrets
from ._span import safe_text

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
    """``df`` with API keys scrubbed out of its text columns and text UTF-8 cannot encode (a
    lone surrogate) replaced in any column (a copy only when one had any): exports are written
    where keys must never go, in encodings that take no surrogate, whatever built the frame."""
    out = df
    for col in df.columns:
        kind = df[col].dtype.kind
        if kind not in "OSUT":  # T: pandas' str dtype
            continue
        clean = df[col]
        if kind == "O":  # Arrow-backed text cannot hold a surrogate: only objects may
            clean = clean.map(_safe, na_action="ignore")
        if col in _TEXT_COLUMNS:
            clean = clean.map(scrub_secrets, na_action="ignore")
        if not clean.equals(df[col]):
            out = out.copy() if out is df else out
            out[col] = clean
    return out


def _safe(v: Any) -> Any:
    return safe_text(v) if isinstance(v, str) else v


def _ns(v: Any) -> int | None:
    """A start/end value (epoch seconds, Timestamp or datetime) as epoch nanoseconds."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):  # live spans: plain epoch seconds, no pandas needed
        return None if math.isnan(v) else int(v * 1e9)
    import pandas as pd

    if v is pd.NaT:
        return None
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
    if isinstance(v, str):
        return safe_text(v)
    if isinstance(v, (bool, int, float)):
        return v
    return safe_text(str(v))


def _json(text: Any) -> Any:
    """``text`` parsed as JSON, or None when it is not JSON (or was clipped)."""
    if not isinstance(text, str) or text[:1] not in ("[", "{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _text_message(role: str, text: str, finish: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish:
        m["finish_reason"] = finish
    return m


def _input_messages(text: str) -> list[dict[str, Any]]:
    """A model span's input (one prompt, or the JSON of the messages sent) as the GenAI
    input-messages schema: ``[{role, parts: [{type: text|tool_call|tool_call_response}]}]``."""
    sent = _json(text)
    if not (isinstance(sent, list) and sent and all(isinstance(m, dict) and "role" in m
                                                    for m in sent)):  # fmt: skip
        return [_text_message("user", text)]
    out = []
    for m in sent:
        parts: list[dict[str, Any]] = []
        if m["role"] == "tool":
            parts.append({"type": "tool_call_response", "id": m.get("tool_call_id"),
                          "response": m.get("content", "")})  # fmt: skip
        elif m.get("content"):
            parts.append({"type": "text", "content": m["content"]})
        for c in m.get("tool_calls") or ():
            parts.append({"type": "tool_call", "id": c.get("id"), "name": c.get("name"),
                          "arguments": c.get("arguments")})  # fmt: skip
        out.append({"role": m["role"], "parts": parts})
    return out


def _output_messages(text: str | None, meta: Any) -> list[dict[str, Any]]:
    """A model span's reply (text and/or the tool calls kept in ``meta``) as the GenAI
    output-messages schema, with the finish reason the reply implies."""
    info = _json(meta)
    calls = info.get("tool_calls") if isinstance(info, dict) else None
    parts: list[dict[str, Any]] = []
    if text and not (calls and _json(text) == calls):  # a tool-calls-only reply echoes them
        parts.append({"type": "text", "content": text})
    for c in calls or ():
        parts.append({"type": "tool_call", "name": c.get("name"),
                      "arguments": c.get("arguments")})  # fmt: skip
    finish = "tool_call" if calls else "stop"
    return [{"role": "assistant", "parts": parts, "finish_reason": finish}]


def _attributes(x: Mapping[str, Any], include_content: bool) -> tuple[str, dict[str, Any]]:
    """Span name and attributes for one span (a DataFrame row or a live span's fields).

    The one mapping from orchnb's columns to the OpenTelemetry GenAI semantic conventions,
    shared by :func:`to_otel` and :class:`orchnb.trace.OTelListener`.
    """
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
    inp, out = _val(x.get("input")), _val(x.get("output"))
    if kind == "model":
        span_name, extra, content = _model_attributes(x, inp, out)
    elif kind == "tool":
        tool = _val(x.get("tool")) or step
        extra = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                 "gen_ai.tool.type": "function"}  # fmt: skip
        span_name = f"execute_tool {tool}"
        content = {"gen_ai.tool.call.arguments": inp, "gen_ai.tool.call.result": out}
    elif kind in ("run", "pattern"):
        span_name, extra, content = _workflow_attributes(x, kind, step, inp, out)
    else:
        span_name, extra = f"step {step}", {}
        content = {"orchnb.input": inp, "orchnb.output": out}
    a.update(extra)
    if x.get("status") in _ERRORS:
        err = _val(x.get("error")) or str(x.get("status"))
        a["error.type"] = err.split(":", 1)[0].strip() or str(x.get("status"))
    oi, oi_content = _openinference(x, a, inp, out)
    a.update(oi)
    if include_content:  # prompts and outputs may hold personal data: opt-in only
        a.update(content, **oi_content)
    clean = {k: v for k, v in ((k, _val(v)) for k, v in a.items()) if v is not None}
    return span_name, clean


_Parts = tuple[str, dict[str, Any], dict[str, Any]]
"""Span name, GenAI attributes, content attributes (the last recorded only on opt-in)."""


def _model_attributes(x: Mapping[str, Any], inp: Any, out: Any) -> _Parts:
    """A model call: a chat (messages as content) or an embeddings call (raw input/output)."""
    model = _val(x.get("model")) or ""
    name = model.split(":", 1)[1] if ":" in model else model
    provider = _val(x.get("provider")) or (model.split(":", 1)[0] if ":" in model else None)
    meta = _json(_val(x.get("meta")))
    op = "embeddings" if isinstance(meta, dict) and meta.get("embedding") else "chat"
    a = {
        "gen_ai.operation.name": op, "gen_ai.provider.name": provider,
        "gen_ai.request.model": name, "gen_ai.usage.input_tokens": x.get("input_tokens"),
        "gen_ai.usage.output_tokens": x.get("output_tokens"),
        "gen_ai.usage.cache_read.input_tokens": x.get("cached_tokens"),
    }  # fmt: skip
    content: dict[str, Any] = {}
    if op == "chat":
        if inp is not None:
            content["gen_ai.input.messages"] = json.dumps(_input_messages(inp))
        if out is not None and x.get("status") == "ok":
            content["gen_ai.output.messages"] = json.dumps(
                _output_messages(out, _val(x.get("meta"))))
    else:
        content = {"orchnb.input": inp, "orchnb.output": out}
    return f"{op} {name}".strip(), a, content


def _workflow_attributes(x: Mapping[str, Any], kind: Any, step: Any, inp: Any, out: Any) -> _Parts:
    """A run or pattern span: an agent invocation for agent patterns, else a workflow."""
    if x.get("pattern") in _AGENTS:  # an agent pattern, nested or run on its own
        a = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": step}
        span_name = f"invoke_agent {step}"
    else:
        wf = _val(x.get("pipeline")) if kind == "run" else step
        a = {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": wf}
        span_name = f"invoke_workflow {wf}"
    content: dict[str, Any] = {}
    if inp is not None:
        content["gen_ai.input.messages"] = json.dumps([_text_message("user", inp)])
    if out is not None:
        content["gen_ai.output.messages"] = json.dumps(
            [_text_message("assistant", out, "stop")])
    return span_name, a, content


_OI_KINDS = {"chat": "LLM", "embeddings": "EMBEDDING", "execute_tool": "TOOL",
             "invoke_agent": "AGENT", "invoke_workflow": "CHAIN"}


def _openinference(x: Mapping[str, Any], a: Mapping[str, Any], inp: Any, out: Any
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenInference attributes beside the GenAI ones (Phoenix and Arize read these): the span
    kind, model, token counts and tool name; and, as content, ``input.value``/``output.value``.
    """
    kind = _OI_KINDS.get(str(a.get("gen_ai.operation.name")), "CHAIN")  # steps: CHAIN
    oi: dict[str, Any] = {"openinference.span.kind": kind}
    if kind in ("LLM", "EMBEDDING"):
        tin, tout = _val(x.get("input_tokens")), _val(x.get("output_tokens"))
        oi.update({"llm.model_name": a.get("gen_ai.request.model"),
                   "llm.provider": a.get("gen_ai.provider.name"),
                   "llm.token_count.prompt": tin, "llm.token_count.completion": tout,
                   "llm.token_count.total": None if tin is None and tout is None
                   else int(tin or 0) + int(tout or 0)})
    elif kind == "TOOL":
        oi["tool.name"] = a.get("gen_ai.tool.name")
    content: dict[str, Any] = {}
    for key, value in (("input", inp), ("output", out)):
        if value is not None:
            content[f"{key}.value"] = str(value)
            content[f"{key}.mime_type"] = ("application/json" if _json(str(value)) is not None
                                           else "text/plain")
    return oi, content


def _kind_and_status(x: Mapping[str, Any]) -> tuple[Any, Any]:
    """The OpenTelemetry span kind (CLIENT for model calls) and status of one span."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    kind = SpanKind.CLIENT if x.get("kind") == "model" else SpanKind.INTERNAL
    status = x.get("status")
    if status in _ERRORS:
        return kind, Status(StatusCode.ERROR, _val(x.get("error")) or str(status))
    return kind, Status(StatusCode.OK if status == "ok" else StatusCode.UNSET)


def _times(x: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Start and end in epoch nanoseconds (end from the latency when it is missing)."""
    start, end = _ns(x.get("start")), _ns(x.get("end"))
    if end is None and start is not None:
        lat = _val(x.get("latency_ms"))
        end = start + int(lat * 1e6) if isinstance(lat, (int, float)) else start
    return start, end


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
    ``orchnb.*`` attributes. Prompts and outputs (``gen_ai.input.messages`` /
    ``gen_ai.output.messages``, ``gen_ai.tool.call.arguments`` / ``.result``) are exported only
    with ``include_content=True``. Needs ``pip install 'orchnb[otel]'``. To send spans while
    runs happen, see :class:`orchnb.trace.OTelListener`.

    >>> from opentelemetry.sdk.trace import TracerProvider          # doctest: +SKIP
    >>> to_otel(orchnb.traces(), TracerProvider())                  # doctest: +SKIP
    42
    """
    try:
        from opentelemetry import trace
        from opentelemetry.context import Context
    except ImportError as e:
        raise ImportError(
            "to_otel needs the OpenTelemetry SDK: pip install 'orchnb[otel]'"
        ) from e
    provider = tracer_provider or trace.get_tracer_provider()
    tracer = provider.get_tracer("orchnb")
    rows = _scrubbed(df).to_dict("records")
    parent, order = _parents_first(rows)
    live: dict[int, Any] = {}
    for i in order:
        x = rows[i]
        name, attrs = _attributes(x, include_content)
        p = parent[i]
        # a root starts a fresh trace (an empty Context), not a child of the caller's span
        ctx = trace.set_span_in_context(live[p]) if p in live else Context()
        kind, _ = _kind_and_status(x)
        live[i] = tracer.start_span(name, context=ctx, kind=kind, attributes=attrs,
                                    start_time=_times(x)[0])  # fmt: skip
    for i in reversed(order):  # children end before their parents, as they did in the run
        x, span = rows[i], live[i]
        span.set_status(_kind_and_status(x)[1])
        span.end(end_time=_times(x)[1])
    return len(order)


def _parents_first(rows: list[dict[str, Any]]) -> tuple[list[int | None], list[int]]:
    """Each row's parent position, and the rows ordered by depth then start (cycle-safe)."""
    by_id = {(str(r.get("run_id")), str(r.get("span_id"))): i for i, r in enumerate(rows)}

    def parent_of(i: int) -> int | None:
        p = _val(rows[i].get("parent_id"))
        return None if p is None else by_id.get((str(rows[i].get("run_id")), str(p)))

    parent = [parent_of(i) for i in range(len(rows))]
    depth: dict[int, int] = {}
    for i in range(len(rows)):  # depth by walking up (cycle-safe)
        chain, j = [], i
        while j is not None and j not in depth and len(chain) <= len(rows):
            chain.append(j)
            j = parent[j]
        d = depth.get(j, -1) if j is not None else -1
        for k in reversed(chain):
            d += 1
            depth[k] = d
    order = sorted(range(len(rows)), key=lambda i: (depth[i], _ns(rows[i].get("start")) or 0))
    return parent, order
