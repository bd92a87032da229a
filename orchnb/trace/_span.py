"""Spans: one record per run, pattern, step, model call and tool call."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Literal

SpanKind = Literal["run", "pattern", "step", "model", "tool", "memory"]
SpanStatus = Literal["running", "ok", "error", "cancelled", "budget_exceeded", "max_iterations",
                     "crashed"]
"""``crashed``: only as read back from the store, for a run whose process died mid-run."""


@dataclass(slots=True)
class Span:
    """One timed unit of work in a run, linked to its parent by ``parent_id``.

    Field names are the DataFrame's column names (see ``orchnb.trace.COLUMNS``); when exported to
    OpenTelemetry they map to the ``gen_ai.*`` semantic conventions.
    """

    run_id: str
    """The run this span belongs to."""
    span_id: str
    """Unique id of the span."""
    parent_id: str | None
    """The enclosing span (None for the run span)."""
    pipeline: str
    """Name of the top-level pipeline."""
    pattern: str
    """chain, router, mapreduce, agent, plan_execute, team (the nearest enclosing pattern)."""
    step: str
    """Step name (for model/tool spans: the step that made the call)."""
    kind: SpanKind
    """run, pattern, step, model or tool."""
    status: SpanStatus = "running"
    error: str | None = None
    """Error type and message when status is not ok."""
    start: float = 0.0
    """Wall-clock start, seconds since the epoch."""
    end: float | None = None
    latency_ms: float | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: float | None = None
    """USD cost; NaN when the price is unknown (``priced`` is False), never a silent 0."""
    priced: bool | None = None
    """For model spans: whether a price was found for the model."""
    route: str | None = None
    """Router spans: the route taken."""
    raw_label: str | None = None
    """Router spans: what the classifier returned before parsing."""
    confidence: float | None = None
    """Router spans: classifier confidence, where there is one."""
    iteration: int | None = None
    """Agent / plan / team loops: the 1-based iteration, turn or plan step."""
    item: int | None = None
    """Map-reduce: the 0-based item index."""
    attempt: int | None = None
    """Model/tool spans: attempts made (1 = no retry)."""
    cached: bool | None = None
    """Model spans: answered from the response cache (then cost_usd is 0, saved_usd the saving)."""
    saved_usd: float | None = None
    simulated: bool | None = None
    """Model spans: the model is a sim: model."""
    tool: str | None = None
    """Tool spans: the tool's name."""
    input: str | None = None
    """Rendered prompt / arguments / step input (truncated for very large values)."""
    output: str | None = None
    """Response text / tool result / step output (truncated for very large values)."""
    meta: dict[str, Any] | None = None
    """Anything else (plan versions, tool calls, agent names, parameters) as a JSON-able dict;
    serialised to JSON text only by the store, the DataFrame and the exports."""
    ttft_ms: float | None = None
    """Streamed model calls: milliseconds from the request to the first token."""
    replayed: bool | None = None
    """Model/tool spans: answered from a recorded run (``run.fork`` / ``run.replay``), not
    called: ``cost_usd`` is 0 and ``saved_usd`` what the recorded call cost."""
    forked_from: str | None = None
    """Run spans of a fork or a replay: the run id it was made from."""
    worker: str | None = None
    """Where the span ran when not in this process (``executor="ray"``: ``host:pid``)."""
    usage_estimated: bool | None = None
    """Model spans: the provider reported no usage, so the token counts are estimated from the
    text (budgets count them; charts flag them)."""
    cache_write_tokens: int | None = None
    """Model spans: prompt tokens written to the provider's prompt cache (Anthropic's
    ``cache_creation_input_tokens``), 5-minute and 1-hour writes together; part of
    ``input_tokens`` and priced at the cache-write rate."""
    cache_write_1h_tokens: int | None = None
    """Model spans: the part of ``cache_write_tokens`` written with the 1-hour lifetime."""
    batch: bool | None = None
    """Model spans: sent through a provider's batch API (priced at the batch rate)."""
    service_tier: str | None = None
    """Model spans: the provider's service tier of the call (OpenAI ``flex``, ``priority``,
    ``default``), as the provider reported it; priced at that tier's rate."""

    def to_row(self) -> tuple[Any, ...]:
        """The span as a tuple in ``COLUMNS`` order (``meta`` as JSON text)."""
        row = _row(self)
        meta = row[_META]
        if meta is None or isinstance(meta, str):
            return row
        return (*row[:_META], _meta_json(meta), *row[_META + 1:])


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Span))
"""The trace DataFrame's columns, in order."""



def _row_reader() -> Any:
    # The span writer turns every span into a row: a function that reads the slots by name in
    # one tuple display runs on the interpreter's specialised slot reads, ~4x fewer
    # instructions than attrgetter's generic lookup of each name (the names are the fields').
    source = "def _row(s):\n    return (" + ", ".join(f"s.{c}" for c in COLUMNS) + ",)\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<orchnb span row>", "exec"), namespace)
    return namespace["_row"]


_row = _row_reader()


def _meta_encoder() -> Any:
    """``json.dumps(meta, default=str, ensure_ascii=False)``, the same text: the stdlib builds
    its C encoder (and two frames) on every call; this one is built once."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the stdlib's own path
        return json.JSONEncoder(default=str, ensure_ascii=False).encode
    # No markers (shared by every thread, they could see another's object as a cycle): a
    # cycle recurses to a RecursionError, and the stdlib's path then says what it is.
    encode = make(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False,
                  True)
    join = "".join

    def meta_json(meta: Any) -> str:
        try:
            return join(encode(meta, 0))
        except RecursionError:
            return json.dumps(meta, default=str, ensure_ascii=False)

    return meta_json


_meta_json = _meta_encoder()
_META = COLUMNS.index("meta")

MAX_TEXT = 20_000
"""Characters of a span's ``input`` / ``output`` kept (the rest is cut, saying how much)."""


def clip(text: str) -> str:
    """``text`` bounded to :data:`MAX_TEXT` characters (the one place span text is cut).

    >>> clip("short")
    'short'
    """
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… [{len(text)} chars]"


def safe_text(text: str) -> str:
    """``text`` encodable as UTF-8: a lone surrogate (from a provider's ``"\\ud800"``) becomes
    U+FFFD, a split surrogate pair is joined; anything else is returned as it is.

    >>> safe_text("a\\ud800b")
    'a\\ufffdb'
    """
    if text.isascii():  # O(1) in CPython: most text is done here
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
