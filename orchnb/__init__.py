"""orchnb: LLM orchestration patterns you can build, step through and evaluate in a notebook.

>>> import orchnb
>>> pipe = orchnb.Chain("hello", [orchnb.Step("greet", "sim:echo", "Hello {{ input }}")])
>>> pipe("world").output
'Hello world'
"""

# No `from __future__ import annotations` and no bare `Any` here: both would be names of the
# package (`orchnb.annotations`, `orchnb.Any`), and dir(orchnb) is its documentation.
from typing import Any as _Any

from .engine import (
    Budget,
    RetryPolicy,
    Run,
    StreamChunk,
    add_hook,
    configure,
    export_live,
    remove_hook,
)
from .exceptions import (
    BudgetExceeded,
    CallTimeoutError,
    ForkError,
    MaxIterationsExceeded,
    MissingAPIKeyError,
    OrchnbError,
    ProviderError,
    ReplayError,
    RunCancelled,
    RunError,
    SpecError,
    StructuredOutputError,
    TemplateError,
    ToolError,
    UnknownModelError,
    YAMLError,
)
from .memory import Memory
from .models import SimModel, openai_compatible, register_provider, sim_model
from .patterns import Chain, FunctionStep, Pipeline, Prompt, Step
from .tools import Tool, mcp_tools, tool
from .trace import Trace, traces

__version__ = "0.1.0"

_LAZY = {
    "Router": ("orchnb.patterns", "Router"),
    "QualityRouter": ("orchnb.patterns", "QualityRouter"),
    "MapReduce": ("orchnb.patterns", "MapReduce"),
    "Agent": ("orchnb.patterns", "Agent"),
    "Cascade": ("orchnb.patterns", "Cascade"),
    "PlanExecute": ("orchnb.patterns", "PlanExecute"),
    "Team": ("orchnb.patterns", "Team"),
    "from_yaml": ("orchnb.patterns", "from_yaml"),
    "load_run": ("orchnb.patterns", "load_run"),
    "LLMClassifier": ("orchnb.patterns", "LLMClassifier"),
    "EmbeddingClassifier": ("orchnb.patterns", "EmbeddingClassifier"),
    "FunctionClassifier": ("orchnb.patterns", "FunctionClassifier"),
    "evaluate": ("orchnb.evals", "evaluate"),
    "compare_routers": ("orchnb.evals", "compare_routers"),
    "evaluate_routing": ("orchnb.evals", "evaluate_routing"),
    "compare": ("orchnb.evals", "compare"),
    "judge": ("orchnb.evals", "judge"),
    "agreement": ("orchnb.evals", "agreement"),
    "Labels": ("orchnb.evals", "Labels"),
    "label": ("orchnb.notebook", "label"),
    "trajectory": ("orchnb.evals", "trajectory"),
    "calibrate": ("orchnb.evals", "calibrate"),
    "plan_eval": ("orchnb.evals", "plan_eval"),
    "Playground": ("orchnb.notebook", "Playground"),
    "TraceView": ("orchnb.notebook", "TraceView"),
    "testing": ("orchnb.testing", None),
    "viz": ("orchnb.viz", None),
    "evals": ("orchnb.evals", None),
}

__all__ = [
    "Agent",
    "Budget",
    "BudgetExceeded",
    "CallTimeoutError",
    "Cascade",
    "Chain",
    "EmbeddingClassifier",
    "ForkError",
    "FunctionClassifier",
    "FunctionStep",
    "LLMClassifier",
    "Labels",
    "MapReduce",
    "MaxIterationsExceeded",
    "Memory",
    "MissingAPIKeyError",
    "OrchnbError",
    "Pipeline",
    "PlanExecute",
    "Playground",
    "Prompt",
    "ProviderError",
    "QualityRouter",
    "ReplayError",
    "RetryPolicy",
    "Router",
    "Run",
    "RunCancelled",
    "RunError",
    "SimModel",
    "SpecError",
    "Step",
    "StreamChunk",
    "StructuredOutputError",
    "Team",
    "TemplateError",
    "Tool",
    "ToolError",
    "Trace",
    "TraceView",
    "UnknownModelError",
    "YAMLError",
    "add_hook",
    "agreement",
    "calibrate",
    "compare",
    "compare_routers",
    "configure",
    "evaluate",
    "evaluate_routing",
    "export_live",
    "from_yaml",
    "judge",
    "label",
    "load_run",
    "mcp_tools",
    "openai_compatible",
    "plan_eval",
    "register_provider",
    "remove_hook",
    "sim_model",
    "tool",
    "traces",
    "trajectory",
]


def __getattr__(name: str) -> _Any:
    # Heavy parts (SDKs, pandas, plotly, widgets) load on first use so `import orchnb` is fast.
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'orchnb' has no attribute {name!r}")


def __dir__() -> list[str]:
    public = {n for n in globals() if not n.startswith("_") or n.startswith("__")}
    return sorted(public | set(_LAZY))


def load_ipython_extension(ipython: _Any) -> None:
    """``%load_ext orchnb``: registers the ``%%orch`` / ``%orch`` magics."""
    from .notebook import load_ipython_extension as load

    load(ipython)
