"""Progress bars for long fan-outs: a listener of the engine's progress events (tqdm.auto)."""

from __future__ import annotations

from typing import Any

MIN_ITEMS = 20
"""Fan-outs shorter than this finish too fast to need a bar."""


class ProgressBars:
    """Draws one tqdm bar per (run, label) while a fan-out goes; closes it at the end.

    >>> bars = ProgressBars()
    >>> bars.on_progress(run=None, label="map", done=0, total=3)  # too short: no bar
    """

    __slots__ = ("_bars",)

    def __init__(self) -> None:
        self._bars: dict[tuple[int, str], Any] = {}

    def on_progress(self, *, run: Any, label: str, done: int, total: int,
                    failed: int = 0) -> None:
        if total < MIN_ITEMS:
            return
        key = (id(run), label)
        bar = self._bars.get(key)
        if bar is None:
            from tqdm.auto import tqdm  # only when there is long work to show

            bar = self._bars[key] = tqdm(total=total, desc=label, unit="item", mininterval=0.2,
                                         leave=label.startswith("eval"))
        bar.n = done
        if failed:  # a provider batch's own count of failed requests
            bar.set_postfix(failed=failed, refresh=False)
        if done >= total:
            bar.refresh()
            bar.close()
            del self._bars[key]
        else:
            bar.update(0)

    def on_run_end(self, *, run: Any) -> None:
        # A run that stopped half-way (error, budget, interrupt) leaves no bar behind.
        if not self._bars:  # (every run ends here; most never drew a bar)
            return
        for key in [k for k in self._bars if k[0] == id(run)]:
            self._bars.pop(key).close()
