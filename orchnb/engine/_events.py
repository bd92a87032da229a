"""The engine's event stream: span start / end, stream deltas, progress and run end.

Everything that follows a run subscribes here: the run's recorder, the SQLite store, progress
bars, the playground, TraceView, eval collectors and OpenTelemetry export. Nothing else writes a
span. A listener is any object with some of these methods, all keyword-only::

    on_run_start(*, run)
    on_span_start(*, span, run)
    on_stream_delta(*, span, text, run)
    on_span_end(*, span, run)
    on_progress(*, run, label, done, total, failed)
    on_run_end(*, run)

A listener receives only the keywords its method accepts (``**_`` takes them all), so events can
gain fields without breaking anyone. Methods that are coroutine functions are scheduled on the
run's loop, never awaited by the run. A listener that raises is logged once and the run goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger("orchnb")

EVENTS: dict[str, tuple[str, ...]] = {
    "on_run_start": ("run",),
    "on_span_start": ("span", "run"),
    "on_stream_delta": ("span", "text", "run"),
    "on_span_end": ("span", "run"),
    "on_progress": ("run", "label", "done", "total", "failed"),
    "on_run_end": ("run",),
}
"""Each event and the keywords it is published with."""


class Listener(Protocol):
    """What :func:`orchnb.add_hook` takes: an object with any of the event methods.

    >>> class Count:
    ...     calls = 0
    ...     def on_span_end(self, *, span, **_):
    ...         Count.calls += span.kind == "model"
    >>> import orchnb
    >>> orchnb.add_hook(Count()); orchnb.remove_hook(Count)  # doctest: +SKIP
    """


def _adapt(listener: Any, event: str) -> Callable[..., Any] | None:
    """The listener's method for ``event``, called with the keywords it accepts only, isolated."""
    method = getattr(listener, event, None)
    if method is None or not callable(method):
        return None
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        params = ()
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params)
    accepted = None if takes_all else {
        p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    fn = method
    if accepted is not None and not set(EVENTS[event]) <= accepted:
        keep = accepted

        def fn(**kw: Any) -> Any:
            return method(**{k: v for k, v in kw.items() if k in keep})

    failed: list[bool] = []
    name = f"{type(listener).__name__}.{event}"

    def report(exc: BaseException) -> None:
        if not failed:
            failed.append(True)
            log.warning("orchnb: listener %s raised %s: %s (the run goes on; further errors "
                        "from it are not logged)", name, type(exc).__name__, exc,
                        exc_info=(type(exc), exc, exc.__traceback__))

    if inspect.iscoroutinefunction(method):
        pending: set[asyncio.Task[Any]] = set()

        def done(task: asyncio.Task[Any]) -> None:
            pending.discard(task)
            if not task.cancelled() and task.exception() is not None:
                report(task.exception())  # type: ignore[arg-type]

        def schedule(**kw: Any) -> None:
            try:
                task = asyncio.get_running_loop().create_task(fn(**kw))
            except RuntimeError:  # no loop (a run ending in a sync thread): run it to the end
                try:
                    asyncio.run(fn(**kw))
                except Exception as e:
                    report(e)
                return
            pending.add(task)
            task.add_done_callback(done)

        return schedule

    def call(**kw: Any) -> None:
        try:
            fn(**kw)
        except Exception as e:
            report(e)

    return call


class Subscription:
    """One listener's adapted methods (built once, when it subscribes).

    ``trusted`` listeners (the engine's own recorder and store writer, which take exactly the
    published keywords and do not raise) are called directly, without the isolating wrapper.
    """

    __slots__ = ("listener", "methods")

    def __init__(self, listener: Any, *, trusted: bool = False):
        self.listener = listener
        self.methods = {event: (getattr(listener, event, None) if trusted
                                else _adapt(listener, event)) for event in EVENTS}


class EventBus:
    """The listeners of one run, in order, with a list of callables per event (hot path).

    >>> bus = EventBus([])
    >>> bus.span_end  # no listener: nothing to call
    []
    """

    __slots__ = ("progress", "run_end", "run_start", "span_end", "span_start", "stream_delta",
                 "subscriptions")

    def __init__(self, subscriptions: Iterable[Subscription]):
        self.subscriptions = list(subscriptions)

        def of(event: str) -> list[Callable[..., Any]]:
            return [m for s in self.subscriptions if (m := s.methods[event]) is not None]

        self.run_start = of("on_run_start")
        self.span_start = of("on_span_start")
        self.stream_delta = of("on_stream_delta")
        self.span_end = of("on_span_end")
        self.progress = of("on_progress")
        self.run_end = of("on_run_end")

    @property
    def streaming(self) -> bool:
        """Whether anyone listens to stream deltas."""
        return bool(self.stream_delta)


_GLOBAL: list[Subscription] = []


def add_hook(hook: Any) -> None:
    """Subscribe ``hook`` to the events of every run from now on (see :mod:`orchnb.engine`).

    >>> class Printer:
    ...     def on_span_end(self, *, span, **_):
    ...         print(span.kind, span.step, span.status)
    >>> p = Printer(); add_hook(p); remove_hook(p)
    """
    _GLOBAL.append(Subscription(hook))


def remove_hook(hook: Any) -> None:
    """Unsubscribe a hook added with :func:`add_hook`."""
    _GLOBAL[:] = [s for s in _GLOBAL if s.listener is not hook]


def global_subscriptions() -> list[Subscription]:
    """The session-wide listeners (added with :func:`add_hook`), in order."""
    return list(_GLOBAL)
