"""Who listens to a run's events: its own trace (the recorder), the store, progress bars,
global hooks and the run's own hooks, wired into one event bus per set of listeners."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..trace import get_store
from ._config import RunOptions
from ._events import EventBus, Subscription, global_subscriptions
from ._progress import ProgressBars

if TYPE_CHECKING:
    from ._run import Run


class _Recorder:
    """The run's own trace: a listener like any other."""

    __slots__ = ()

    def on_span_start(self, *, span: Any, run: Run) -> None:
        run._open[span.span_id] = span  # a paused run's open steps (run.fork needs them)

    def on_span_end(self, *, span: Any, run: Run) -> None:
        run._open.pop(span.span_id, None)
        run.trace.spans.append(span)


class _StoreWriter:
    """Persists spans as they end (and run spans as they start: a run that dies shows up)."""

    __slots__ = ("ensure_writer", "write", "write_run")

    def __init__(self, store: Any):
        self.write = store.write
        self.write_run = store.write_run
        self.ensure_writer = store.ensure_writer

    def on_span_start(self, *, span: Any, run: Run) -> None:
        if span.kind == "run":
            # A writer thread that died is replaced (and said so) before this run's spans queue.
            self.ensure_writer()
            self.write(span)
            # What orchnb.load_run needs to rebuild the run in another kernel.
            if run.source is not None or not isinstance(run.input, str):
                self.write_run(run.id, run.source, _json_or_none(run.input))

    def on_span_end(self, *, span: Any, run: Run) -> None:
        self.write(span)


class _RecordAndStore(_StoreWriter):
    """The recorder and the store writer bound into one listener (a persisted run's two
    engine listeners: one call per event instead of two)."""

    __slots__ = ()

    def on_span_start(self, *, span: Any, run: Run) -> None:
        run._open[span.span_id] = span
        if span.kind == "run":
            _StoreWriter.on_span_start(self, span=span, run=run)

    def on_span_end(self, *, span: Any, run: Run) -> None:
        run._open.pop(span.span_id, None)
        run.trace.spans.append(span)
        self.write(span)


_RECORDER = Subscription(_Recorder(), trusted=True)
_BARS = Subscription(ProgressBars(), trusted=True)
_WRITERS: dict[int, tuple[Any, Subscription]] = {}
_BUSES: dict[tuple[int, ...], EventBus] = {}


def _recorder_and_store() -> Subscription:
    store = get_store()
    hit = _WRITERS.get(id(store))
    if hit is None or hit[0] is not store:
        hit = _WRITERS[id(store)] = (store, Subscription(_RecordAndStore(store), trusted=True))
    return hit[1]


def bus_for(options: RunOptions, extra: Sequence[Any]) -> EventBus:
    """The event bus of a run with ``options`` and its own listeners ``extra`` (buses without
    run-own listeners are shared: building one per run would cost more than the run)."""
    subs = [_recorder_and_store() if options.persist else _RECORDER]
    if options.progress:
        subs.append(_BARS)
    subs += global_subscriptions()
    if extra:
        return EventBus([*subs, *(Subscription(h) for h in extra)])
    key = tuple(map(id, subs))
    bus = _BUSES.get(key)
    if bus is None or bus.subscriptions != subs:
        if len(_BUSES) > 64:
            _BUSES.clear()
        bus = _BUSES[key] = EventBus(subs)
    return bus


def _json_or_none(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
