"""The six patterns. Each reads like its diagram; the engine does everything else."""

from ._agent import Agent
from ._base import FunctionStep, Node, Pipeline, Step, as_node
from ._chain import Chain
from ._chunking import split_text
from ._classify import Classification, EmbeddingClassifier, FunctionClassifier, LLMClassifier
from ._embed import (
    Embedder,
    HashEmbedder,
    ProviderEmbedder,
    SentenceTransformerEmbedder,
    resolve_embedder,
)
from ._labels import parse_label
from ._mapreduce import MapReduce
from ._plan_execute import PlanExecute
from ._router import Router
from ._spec import from_dict, from_yaml, register_builder
from ._team import Team
from ._template import Prompt

__all__ = [
    "Agent",
    "Chain",
    "Classification",
    "Embedder",
    "EmbeddingClassifier",
    "FunctionClassifier",
    "FunctionStep",
    "HashEmbedder",
    "LLMClassifier",
    "MapReduce",
    "Node",
    "Pipeline",
    "PlanExecute",
    "Prompt",
    "ProviderEmbedder",
    "Router",
    "SentenceTransformerEmbedder",
    "Step",
    "Team",
    "as_node",
    "from_dict",
    "from_yaml",
    "parse_label",
    "register_builder",
    "resolve_embedder",
    "split_text",
]
