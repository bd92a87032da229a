"""The invariants every simulated run must keep (Jepsen-style checkers over what it left).

(a) it ends within its bound; (b) spend ≤ cap + one call, with every answered call counted
(never 0 tokens); (c) every call the world saw is in a closed span; (d) the store equals the
trace; (e) only orchnb's own exceptions escape. Each check returns what it found wrong, as
sentences naming the invariant, so one run can break several at once and say so.
"""

from __future__ import annotations

import math
from typing import Any

from _world import Outcome, Scenario

import orchnb
from orchnb.exceptions import OrchnbError
from orchnb.trace import get_store


def check_all(s: Scenario, out: Outcome, limit: float, store: bool = True) -> list[str]:
    """Every invariant's complaints about one run (empty: it kept them all). ``store=False``
    leaves (d) to a caller that checks the store once several processes are done."""
    found = ends_within_bound(out, limit) + only_orchnb_errors(out)
    run = out.run
    if run is None:
        return found
    spans = list(run.trace.spans)
    found += spend_within_cap(s, spans) + every_call_has_a_closed_span(out, spans)
    if run.done and store:
        found += store_equals_trace(run)
    return found


def ends_within_bound(out: Outcome, limit: float) -> list[str]:
    if out.finished:
        return []
    if out.stalled is not None:
        return [f"(a) hang: no span began or ended and no model was asked for "
                f"{out.stalled:.1f}s, longer than any one call may take (a deadlock); the "
                f"whole run's bound is {limit:.1f}s ({'; '.join(out.notes)})"]
    return [f"(a) hang: the run had not ended after its bound of {limit:.1f}s "
            f"({'; '.join(out.notes)})"]


def only_orchnb_errors(out: Outcome) -> list[str]:
    error = out.raised if out.raised is not None else getattr(out.run, "error", None)
    if error is None or isinstance(error, OrchnbError):
        return []
    return [f"(e) a {type(error).__module__}.{type(error).__name__} escaped, not an "
            f"OrchnbError: {str(error)[:300]!r}"]


def spend_within_cap(s: Scenario, spans: list[Any]) -> list[str]:
    paid = [sp for sp in spans if sp.kind == "model" and sp.status == "ok" and not sp.cached]
    found = [f"(b) model call {sp.span_id} ({sp.provider}:{sp.model}) answered but counted "
             f"{sp.input_tokens}/{sp.output_tokens} tokens: unknown usage counted as zero"
             for sp in paid if not (sp.input_tokens or 0) > 0][:3]
    tokens = [(sp.input_tokens or 0) + (sp.output_tokens or 0) for sp in paid]
    usd = [sp.cost_usd for sp in paid
           if sp.cost_usd is not None and not math.isnan(sp.cost_usd)]
    if s.max_calls is not None and len(paid) > s.max_calls + 1:
        found.append(f"(b) {len(paid)} calls paid against Budget(max_calls={s.max_calls})")
    if s.max_tokens is not None and sum(tokens) > s.max_tokens + max(tokens, default=0):
        found.append(f"(b) {sum(tokens)} tokens spent against Budget(max_tokens="
                     f"{s.max_tokens}), more than one call ({max(tokens)}) over")
    if s.max_usd is not None and sum(usd) > s.max_usd + max(usd, default=0.0) + 1e-12:
        found.append(f"(b) ${sum(usd):.6f} spent against Budget(max_usd={s.max_usd}), more "
                     f"than one call (${max(usd):.6f}) over")
    return found


def every_call_has_a_closed_span(out: Outcome, spans: list[Any]) -> list[str]:
    found = []
    still = [sp for sp in spans if sp.status == "running"]
    if still and out.run.done:
        found.append(f"(c) {len(still)} span(s) of an ended run still 'running': "
                     f"{[(sp.kind, sp.step) for sp in still[:5]]}")
    attempts = sum(sp.attempt or 0 for sp in spans if sp.kind == "model")
    if out.attempts_seen > attempts:
        found.append(f"(c) the models saw {out.attempts_seen} requests but the trace records "
                     f"{attempts} attempts: calls without a span")
    return found


def store_equals_trace(run: Any) -> list[str]:
    store = get_store()
    try:
        store.flush()
        df = orchnb.traces(run_id=run.id)
    except Exception as e:  # the store must take any text; a failure here is the finding
        return [f"(d) flushing or reading the store raised {type(e).__name__}: {e}"[:400]]
    stored = sorted(zip(df.span_id, df.status, strict=True))
    # run.trace.df is a view of these spans (and builds a DataFrame: 40 ms a run).
    traced = sorted((sp.span_id, sp.status) for sp in run.trace.spans)
    if stored == traced:
        return []
    lost = sorted(set(traced) - set(stored))
    extra = sorted(set(stored) - set(traced))
    alive = store._thread.is_alive()
    return [f"(d) the store differs from run.trace: {len(traced)} spans traced, {len(stored)} "
            f"stored; missing/different {lost[:4]}, unexpected {extra[:4]}; span writer "
            f"thread alive: {alive}"]
