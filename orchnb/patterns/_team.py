"""Team: a supervisor hands turns to named members over a shared workspace until it finishes.

::

    task → supervisor ⇄ member A / member B / …  (each turn: pick, act, post to workspace)
                 └→ FINISH: answer

Each turn is a ``handoff`` span (``iteration`` = turn, ``route`` = the member picked, ``meta``
= ``{"from", "to", "after", "instruction"}``: the supervisor hands
the turn to ``to`` after ``after`` acted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..engine import RunContext, as_text, check_count
from ..exceptions import MaxIterationsExceeded, SpecError
from ..models import Model
from ._base import Node, Pipeline, Step, Vars, as_node
from ._plans import Workspace, parse_decision
from ._to_yaml import node_spec, without_defaults

SUPERVISOR_PROMPT = """You lead a team ({{ agents | join(", ") }}) working on this task:
{{ task }}

Workspace (what the team has done so far):
{{ workspace }}

Who should act next? Reply with only their name, optionally followed by ": <instruction>".
When the task is done, reply `FINISH: <the final answer>`."""


class Team(Pipeline):
    """A supervisor picks who acts next; members post to a shared workspace; ``FINISH`` ends.

    ``agents`` maps names to members (an :class:`Agent`, a :class:`Chain`, a :class:`Step`, a
    Python function…) or is a list of them (named by their ``name``). The supervisor is a step
    (or a model id, using a default prompt) with template variables ``task``, ``workspace`` and
    ``agents``; it replies with a member's name (optionally ``name: instruction``) or
    ``FINISH: <answer>``. A member's input is the task (plus the workspace and the
    supervisor's instruction once there are any); its variables include ``task`` and
    ``workspace``.

    >>> from orchnb.models import SimModel
    >>> _ = SimModel("boss", replies=["writer: draft it", "FINISH: done"]).register()
    >>> team = Team("t", "sim:boss", {"writer": Step("w", "sim:echo", "Draft: {{ task }}")})
    >>> team("a haiku").output
    'done'
    """

    pattern = "team"

    model_attrs: ClassVar[tuple[str, ...]] = ("supervisor",)
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {"max_turns": 1}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset({"handoff"})
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, supervisor: Any, agents: Mapping[str, Any] | Sequence[Any], *,
                 max_turns: int = 10, **options: Any):
        super().__init__(name, **options)
        self.supervisor: Node = (Step("supervisor", supervisor, SUPERVISOR_PROMPT)
                                 if isinstance(supervisor, (str, Model))
                                 else as_node(supervisor, "supervisor"))
        items = agents.items() if isinstance(agents, Mapping) else [
            (getattr(a, "name", None) or getattr(a, "__name__", f"agent{i + 1}"), a)
            for i, a in enumerate(agents)]
        self.members: dict[str, Node] = {}
        for key, member in items:
            if str(key) in self.members:
                raise SpecError(f"team '{name}': two members are named '{key}'", key="agents")
            self.members[str(key)] = as_node(member, str(key))
        if not self.members:
            raise SpecError(f"team '{name}' has no members; give it at least one", key="agents")
        check_count(max_turns, f"team '{name}': max_turns", key="max_turns")
        self.max_turns = max_turns

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        task, workspace = as_text(input), Workspace()
        scope = {**vars, "task": task, "workspace": workspace, "agents": list(self.members)}
        last: Any = None
        previous: str | None = None
        for turn in range(1, self.max_turns + 2):  # the extra turn may only FINISH
            with ctx.span("step", "handoff", iteration=turn, input=task) as span:
                reply = await self.supervisor.invoke(ctx, task, scope)
                decision = parse_decision(reply, list(self.members))
                who = "FINISH" if decision.done else decision.agent
                span.set_route(who)
                span.note(**{"from": self.supervisor.name, "to": who, "after": previous,
                             "instruction": decision.instruction or None})
                if decision.done:
                    answer = decision.answer if decision.answer is not None else last
                    span.set_output(answer)
                    return answer
                if turn > self.max_turns:
                    raise MaxIterationsExceeded(
                        f"team '{self.name}': the supervisor did not FINISH within max_turns="
                        f"{self.max_turns} (it picked {who or 'nobody'} next), so the run's "
                        f"status is max_iterations (every cap's status); raise max_turns or "
                        f"have its prompt say when to reply 'FINISH: <answer>'")
                if who is None:  # tell the supervisor, through the workspace, what went wrong
                    workspace.post(turn, "team", decision.problem)
                    span.set_output(decision.problem)
                    continue
                member = self.members[who]
                brief = _brief(task, workspace, decision.instruction)
                last = await member.invoke(ctx, brief, scope)
                workspace.post(turn, who, as_text(last))
                previous = who
                span.set_input(brief)
                span.set_output(last)
        raise AssertionError("unreachable")  # pragma: no cover

    def children(self) -> list[Node]:
        return [self.supervisor, *self.members.values()]

    def describe(self) -> dict[str, Any]:
        """The supervisor and each member (ids are the member names) with hand-off edges."""
        members = [{**n.describe(), "id": key}  # type: ignore[attr-defined]
                   for key, n in self.members.items()]
        return {"id": self.name, "kind": "pattern", "pattern": self.pattern,
                "max_turns": self.max_turns,
                "children": [self.supervisor.describe(), *members],  # type: ignore[attr-defined]
                "edges": self.edges()}

    def edges(self) -> list[tuple[str, str, str]]:
        s = self.supervisor.name
        turns = [e for m in self.members for e in ((s, m, "hand off"), (m, s, "result"))]
        return [("__in__", s, "task"), *turns, (s, "__out__", "FINISH")]

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the supervisor's first turn, each member when picked, the later turns."""
        here = w.within(at, self.name)
        task = input if isinstance(input, str) else as_text(input)
        scope = {**vars, "task": task, "workspace": Workspace(), "agents": list(self.members)}
        w.walk(self.supervisor, task, scope, w.under(here, "turn 1"))
        later = {**scope, "workspace": w.pending("workspace after the earlier turns")}
        brief = _brief(task, Workspace(), w.pending("the supervisor's instruction"))
        for key, member in self.members.items():
            w.walk(member, brief, scope,
                   w.under(here, f"when the supervisor picks '{key}'", certain=False))
        w.walk(self.supervisor, task, later, w.under(
            here, f"turns 2–{self.max_turns + 1}, until FINISH", certain=False,
            times=self.max_turns))
        return w.pending(f"output of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this team (``pipe.to_yaml()``)."""
        out: dict[str, Any] = {"supervisor": node_spec(self.supervisor, SUPERVISOR_PROMPT),
                               "agents": {key: node_spec(node)
                                          for key, node in self.members.items()}}
        out.update(without_defaults({"max_turns": self.max_turns}, max_turns=10))
        return out


def _brief(task: str, workspace: Workspace, instruction: str) -> str:
    """What a member is given: the task, then (if any) the workspace and its instruction."""
    parts = [task]
    if workspace:
        parts.append(f"Workspace:\n{workspace}")
    if instruction:
        parts.append(f"Your instruction: {instruction}")
    return "\n\n".join(parts)
