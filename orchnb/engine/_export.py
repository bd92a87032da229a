"""Live export of every run's spans: an OpenTelemetry listener subscribed to the engine."""

from __future__ import annotations

import weakref
from collections.abc import Mapping

from ..trace import OTelListener
from ._events import add_hook, remove_hook


def export_live(
    endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    include_content: bool = False,
    service_name: str = "orchnb",
) -> OTelListener:
    """Send every run's spans to an OTLP endpoint as they end, from now on; returns the
    registered listener (``.flush()`` waits for the export, ``.close()`` stops it). The endpoint
    defaults to ``OTEL_EXPORTER_OTLP_ENDPOINT``; prompts and outputs are sent only with
    ``include_content=True``. See :class:`orchnb.trace.OTelListener`.

    >>> live = orchnb.export_live("http://127.0.0.1:6006")   # doctest: +SKIP
    >>> pipe("hello"); live.close()                          # doctest: +SKIP
    """
    listener = OTelListener(endpoint, headers=headers, include_content=include_content,
                            service_name=service_name)
    add_hook(listener)
    ref = weakref.ref(listener)

    def unregister() -> None:
        if (obj := ref()) is not None:
            remove_hook(obj)

    listener.on_close(unregister)
    return listener
