"""The six patterns. Each reads like its diagram; the engine does everything else.

Only the base and Chain load with ``import orchnb``; the other patterns (and YAML, which needs
pydantic) load on first use so the import stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..models import (  # embedders live in models/; these names stay for older code
    Embedder,
    HashEmbedder,
    ProviderEmbedder,
    SentenceTransformerEmbedder,
    resolve_embedder,
)
from ._base import FunctionStep, Node, Pipeline, Step, as_node
from ._chain import Chain
from ._template import Prompt

_LAZY = {
    "Agent": "_agent",
    "Cascade": "_cascade",
    "Classification": "_classify",
    "EmbeddingClassifier": "_classify",
    "FunctionClassifier": "_classify",
    "LLMClassifier": "_classify",
    "parse_label": "_labels",
    "MapReduce": "_mapreduce",
    "split_text": "_chunking",
    "PlanExecute": "_plan_execute",
    "Preview": "_preview_view",
    "RayExecutor": "_ray_executor",
    "as_executor": "_ray_executor",
    "map_on_ray": "_ray_executor",
    "QualityRouter": "_quality_router",
    "QualityScorer": "_quality_scorer",
    "text_key": "_quality_scorer",
    "check_graded": "_quality_scorer",
    "LadderScorer": "_quality_ladder",
    "ladder_area": "_quality_ladder",
    "ladder_choice": "_quality_ladder",
    "ladder_sweep": "_quality_ladder",
    "ladder_thresholds": "_quality_ladder",
    "switch_points": "_quality_ladder",
    "Router": "_router",
    "Team": "_team",
    "from_dict": "_spec",
    "from_yaml": "_spec",
    "load_run": "_load_run",
    "parse_json_answer": "_structured",
    "parse_plan": "_plans",
    "prepare_fork": "_fork",
    "register_builder": "_spec",
}

__all__ = [  # noqa: RUF022 - the lazy names follow the eager ones
    "Chain", "FunctionStep", "Node", "Pipeline", "Prompt", "Step", "as_node",
    "Agent", "Cascade", "Classification", "EmbeddingClassifier", "FunctionClassifier",
    "LLMClassifier",
    "Embedder", "HashEmbedder", "ProviderEmbedder", "SentenceTransformerEmbedder",
    "resolve_embedder", "parse_label", "MapReduce", "split_text", "PlanExecute", "Preview",
    "LadderScorer", "ladder_area", "ladder_choice", "ladder_sweep", "ladder_thresholds",
    "switch_points", "QualityRouter", "QualityScorer", "RayExecutor", "Router", "Team",
    "from_dict", "from_yaml",
    "register_builder", "load_run",
    "prepare_fork", "parse_json_answer", "parse_plan", "text_key", "check_graded", "as_executor",
    "map_on_ray",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'orchnb.patterns' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
