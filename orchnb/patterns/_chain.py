"""Chain: steps in order; each step gets the previous output and sees earlier outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..engine import RunContext
from ..exceptions import SpecError, TemplateError
from ._base import Node, Pipeline, Step, Vars, as_node
from ._to_yaml import node_spec


class Chain(Pipeline):
    """Steps in order: ``input → step 1 → step 2 → … → output``.

    Each step's ``{{ input }}`` is the previous step's output; ``{{ steps.NAME }}`` is any earlier
    step's output and ``{{ run_input }}`` the run's input.

    >>> brief = Chain("brief", [
    ...     Step("summarize", "sim:echo", "Summarize: {{ input }}"),
    ...     Step("classify", "sim:echo", "Kind of document? {{ steps.summarize }}"),
    ... ])
    >>> brief("an invoice for 3 chairs").output
    'Kind of document? Summarize: an invoice for 3 chairs'
    """

    pattern = "chain"

    model_attrs: ClassVar[tuple[str, ...]] = ()
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset()
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, steps: Sequence[Any], **options: Any):
        super().__init__(name, **options)
        if not steps:
            raise SpecError(f"chain '{name}' has no steps; give it at least one", key="steps")
        self.steps: list[Node] = [as_node(s) for s in steps]
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.name in seen:
                raise SpecError(f"chain '{name}': two steps are named '{step.name}'; step names "
                                f"must be unique", key=f"steps[{i}].name")
            if isinstance(step, Step):
                for ref in sorted(step.prompt.step_refs - seen):
                    raise TemplateError(
                        f"chain '{name}': step '{step.name}' uses steps.{ref}, but "
                        f"{_why(ref, self.steps)}"
                        f"; earlier steps: {', '.join(sorted(seen)) or '(none)'}",
                        key=f"steps[{i}].prompt")
            seen.add(step.name)

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        outputs = dict(vars.get("steps") or {})
        scope = {**vars, "steps": outputs}
        for step in self.steps:
            input = await step.invoke(ctx, input, scope)
            outputs[step.name] = input
        return input

    def children(self) -> list[Node]:
        return list(self.steps)

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: walk the steps as a run would, each seeing the earlier outputs."""
        outputs = dict(vars.get("steps") or {})
        scope = {**vars, "steps": outputs}
        here = w.within(at, self.name)
        for step in self.steps:
            input = w.walk(step, input, scope, here)
            outputs[step.name] = input
        return input

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this chain (``pipe.to_yaml()``)."""
        return {"steps": [node_spec(s) for s in self.steps]}


def _why(ref: str, steps: Sequence[Node]) -> str:
    return "that step comes later" if ref in {s.name for s in steps} else "no such step"
