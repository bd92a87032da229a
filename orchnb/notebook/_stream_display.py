"""A streaming run's tokens in the cell that runs it, as they arrive.

``%load_ext orchnb`` registers :class:`LiveText` with the engine (``set_live_display``): a
synchronous ``pipe(x)`` in a cell whose pipeline or steps stream then shows each model call's text
growing, redrawn at most ten times a second from the cell's own thread (the engine calls
``tick`` while the cell waits), and replaced by the run's table when it ends.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from ..engine import MATHJAX_OFF

_SHOWN = 4000
"""Characters of each call's text drawn (the end of it, where the new tokens are)."""
INTERVAL = 0.1


class LiveText:
    """Listener + display of one streaming run (engine loop thread feeds, cell thread draws).

    >>> live = LiveText(run=None)
    >>> live.on_stream_delta(span=type("S", (), {"span_id": "1", "step": "a"})(), text="Hi")
    >>> "Hi" in live.html()
    True
    """

    def __init__(self, run: Any):
        self.run = run
        self._lock = threading.Lock()
        self._calls: dict[str, list[Any]] = {}
        self._dirty = False
        self._last = 0.0
        self._handle: Any = None
        self.drawn = 0
        """How many times the display was drawn (tests check the throttle)."""

    def on_stream_delta(self, *, span: Any, text: str, attempt: int | None = None,
                        **_: Any) -> None:
        with self._lock:
            entry = self._calls.get(span.span_id)
            if entry is None or entry[1] != attempt:  # a retried call starts over
                entry = self._calls[span.span_id] = [span.step, attempt, ""]
            entry[2] += text
            self._dirty = True

    def html(self) -> str:
        with self._lock:
            calls = [tuple(c) for c in self._calls.values()]
        cursor = "<span style='opacity:.5'>▌</span>"
        rows = "".join(
            f"<div style='margin:2px 0'><b>{html.escape(step)}</b> "
            f"<span style='white-space:pre-wrap'>{html.escape(text[-_SHOWN:])}</span>"
            f"{cursor if i == len(calls) - 1 else ''}</div>"
            for i, (step, _attempt, text) in enumerate(calls))
        return (f"<div class='{MATHJAX_OFF} orchnb-live-stream' style='font-family:monospace'>"
                f"{rows}</div>")

    def tick(self) -> None:
        """Redraw if new text came and the last draw is at least ``INTERVAL`` old."""
        now = time.monotonic()
        if not self._dirty or now - self._last < INTERVAL:
            return
        self._dirty = False
        self._last = now
        self._draw(self.html())

    def close(self) -> None:
        """The run ended: its own output (the Run's table) takes the place of the live text."""
        if self._handle is not None:
            self._draw("")

    def _draw(self, text: str) -> None:
        from IPython.display import HTML, display

        self.drawn += 1
        if self._handle is None:
            self._handle = display(HTML(text), display_id=True)
        else:
            self._handle.update(HTML(text))
