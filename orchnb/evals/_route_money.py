"""What a router costs, in a router eval: the classifier and the routes at list price, the dearest
route and the saving against sending everything there (or to a ``baseline`` model).

An unknown amount stays unknown: a route with no known price makes the dearest route undefined
(it might be the dearest), and every total that includes it NaN ("unpriced"), never $0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._totals import usd_total

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ._costs import RouterCosts


class RouteMoney:
    """Mixed into :class:`~orchnb.evals.EvalReport`: ``cost_per_1k``, ``expensive_route``,
    ``saving_usd`` / ``saving_pct``, ``baseline_saving_*``, ``expensive_share``, ``quality``."""

    predictions: pd.DataFrame
    n: int
    full_pipeline: bool
    baseline: str | None
    accuracy: float
    _costs: RouterCosts
    _route_rows: dict[str, Any]
    _pred_arr: np.ndarray

    @property
    def saved_usd(self) -> float:
        """Dollars the response cache saved in this eval (NaN when a cached call is unpriced)."""
        return usd_total(self.predictions["saved_usd"])

    @property
    def batch_calls(self) -> int:
        """Model calls answered through a provider batch (``batch=True``)."""
        col = self.predictions.get("batch_calls")
        return 0 if col is None else int(col.sum())

    @property
    def batch_saved_usd(self) -> float:
        """What batch mode saved against the same calls at list price."""
        col = self.predictions.get("batch_saved_usd")
        return 0.0 if col is None else usd_total(col)

    @property
    def classifier_usd(self) -> float:
        """The classifier's cost over all rows at list price (cached calls included)."""
        return usd_total(self.predictions["classifier_usd"])

    @property
    def routes_estimated(self) -> bool:
        """True when route costs are estimates (a classifier-only eval did not run them)."""
        return not self.full_pipeline

    def _mix_rows(self, routes: np.ndarray) -> np.ndarray:
        import numpy as np

        out = np.zeros(self.n)
        for r, costs in self._route_rows.items():
            mask = routes == r
            out[mask] = costs[mask]
        return out

    @property
    def routes_usd(self) -> float:
        """What the routes cost (full pipeline: measured; otherwise estimated from tokens)."""
        if self.full_pipeline:
            return usd_total(self.predictions["route_usd"])
        return float(self._mix_rows(self._pred_arr).sum())

    @property
    def router_usd(self) -> float:
        """Classifier plus routes: what serving these queries through the router costs."""
        return self.classifier_usd + self.routes_usd

    @property
    def cost_per_1k(self) -> float:
        """Router cost (classifier plus routes) per 1,000 queries."""
        return self.router_usd / self.n * 1000 if self.n else math.nan

    @property
    def classifier_cost_per_1k(self) -> float:
        return self.classifier_usd / self.n * 1000 if self.n else math.nan

    @property
    def unpriced_routes(self) -> list[str]:
        """Routes with no known price (a model missing from the pricing table)."""
        import numpy as np

        return [r for r, rows in self._route_rows.items() if np.isnan(rows).any()]

    @property
    def expensive_route(self) -> str | None:
        """The route dearest per query: what "send everything to the best route" means. None
        when it is undefined: a route is unpriced (it might be the dearest), or no route has a
        price; ``expensive_note`` says which."""
        if not hasattr(self, "_expensive"):
            priced = any(float(rows.sum()) > 0 for rows in self._route_rows.values())
            self._expensive = (self._costs.expensive_route()
                               if priced and not self.unpriced_routes else None)
        return self._expensive

    @property
    def expensive_note(self) -> str:
        """Why there is no dearest route ("" when there is one)."""
        if self.expensive_route is not None:
            return ""
        unpriced = self.unpriced_routes
        if unpriced:
            return (f"route{'s' if len(unpriced) > 1 else ''} {', '.join(unpriced)} "
                    f"{'are' if len(unpriced) > 1 else 'is'} unpriced and might be the dearest")
        return "no route has a price"

    @property
    def all_expensive_usd(self) -> float:
        """Every query sent straight to ``expensive_route`` (no classifier); NaN when no
        route is priced."""
        exp = self.expensive_route
        if exp is None:
            return math.nan
        est = self._route_rows[exp]
        if not self.full_pipeline:
            return float(est.sum())
        import numpy as np

        went = self._pred_arr == exp
        measured = self.predictions["route_usd"].to_numpy(dtype=float)
        return float(np.where(went, measured, est).sum())

    @property
    def saving_usd(self) -> float:
        """``all_expensive_usd - router_usd`` (negative: the router costs more)."""
        return self.all_expensive_usd - self.router_usd

    @property
    def saving_pct(self) -> float:
        return _pct(self.saving_usd, self.all_expensive_usd)

    @property
    def baseline_usd(self) -> float:
        """Every query sent to the ``baseline`` model with the dearest route's prompts."""
        if not self.baseline:
            return math.nan
        return float(self._costs.baseline_rows(self.baseline).sum())

    @property
    def baseline_saving_usd(self) -> float:
        return self.baseline_usd - self.router_usd

    @property
    def baseline_saving_pct(self) -> float:
        return _pct(self.baseline_saving_usd, self.baseline_usd)

    @property
    def expensive_share(self) -> float:
        """Share of queries routed to ``expensive_route`` (NaN when it is undefined)."""
        if not self.n or self.expensive_route is None:
            return math.nan
        return float((self._pred_arr == self.expensive_route).mean())

    @property
    def quality(self) -> float:
        """Share of queries served well, RouteLLM-style: routed to their own route, or to the
        dearest route (assumed able to answer anything); accuracy when no route is priced."""
        p = self.predictions
        if self.expensive_route is None:
            return self.accuracy
        return float((p["correct"] | (self._pred_arr == self.expensive_route)).mean())


def _pct(part: float, whole: float) -> float:
    if whole == 0 or math.isnan(whole) or math.isnan(part):
        return math.nan
    return 100.0 * part / whole
