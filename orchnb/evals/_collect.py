"""Per-row columns read back from an eval run's spans: status, latency, cost, tokens and, for a
router, what its classifier said.

A span belongs to the row of its ancestor directly under the run span (tagged with the row's
``item``), so nested fan-outs inside a row (a map-reduce route, an agent's tools) do not confuse
rows. Unknown prices stay NaN through every sum: a row with an unpriced call costs NaN.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..engine import as_text

if TYPE_CHECKING:
    from ..engine import Run
    from ..trace import Span

_NAN = math.nan
_CALLS = ("model", "tool", "memory")
_CLASSIFIED = ("route", "raw_label", "confidence", "defaulted", "reason", "similarity", "score")


class RowIndex:
    """Which row each span of an eval run belongs to."""

    def __init__(self, run: Run, n: int):
        spans = list(run.trace.spans)
        root = next((s for s in reversed(spans) if s.kind == "run"), None)
        # Interrupted before the run span ended: no row counts as done.
        self.spans: list[Span] = spans if root is not None else []
        self.root_id = root.span_id if root is not None else None
        self.by_id = {s.span_id: s for s in self.spans}
        self.tops: list[Span | None] = [None] * n
        """Each row's top span (its classify span, router span or pipeline span)."""
        self._row: dict[str, int | None] = {}
        for s in self.spans:
            if s.parent_id == self.root_id and s.item is not None and 0 <= s.item < n:
                self.tops[s.item] = s
                self._row[s.span_id] = s.item
        self.outputs = run.output if isinstance(run.output, list) else [None] * n

    def row(self, span: Span) -> int | None:
        """The row of ``span`` (None: the run's own work, or a span of no row)."""
        path = []
        s: Span | None = span
        while s is not None and s.span_id not in self._row:
            path.append(s.span_id)
            s = self.by_id.get(s.parent_id)  # type: ignore[arg-type]
        i = None if s is None else self._row[s.span_id]
        for sid in path:  # remembered: each span's ancestors are walked once
            self._row[sid] = i
        return i

    def is_setup(self, span: Span) -> bool:
        """A call the run made for all rows at once (an embedding classifier's batches)."""
        return span.parent_id == self.root_id and span.item is None

    def output_texts(self) -> list[str | None]:
        return [None if o is None else as_text(o) for o in self.outputs]


def _paid(span: Span) -> float:
    return _NAN if span.cost_usd is None else span.cost_usd


def _listed(span: Span) -> float:
    """What a call costs at list price: a cache hit counts at what it saved, a batch call at
    its price outside a batch."""
    c = _paid(span)
    return c + (span.saved_usd or 0.0) if span.cached or span.batch else c


# -- any pipeline --------------------------------------------------------------------------------
def pipeline_columns(run: Run, n: int) -> dict[str, list[Any]]:
    """Per-row status, error, latency, service time, cost (paid and list), tokens and calls
    (cached, batched, and what batching saved).

    ``service_ms`` adds up the row's own calls (model, tool, memory spans); the rest of its
    latency is time spent waiting (for a worker, a thread, the event loop) or in Python.
    """
    idx = RowIndex(run, n)
    cols: dict[str, list[Any]] = {
        "status": ["not run"] * n, "error": [None] * n, "latency_ms": [_NAN] * n,
        "service_ms": [0.0] * n, "cost_usd": [0.0] * n, "list_usd": [0.0] * n,
        "input_tokens": [0] * n, "output_tokens": [0] * n, "calls": [0] * n,
        "cached_calls": [0] * n, "batch_calls": [0] * n, "batch_saved_usd": [0.0] * n}
    for i, t in enumerate(idx.tops):
        if t is not None:
            cols["status"][i] = t.status
            cols["error"][i] = t.error if t.status != "ok" else None
            cols["latency_ms"][i] = _NAN if t.latency_ms is None else t.latency_ms
    for s in idx.spans:
        i = idx.row(s) if s.kind in _CALLS else None
        if i is None:
            continue
        if s.latency_ms is not None and not s.cached:
            cols["service_ms"][i] += s.latency_ms
        if s.kind == "model":
            cols["cost_usd"][i] += _paid(s)
            cols["list_usd"][i] += _listed(s)
            cols["input_tokens"][i] += s.input_tokens or 0
            cols["output_tokens"][i] += s.output_tokens or 0
            cols["calls"][i] += 1
            cols["cached_calls"][i] += bool(s.cached)
            if s.batch and not s.cached:
                cols["batch_calls"][i] += 1
                cols["batch_saved_usd"][i] += s.saved_usd or 0.0
    cols["output"] = idx.output_texts()
    cols.update(prompt_cache_columns(idx, n))
    return cols


PROMPT_CACHE = ("prompt_tokens", "cache_read_tokens", "cache_write_tokens",
                "prompt_cache_saved_usd")
"""Per-row prompt-cache columns of an eval (see :func:`prompt_cache_columns`)."""


def prompt_cache_columns(idx: RowIndex, n: int) -> dict[str, list[Any]]:
    """Each row's model calls through the prompt cache: input tokens of the calls made, cache
    reads and writes, and what the prompt cache saved (priced by the trace's
    :func:`~orchnb.trace.prompt_cache`; NaN when a call is unpriced)."""
    from ..trace import calls_frame, prompt_cache

    cols: dict[str, list[Any]] = {k: [0] * n for k in PROMPT_CACHE}
    cols["prompt_cache_saved_usd"] = [0.0] * n
    rows, calls = [], []
    for s in idx.spans:
        i = idx.row(s) if s.kind == "model" else None
        if i is not None:
            rows.append(i)
            calls.append(s)
    if not calls:
        return cols
    pc = prompt_cache(calls_frame(calls))
    for i, *vals in zip(rows, *(pc[k].tolist() for k in PROMPT_CACHE)):
        for k, v in zip(PROMPT_CACHE, vals):
            cols[k][i] += v
    return cols


# -- a router ------------------------------------------------------------------------------------
def router_columns(run: Run, n: int, classifier: str, full: bool) -> dict[str, Any]:
    """Per-row columns of a router eval: what the classifier said (route, raw_label,
    confidence, defaulted, reason, similarity, score), error, latency, service time, cost (paid,
    saved, classifier and routes at list price), calls, output and ``done``; plus ``_setup_usd``
    (embedding the examples, once) and ``_observed`` (mean output tokens of each route step)."""
    idx = RowIndex(run, n)
    clf = _classify_spans(idx, classifier) if full else list(idx.tops)
    cols = _classified(idx, clf)
    money, setup, observed = _money(idx, {s.span_id for s in clf if s is not None})
    if n and (setup["queries"] or setup["queries_listed"]):
        # Batched query embeddings: each row's share (they are per-query costs).
        for i in range(n):
            money["cost_usd"][i] += setup["queries"] / n
            money["classifier_usd"][i] += setup["queries_listed"] / n
    cols.update(money, output=idx.output_texts(), done=[t is not None for t in idx.tops],
                _setup_usd=setup["examples"], _observed=observed)
    cols.update(prompt_cache_columns(idx, n))
    return cols


def _classify_spans(idx: RowIndex, classifier: str) -> list[Span | None]:
    """Full-pipeline evals: each row's classifier step, the child of its router span."""
    row_of = {id(t): i for i, t in enumerate(idx.tops) if t is not None}
    clf: list[Span | None] = [None] * len(idx.tops)
    for s in idx.spans:
        if s.kind == "step" and s.step == classifier and s.route is not None:
            parent = idx.by_id.get(s.parent_id)  # type: ignore[arg-type]
            i = row_of.get(id(parent)) if parent is not None else None
            if i is not None and clf[i] is None:
                clf[i] = s
    return clf


def _classified(idx: RowIndex, clf: list[Span | None]) -> dict[str, list[Any]]:
    n = len(idx.tops)
    cols: dict[str, list[Any]] = {k: [None] * n for k in (*_CLASSIFIED, "error")}
    cols["latency_ms"] = [_NAN] * n
    for i, (t, c) in enumerate(zip(idx.tops, clf)):
        if t is not None:
            cols["latency_ms"][i] = t.latency_ms if t.latency_ms is not None else _NAN
            if t.status != "ok":
                cols["error"][i] = t.error or t.status
        if c is None:
            continue
        meta = c.meta or {}
        cols["route"][i] = c.route
        cols["raw_label"][i] = c.raw_label
        cols["confidence"][i] = c.confidence
        cols["defaulted"][i] = bool(meta.get("defaulted", False))
        cols["reason"][i] = meta.get("reason")
        cols["similarity"][i] = meta.get("similarity")
        cols["score"][i] = meta.get("score", meta.get("similarity"))
    return cols


def _money(idx: RowIndex, clf_ids: set[str]
           ) -> tuple[dict[str, list[Any]], dict[str, float], dict[str, float]]:
    """Each row's model calls: cost paid and saved, classifier and route cost at list price,
    service time, calls; the run's own batched calls apart (``setup``); and the mean output
    tokens of each route step (``observed``)."""
    n = len(idx.tops)
    cols: dict[str, list[Any]] = {k: [0.0] * n for k in (
        "cost_usd", "saved_usd", "classifier_usd", "route_usd", "service_ms")}
    cols["calls"], cols["cached_calls"], cols["batch_calls"] = [0] * n, [0] * n, [0] * n
    cols["batch_saved_usd"] = [0.0] * n
    setup = {"examples": 0.0, "queries": 0.0, "queries_listed": 0.0}
    out_tokens: dict[str, list[int]] = {}
    for s in idx.spans:
        if s.kind != "model":
            continue
        if idx.is_setup(s):
            if s.step.endswith(":examples"):
                setup["examples"] += _listed(s)
            else:
                setup["queries"] += _paid(s)
                setup["queries_listed"] += _listed(s)
            continue
        i = idx.row(s)
        if i is None:
            continue
        cols["cost_usd"][i] += _paid(s)
        if not s.cached and s.latency_ms is not None:
            cols["service_ms"][i] += s.latency_ms
        cols["saved_usd"][i] += (s.saved_usd or 0.0) if s.cached else 0.0
        cols["calls"][i] += 1
        cols["cached_calls"][i] += bool(s.cached)
        if s.batch and not s.cached:
            cols["batch_calls"][i] += 1
            cols["batch_saved_usd"][i] += s.saved_usd or 0.0
        if s.parent_id in clf_ids:
            cols["classifier_usd"][i] += _listed(s)
        else:
            cols["route_usd"][i] += _listed(s)
            if s.output_tokens is not None and not (s.meta or {}).get("embedding"):
                out_tokens.setdefault(s.step, []).append(s.output_tokens)
    observed = {k: sum(v) / len(v) for k, v in out_tokens.items()}
    return cols, setup, observed
