"""Totals over a report's rows, shared by the router report and the any-pipeline report.

Money is summed without skipping: one unknown amount (a call with no known price) makes the
total unknown (NaN, shown as "unpriced"), never the sum of the priced part, which would read
as a real, smaller amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..trace import prompt_cache_note

if TYPE_CHECKING:
    import pandas as pd


def usd_total(values: Any) -> float:
    """The sum of a money column; NaN as soon as one amount is NaN.

    >>> usd_total([0.5, 0.25]), usd_total([0.5, float("nan")])
    (0.75, nan)
    """
    import numpy as np

    return float(np.sum(np.asarray(values, dtype=float)))


class RowTotals:
    """What a report's rows add up to: ``cost_usd`` (paid), ``calls``, ``cached_calls`` and
    what the prompt cache did (``prompt_cache_hit_rate``, ``prompt_cache_saved_usd``).

    A report names its rows (one per input, with ``cost_usd``, ``calls`` and ``cached_calls``
    columns) by defining ``_rows``.
    """

    @property
    def _rows(self) -> pd.DataFrame:
        raise NotImplementedError

    @property
    def cost_usd(self) -> float:
        """Dollars this eval paid (calls the response cache answered are free); NaN when a
        call had no known price."""
        return usd_total(self._rows["cost_usd"])

    @property
    def calls(self) -> int:
        """Model calls made (cache hits included)."""
        return int(self._rows["calls"].sum())

    @property
    def cached_calls(self) -> int:
        """Model calls the response cache answered."""
        return int(self._rows["cached_calls"].sum())

    def _sum(self, col: str) -> float:
        c = self._rows.get(col)
        return 0.0 if c is None else float(c.sum())

    @property
    def prompt_cache_hit_rate(self) -> float:
        """Share of the input tokens of the calls made that the prompt cache answered (cache
        reads); NaN when no call was made (or the rows predate the column)."""
        prompt = self._sum("prompt_tokens")
        return self._sum("cache_read_tokens") / prompt if prompt else float("nan")

    @property
    def prompt_cache_saved_usd(self) -> float:
        """What the prompt cache saved against the same calls without it: negative while cache
        writes have not paid off, NaN (unpriced) when a call had no known price."""
        col = self._rows.get("prompt_cache_saved_usd")
        return 0.0 if col is None else usd_total(col)

    @property
    def prompt_cache_note(self) -> str:
        """"prompt cache: 75% of prompt tokens read from cache, saved $X" ("" when the calls
        neither read nor wrote the prompt cache)."""
        return prompt_cache_note(self._sum("prompt_tokens"), self._sum("cache_read_tokens"),
                                 self._sum("cache_write_tokens"), self.prompt_cache_saved_usd)
