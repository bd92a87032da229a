"""Live OpenTelemetry export: each span goes to an OTLP endpoint as soon as it ends.

The listener subscribes to the engine's span events. The run's thread only snapshots the
finished span into a bounded queue (a tuple, about a microsecond); one daemon thread per listener
maps it to the GenAI semantic conventions (the same ``_attributes`` as ``to_otel``) and sends
whatever has queued up in one OTLP request, so a slow or unreachable collector never stalls a
run (when the queue is full, spans are counted in ``dropped``, not waited for).

OpenTelemetry ids are derived from orchnb's: the trace id from the run id, the span id from
(run id, span id). A span can thus be exported on its own, before or without its parent, and
still land in the right trace under the right parent; nothing is kept between spans.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._export import _attributes, _kind_and_status, _times
from ._span import COLUMNS, Span

_log = logging.getLogger("orchnb")
_STOP = object()
_MAX_BATCH = 512  # spans per OTLP request (the SDK's BatchSpanProcessor default)


def _id(text: str, size: int) -> int:
    # Stable and uniformly spread; never 0, which OpenTelemetry reads as "invalid".
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big") or 1


def _trace_id(run_id: str) -> int:
    """The OpenTelemetry trace id a run's spans are exported under (128 bits, from the run id)."""
    return _id(f"orchnb-run/{run_id}", 16)


def _span_id(run_id: str, span_id: str) -> int:
    return _id(f"orchnb-span/{run_id}/{span_id}", 8)


def _traces_url(endpoint: str) -> str:
    """An OTLP/HTTP base URL (``http://host:4318``) gets the ``/v1/traces`` signal path; a URL
    with a path is used as given."""
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


class OTelListener:
    """Sends every span to an OpenTelemetry (OTLP/HTTP, protobuf) endpoint as it ends.

    Register it with :func:`orchnb.add_hook` (or use :func:`orchnb.export_live`, which
    does). Each run is one trace; spans keep their parent/child links, start and end times,
    status and ``error.type``, and carry the GenAI semantic conventions: ``chat {model}``,
    ``execute_tool {tool}``, ``invoke_agent {name}``, ``invoke_workflow {pipeline}`` spans with
    ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
    ``gen_ai.usage.input_tokens`` / ``output_tokens``... Prompts and outputs
    (``gen_ai.input.messages`` / ``gen_ai.output.messages``, tool arguments and results) are
    sent only with ``include_content=True``.

    ``endpoint`` defaults to the standard variables (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``http://localhost:4318``); a base URL gets
    ``/v1/traces`` appended. ``headers`` default to ``OTEL_EXPORTER_OTLP_HEADERS``. ``exporter``
    replaces the OTLP exporter by any OpenTelemetry ``SpanExporter`` (console, in-memory).
    Export runs on the listener's own thread; :meth:`flush` waits for it, :meth:`close` also
    unregisters the listener and shuts the exporter down. Needs ``pip install 'orchnb[otel]'``.

    >>> listener = OTelListener("http://127.0.0.1:6006")   # doctest: +SKIP  (e.g. Phoenix)
    >>> orchnb.add_hook(listener)                          # doctest: +SKIP
    >>> pipe("hello"); listener.flush()                    # doctest: +SKIP
    True
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_content: bool = False,
        service_name: str = "orchnb",
        exporter: Any = None,
        max_queue: int = 100_000,
    ):
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope

            if exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                url = None if endpoint is None else _traces_url(endpoint)
                exporter = OTLPSpanExporter(endpoint=url, headers=dict(headers or {}) or None,
                                            timeout=_export_timeout())
                _quiet_sdk_retries()
        except ImportError as e:
            raise ImportError(
                "OTelListener needs the OpenTelemetry SDK and OTLP exporter: "
                "pip install 'orchnb[otel]'"
            ) from e
        self.endpoint = endpoint
        """The endpoint given (None: taken from the OTEL_EXPORTER_OTLP_* variables)."""
        self.include_content = include_content
        """Whether prompts, outputs, tool arguments and results are sent."""
        self.exporter = exporter
        """The OpenTelemetry span exporter spans are handed to."""
        self.exported = 0
        """Spans the exporter accepted."""
        self.failed = 0
        """Spans the exporter reported as not sent (collector down, rejected)."""
        self.dropped = 0
        """Spans not queued because the queue was full (the collector could not keep up)."""
        self._resource = Resource.create({"service.name": service_name})
        self._scope = InstrumentationScope("orchnb", _version())
        self._down_until = 0.0  # while the collector is down, spans are counted, not sent
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._closed = False
        self._unregister: Callable[[], None] | None = None
        """Called once by :meth:`close` (``orchnb.export_live`` unsubscribes the listener)."""
        self._thread = threading.Thread(target=self._work, name="orchnb-otel", daemon=True)
        self._thread.start()
        # Spans still queued when the interpreter exits are sent then (weakly: no leak).
        _atexit_close(self)

    def __repr__(self) -> str:
        return (f"OTelListener(endpoint={self.endpoint!r}, include_content="
                f"{self.include_content}, exported={self.exported}, dropped={self.dropped})")

    # -- engine events (keyword-only; unknown keywords are ignored) -----------------------------
    def on_span_end(self, *, span: Span, **_: Any) -> None:
        """Queue a finished span for export (never blocks the run)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(span.to_row())
        except queue.Full:
            self.dropped += 1

    # -- control --------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every span queued so far has been handed to the exporter; False on timeout.

        >>> listener.flush()   # doctest: +SKIP
        True
        """
        if not self._thread.is_alive():
            return True
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) when the listener is closed."""
        self._unregister = callback

    def close(self, timeout: float = 30.0) -> None:
        """Unregister (see :meth:`on_close`), send what is queued, shut the
        exporter down. Safe to call twice.

        >>> listener.close()   # doctest: +SKIP
        """
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
        try:
            self.exporter.shutdown()
        except Exception as e:  # an exporter failing to shut down must not raise at exit
            _log.warning("orchnb: OpenTelemetry exporter shutdown failed: %s", e)

    def __enter__(self) -> OTelListener:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the export thread ------------------------------------------------------------------------
    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            rows, waiters, stop = [], [], False
            while True:  # take what has queued up meanwhile: one request for a burst of spans
                if item is _STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    waiters.append(item)
                else:
                    rows.append(item)
                if stop or len(rows) >= _MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if rows:
                self._export(rows)
            for w in waiters:
                w.set()
            if stop:
                return

    def _export(self, rows: list[tuple[Any, ...]]) -> None:
        spans = []
        for row in rows:
            try:
                spans.append(self._readable(dict(zip(COLUMNS, row))))
            except Exception as e:  # one odd span must not stop the export of the others
                _log.warning("orchnb: span %s not exported to OpenTelemetry: %s", row[1], e)
                self.failed += 1
        if not spans:
            return
        if time.monotonic() < self._down_until:  # one failed request, not one per batch
            self.failed += len(spans)
            return
        try:
            result = self.exporter.export(spans)
        except Exception as e:
            _log.warning("orchnb: OpenTelemetry export of %d spans failed: %s", len(spans), e)
            result = None
        if getattr(result, "name", None) == "SUCCESS":
            if self._down_until:
                _log.warning("orchnb: the OpenTelemetry collector answers again")
            self._down_until = 0.0
            self.exported += len(spans)
        else:
            if not self._down_until:  # said once per outage, not once per retry or batch
                _log.warning("orchnb: the OpenTelemetry collector (%s) did not take %d spans; "
                             "spans are counted in .failed and not sent for the next %gs",
                             self.endpoint or "OTEL_EXPORTER_OTLP_*", len(spans), _COOL_OFF)
            self._down_until = time.monotonic() + _COOL_OFF
            self.failed += len(spans)

    def _readable(self, x: dict[str, Any]) -> Any:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, TraceFlags

        name, attrs = _attributes(x, self.include_content)
        kind, status = _kind_and_status(x)
        start, end = _times(x)
        run = str(x["run_id"])
        trace_id, sampled = _trace_id(run), TraceFlags(TraceFlags.SAMPLED)
        ctx = SpanContext(trace_id, _span_id(run, str(x["span_id"])), False, sampled)
        parent = None
        if x.get("parent_id") is not None:
            parent = SpanContext(trace_id, _span_id(run, str(x["parent_id"])), False, sampled)
        return ReadableSpan(name, context=ctx, parent=parent, resource=self._resource,
                            attributes=attrs, kind=kind, status=status, start_time=start,
                            end_time=end, instrumentation_scope=self._scope)  # fmt: skip


_COOL_OFF = 30.0
"""Seconds a listener stops sending after a failed export (a dead collector costs one
timeout, then nothing: ``flush()`` stays bounded)."""


def _export_timeout() -> float | None:
    """Seconds per export request: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT if set, else 5 (the
    SDK's 10, spent retrying a dead local collector, is what a notebook waits for)."""
    import os

    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TIMEOUT"):
        return None
    return 5.0


class _NoRetryChatter(logging.Filter):
    """Drops the OTLP exporter's per-retry "Transient error ..." lines: the listener says once
    that the collector is down."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Transient error", "Failed to export"))


def _quiet_sdk_retries() -> None:
    for name in ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                 "opentelemetry.exporter.otlp.common.http"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoRetryChatter) for f in logger.filters):
            logger.addFilter(_NoRetryChatter())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("orchnb")
    except Exception:  # running from a source tree without metadata
        return "0"


def _atexit_close(listener: OTelListener) -> None:
    import atexit

    ref = weakref.ref(listener)

    def close() -> None:
        if (obj := ref()) is not None:
            obj.close(timeout=5.0)

    atexit.register(close)
