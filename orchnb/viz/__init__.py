"""Plotly charts and tables over trace DataFrames (one run, many runs, or ``orchnb.traces()``).

Every chart is a function of a trace DataFrame returning a ``plotly.graph_objects.Figure`` that
you can restyle; ``TracePlots(df)`` and the ``df.orch`` accessor (registered when this module
is imported) expose the same charts as methods.

>>> from orchnb import viz                      # doctest: +SKIP
>>> viz.timeline(run.trace.df).show()           # doctest: +SKIP
>>> orchnb.traces().orch.latency(by="model")    # doctest: +SKIP

This package knows only the trace schema (``orchnb.trace.COLUMNS``). pandas and Plotly are
imported inside the functions that draw, except for pandas when registering ``df.orch``.
"""

from __future__ import annotations

from orchnb.viz import _style as style  # the look every orchnb chart shares (evals' too)
from orchnb.viz._accessor import TracePlots, register_accessor
from orchnb.viz._cost import cost, cost_table, cumulative_cost, tokens
from orchnb.viz._cost_classes import class_costs, class_table
from orchnb.viz._graph import graph, graph_data
from orchnb.viz._latency import latency, latency_stats
from orchnb.viz._routing import NO_ROUTE, route_counts, route_heatmap, route_sankey, routes
from orchnb.viz._style import fmt_usd
from orchnb.viz._summary import compare_runs, summary, summary_table
from orchnb.viz._timeline import timeline

__all__ = [
    "NO_ROUTE",
    "TracePlots",
    "class_costs",
    "class_table",
    "compare_runs",
    "cost",
    "cost_table",
    "cumulative_cost",
    "fmt_usd",
    "graph",
    "graph_data",
    "latency",
    "latency_stats",
    "route_counts",
    "route_heatmap",
    "route_sankey",
    "routes",
    "style",
    "summary",
    "summary_table",
    "timeline",
    "tokens",
]

register_accessor()
