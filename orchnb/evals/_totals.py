"""Totals over a report's rows, shared by the router report and the any-pipeline report.

Money is summed without skipping: one unknown amount (a call with no known price) makes the
total unknown (NaN, shown as "unpriced"), never the sum of the priced part, which would read
as a real, smaller amount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    """What a report's rows add up to: ``cost_usd`` (paid), ``calls``, ``cached_calls``.

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
