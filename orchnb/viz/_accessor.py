"""``TracePlots``: the common charts as methods, and the ``df.orch`` pandas accessor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchnb.viz import _style as st

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go
    from pandas.io.formats.style import Styler


class TracePlots:
    """The charts of one trace DataFrame (a run, many runs, or ``orchnb.traces()``).

    Also available as the ``df.orch`` accessor once ``orchnb.viz`` is imported. Every method
    returns a Plotly figure (or a DataFrame / Styler) that you can restyle.

    >>> plots = TracePlots(run.trace.df)     # doctest: +SKIP
    >>> plots.timeline().show()              # doctest: +SKIP
    >>> orchnb.traces().orch.cost(by="model")   # doctest: +SKIP
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def __repr__(self) -> str:
        n = len(self._df)
        runs = self._df["run_id"].nunique() if "run_id" in self._df.columns else 0
        return f"<TracePlots: {st.plural(n, 'span')}, {st.plural(runs, 'run')}>"

    @property
    def df(self) -> pd.DataFrame:
        """The trace DataFrame the charts are drawn from."""
        return self._df

    def timeline(self, run_id: str | None = None, **kw: Any) -> go.Figure:
        """Waterfall of one run's spans; see :func:`orchnb.viz.timeline`."""
        from orchnb.viz._timeline import timeline

        return timeline(self._df, run_id, **kw)

    def latency(self, **kw: Any) -> go.Figure:
        """Latency distribution per step with p50/p95; see :func:`orchnb.viz.latency`."""
        from orchnb.viz._latency import latency

        return latency(self._df, **kw)

    def cost(self, **kw: Any) -> go.Figure:
        """USD by step or model, unpriced calls marked; see :func:`orchnb.viz.cost`."""
        from orchnb.viz._cost import cost

        return cost(self._df, **kw)

    def tokens(self, **kw: Any) -> go.Figure:
        """Input / cached / output tokens by step or model; see :func:`orchnb.viz.tokens`."""
        from orchnb.viz._cost import tokens

        return tokens(self._df, **kw)

    def cumulative_cost(self, **kw: Any) -> go.Figure:
        """Cumulative USD over runs; see :func:`orchnb.viz.cumulative_cost`."""
        from orchnb.viz._cost import cumulative_cost

        return cumulative_cost(self._df, **kw)

    def routes(self) -> go.Figure:
        """How often each route was taken, per router; see :func:`orchnb.viz.routes`."""
        from orchnb.viz._routing import routes

        return routes(self._df)

    def graph(self, **kw: Any) -> go.Figure:
        """The pattern graph coloured by latency or cost; see :func:`orchnb.viz.graph`."""
        from orchnb.viz._graph import graph

        return graph(self._df, **kw)

    def summary(self, by: str = "run") -> pd.DataFrame:
        """Totals and percentiles per run / pipeline / session; see :func:`orchnb.viz.summary`."""
        from orchnb.viz._summary import summary

        return summary(self._df, by=by)

    def table(self, by: str = "run") -> Styler:
        """:meth:`summary` as a styled table; see :func:`orchnb.viz.summary_table`."""
        from orchnb.viz._summary import summary_table

        return summary_table(self._df, by=by)

    def compare(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Runs side by side per step; see :func:`orchnb.viz.compare_runs`."""
        from orchnb.viz._summary import compare_runs

        return compare_runs(self._df, run_ids)


def register_accessor() -> None:
    """Register ``TracePlots`` as ``pandas.DataFrame.orch`` (once; idempotent)."""
    import pandas as pd

    if not hasattr(pd.DataFrame, "orch"):
        pd.api.extensions.register_dataframe_accessor("orch")(TracePlots)
