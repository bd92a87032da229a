"""Evals in the notebook. Any pipeline: ``evaluate(pipe, data, expected=..., scorers=[...])``
scores its outputs (built-ins, functions, LLM judges); ``compare([...], data)`` puts patterns
side by side with paired tests and says which to pick. Routers: accuracy with a confidence
interval, per-route precision / recall / F1, confusion matrix, misroutes, latency, cost per 1,000
queries and the saving against sending everything to the dearest route, for one router or
several candidates side by side. Learned routing between a weak and a strong model:
``evaluate_routing(router_or_scores, graded)`` (APGR, CPT, cost, bootstrap CIs).

>>> import orchnb
>>> tickets = orchnb.evals.load_tickets()              # 333 labelled support messages (CC0)
>>> report = orchnb.evaluate(triage, tickets)          # doctest: +SKIP
>>> report.accuracy, report.accuracy_ci                # doctest: +SKIP
>>> cmp = orchnb.compare_routers({"a": r1, "b": r2}, tickets)   # doctest: +SKIP

pandas, numpy and Plotly are imported inside the functions that use them.
"""

from __future__ import annotations

from ._agreement import Agreement, Corrected, agreement
from ._calibrate import Calibration, calibrate
from ._candidates import Comparison
from ._compare import Experiment, load_experiment
from ._costs import CostEstimate, RouterCosts, rates_for
from ._data import TICKET_LABELS, load_data, load_tickets
from ._evaluate import compare, compare_routers, evaluate, sweep_threshold
from ._experiments import experiments
from ._judge import Judge, judge
from ._label_source import label_rows
from ._labels import Labels
from ._metrics import pareto_front
from ._power import EvalPlan, plan_eval
from ._repeats import RepeatedReport, RepeatedScores
from ._report import EvalReport
from ._routing import evaluate_routing
from ._routing_data import graded_answers, load_routing
from ._routing_ladder import LadderReport
from ._routing_report import RoutingReport
from ._scorers import Scorer
from ._scores_report import ScoreReport
from ._trajectory import trajectory

__all__ = [
    "TICKET_LABELS",
    "Agreement",
    "Calibration",
    "Comparison",
    "Corrected",
    "CostEstimate",
    "EvalPlan",
    "EvalReport",
    "Experiment",
    "Judge",
    "Labels",
    "LadderReport",
    "RepeatedReport",
    "RepeatedScores",
    "RouterCosts",
    "RoutingReport",
    "ScoreReport",
    "Scorer",
    "agreement",
    "calibrate",
    "compare",
    "compare_routers",
    "evaluate",
    "evaluate_routing",
    "experiments",
    "graded_answers",
    "judge",
    "label_rows",
    "load_data",
    "load_experiment",
    "load_routing",
    "load_tickets",
    "pareto_front",
    "plan_eval",
    "rates_for",
    "sweep_threshold",
    "trajectory",
]
