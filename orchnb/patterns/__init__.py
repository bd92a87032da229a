"""The six patterns. Each reads like its diagram; the engine does everything else."""

from ._base import FunctionStep, Node, Pipeline, Step, as_node
from ._chain import Chain
from ._spec import from_dict, from_yaml, register_builder
from ._template import Prompt

__all__ = [
    "Chain",
    "FunctionStep",
    "Node",
    "Pipeline",
    "Prompt",
    "Step",
    "as_node",
    "from_dict",
    "from_yaml",
    "register_builder",
]
