"""PlanExecute: a planner writes a plan, an executor runs each step, a re-planner may revise it.

::

    task → planner → plan v1 → executor (step 1) → re-planner → plan v2 / final answer
                                  ↑__________________________________|

Plans are validated (see ``_plans``) and every version is in the trace: a ``plan`` step span
with ``iteration`` = version and ``meta`` = ``{"version", "steps", "revised"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..engine import RunContext, as_text, check_count
from ..exceptions import MaxIterationsExceeded, RunError, SpecError
from ..models import Message, Model
from ._base import Node, Pipeline, Step, Vars, as_node
from ._plans import Final, History, Numbered, PlanError, parse_plan, parse_replan
from ._to_yaml import node_spec, without_defaults

PLANNER_PROMPT = """Make a short step-by-step plan for this task: {{ task }}
Reply with only a JSON list of steps, e.g. ["find X", "compute Y from X"]."""
REPLANNER_PROMPT = """Task: {{ task }}
The plan was:
{{ plan }}
Done so far, with results:
{{ history }}
If the results answer the task, reply `FINAL ANSWER: <the answer>`. Otherwise reply with only a
JSON list of the steps still to do."""
_REASK = {
    parse_plan: 'Reply with only a JSON list of steps, e.g. ["step one", "step two"].',
    parse_replan: 'Reply with only `FINAL ANSWER: <answer>` or a JSON list of the remaining steps.',
}


class PlanExecute(Pipeline):
    """Plan, then execute each step; optionally re-plan after each step (``max_replans``).

    ``planner`` / ``replanner`` are steps (or a model id, using the default prompts) whose
    replies hold a plan; ``executor`` is any step or pattern, usually an :class:`Agent`. The
    executor's template variables: ``input`` (the plan step), ``task``, ``plan``, ``history``
    (steps done with their results). The output is the re-planner's final answer, else the last
    step's result.

    >>> from orchnb.models import SimModel
    >>> _ = SimModel("planner", default='["add 2 and 3", "double it"]').register()
    >>> pe = PlanExecute("calc", "sim:planner", Step("do", "sim:echo", "Do: {{ input }}"))
    >>> pe("compute (2+3)*2").output
    'Do: double it'
    """

    pattern = "plan_execute"

    model_attrs: ClassVar[tuple[str, ...]] = ("planner", "replanner", "executor")
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {"max_replans": 0, "max_steps": 1}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset({"plan", "execute"})
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, planner: Any, executor: Any, *, replanner: Any = None,
                 max_replans: int = 0, max_steps: int = 20, **options: Any):
        super().__init__(name, **options)
        self.planner = _planner(planner, "planner", PLANNER_PROMPT)
        self.executor: Node = as_node(executor, "executor")
        for key, value, low in (("max_replans", max_replans, 0), ("max_steps", max_steps, 1)):
            check_count(value, f"plan_execute '{name}': {key}", minimum=low, key=key)
        self.max_replans, self.max_steps = max_replans, max_steps
        if replanner is None and max_replans and isinstance(self.planner, Step):
            replanner = Step("replanner", self.planner.model, REPLANNER_PROMPT,
                             system=self.planner.system)
        if replanner is None and max_replans:
            raise SpecError(f"plan_execute '{name}': max_replans={max_replans} needs a "
                            f"replanner (or an LLM planner to derive one from)", key="replanner")
        self.replanner = None if replanner is None else _planner(replanner, "replanner",
                                                                 REPLANNER_PROMPT)

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        task, history = as_text(input), History()
        scope = {**vars, "task": task, "history": history}
        plan = Numbered(await self._plan(ctx, self.planner, parse_plan, scope, 1))
        todo, version, replans = list(plan), 1, 0
        while todo:
            if len(history) >= self.max_steps:
                raise MaxIterationsExceeded(
                    f"plan_execute '{self.name}': the plan still had {len(todo)} steps after "
                    f"max_steps={self.max_steps}; raise max_steps or ask for shorter plans")
            step = todo.pop(0)
            with ctx.span("step", "execute", iteration=len(history) + 1, input=step) as span:
                span.note(plan_version=version, plan_step=step)
                result = await self.executor.invoke(ctx, step, {**scope, "plan": plan})
                span.set_output(result)
            history.append({"step": step, "result": result})
            if self.replanner is None or replans >= self.max_replans:
                continue
            decision = await self._plan(ctx, self.replanner, parse_replan,
                                        {**scope, "plan": plan}, version + 1)
            if isinstance(decision, Final):
                return decision.answer if decision.answer is not None else result
            replans, version = replans + 1, version + 1
            plan, todo = Numbered([h["step"] for h in history] + decision), list(decision)
        return history[-1]["result"] if history else None

    async def _plan(self, ctx: RunContext, node: Node, parse: Any, scope: Vars,
                    version: int) -> Any:
        """Ask ``node`` for a plan (or a re-plan), re-asking an LLM step once if unreadable."""
        with ctx.span("step", "plan", iteration=version, input=scope["task"]) as span:
            task = scope["task"]
            reply = await node.invoke(ctx, task, scope)
            try:
                parsed = parse(reply)
            except PlanError as e:
                if not isinstance(node, Step):
                    raise _unusable(self.name, node.name, e) from None
                messages = [*node.messages(task, scope), Message("assistant", as_text(reply)),
                            Message("user", f"I could not read that: {e}. {_REASK[parse]}")]
                reply = (await ctx.call(node.model, messages, step=node.name)).text
                try:
                    parsed = parse(reply)
                except PlanError as e2:
                    raise _unusable(self.name, node.name, e2) from None
            final = isinstance(parsed, Final)
            span.set_output(f"FINAL ANSWER: {parsed.answer}" if final else str(Numbered(parsed)))
            span.note(version=version, revised=version > 1, final=final,
                      steps=None if final else parsed)
            return parsed

    def children(self) -> list[Node]:
        return [n for n in (self.planner, self.executor, self.replanner) if n is not None]

    def edges(self) -> list[tuple[str, str, str]]:
        p, x = self.planner.name, self.executor.name
        out = [("__in__", p, "task"), (p, x, "plan step"), (x, x, "next step")]
        if self.replanner is None:
            return [*out, (x, "__out__", "last result")]
        r = self.replanner.name
        return [*out, (x, r, "results"), (r, x, f"revised plan ≤ {self.max_replans}"),
                (r, "__out__", "final answer"), (x, "__out__", "last result")]

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the plan, each plan step's executor, then the re-plans."""
        here = w.within(at, self.name)
        task = input if isinstance(input, str) else as_text(input)
        scope = {**vars, "task": task, "history": History()}
        w.walk(self.planner, task, scope, w.under(here, "plan v1"))
        scope = {**scope, "plan": w.pending(f"plan written by {self.planner.name}")}
        w.walk(self.executor, w.pending("a plan step"), scope,
               w.under(here, f"each plan step (≤ {self.max_steps})"))
        if self.replanner is not None:
            done = {**scope, "history": w.pending("steps done so far, with results")}
            w.walk(self.replanner, task, done,
                   w.under(here, f"after each step (≤ {self.max_replans} re-plans)"))
        return w.pending(f"output of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this plan-and-execute (``pipe.to_yaml()``)."""
        out: dict[str, Any] = {"planner": node_spec(self.planner, PLANNER_PROMPT),
                               "executor": node_spec(self.executor)}
        r = self.replanner
        # The replanner PlanExecute derives from an LLM planner when max_replans is set: implied.
        derived = (self.max_replans and type(self.planner) is Step and type(r) is Step
                   and r.name == "replanner" and r.prompt.source == REPLANNER_PROMPT
                   and r.model.id == self.planner.model.id
                   and _source(r.system) == _source(self.planner.system)
                   and r.temperature is None and r.max_tokens is None and not r.stream
                   and r.parse is None)
        if r is not None and not derived:
            out["replanner"] = node_spec(r, REPLANNER_PROMPT)
        out.update(without_defaults({"max_replans": self.max_replans,
                                     "max_steps": self.max_steps}, max_replans=0, max_steps=20))
        return out


def _source(prompt: Any) -> str | None:
    return None if prompt is None else prompt.source


def _planner(obj: Any, name: str, prompt: str) -> Node:
    if isinstance(obj, (str, Model)):
        return Step(name, obj, prompt)
    return as_node(obj, name)


def _unusable(pipe: str, step: str, error: PlanError) -> RunError:
    err = RunError(f"plan_execute '{pipe}': step '{step}' gave no usable plan: {error}; make its "
                   f"prompt ask for a JSON list of steps")
    err.step = step
    return err
