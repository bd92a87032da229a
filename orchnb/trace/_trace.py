"""A run's trace: its spans, as a DataFrame and as charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._frame import spans_to_frame
from ._span import Span

if TYPE_CHECKING:
    import pandas as pd


class Trace:
    """The spans of one run, in the order they ended.

    ``trace.df`` is the tidy DataFrame (one row per span); a run's trace also has ``.plot``.

    >>> run = chain("hello")            # doctest: +SKIP
    >>> run.trace.df[["step", "kind", "latency_ms"]]  # doctest: +SKIP
    """

    __slots__ = ("_df", "_df_len", "spans")

    def __init__(self, spans: list[Span] | None = None):
        self.spans: list[Span] = spans if spans is not None else []
        self._df: Any = None
        self._df_len = -1

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def df(self) -> pd.DataFrame:
        """The spans as a DataFrame (rebuilt only when new spans arrived)."""
        if self._df is None or self._df_len != len(self.spans):
            self._df = spans_to_frame(list(self.spans)).sort_values("start", kind="stable")
            self._df = self._df.reset_index(drop=True)
            self._df_len = len(self.spans)
        return self._df

    def __repr__(self) -> str:
        calls = sum(1 for s in self.spans if s.kind in ("model", "tool"))
        return f"<Trace {len(self.spans)} spans, {calls} calls>"
