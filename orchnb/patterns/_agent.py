"""Agent (ReAct): the model picks a tool, observes the result, and loops until it answers.

::

    input → model ⇄ tools (one iteration per model call) → final answer

Tool calls are native (OpenAI/Anthropic tool calling) or, for models without it, the text
``Thought / Action / Action Input / Final Answer`` protocol (see ``_react_text``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from ..engine import (
    MAX_TOKENS_KNOB,
    RunContext,
    as_text,
    call_levers,
    check_count,
    check_number,
)
from ..exceptions import MaxIterationsExceeded, SpecError
from ..memory import as_memory, recall
from ..models import Message, Model, ToolCall, cache_ttl, check_service_tier, resolve_model
from ..tools import Tool, as_tool
from ._base import Pipeline, Vars, _check_memory_use
from ._react_text import (
    Action,
    Answer,
    parse_react,
    react_instructions,
    sim_agent_policy,
    until_observation,
)
from ._structured import OutputSchema, conform
from ._structured import native as native_output
from ._template import KNOWN_VARIABLES, Prompt
from ._to_yaml import fn_name, lever_spec, without_defaults

ToolMode = Literal["native", "text", "auto"]
MAX_TOOL_CALLS_LIMIT = 1_000
"""The largest per-turn cap ``max_tool_calls`` may be set to."""


class Agent(Pipeline):
    """A ReAct agent: ``model ⇄ tools`` until a final answer or ``max_iterations``.

    Tools are typed Python functions (or :class:`~orchnb.Tool`); bad arguments and exceptions
    become observations the model can react to. ``tool_mode`` is ``"native"`` (the provider's
    tool calling), ``"text"`` (ReAct text) or ``"auto"`` (native where the provider has it, and
    a ReAct ``Action:`` written as text is still honoured). At most ``max_tool_calls`` of the
    calls one model reply asks for are run; each call beyond that is answered with an error
    observation (and an error tool span) instead of being executed.

    >>> def add(a: int, b: int) -> int:
    ...     '''Add two integers.'''
    ...     return a + b
    >>> from orchnb.models import SimModel
    >>> policy = Agent.sim_policy([("add", {"a": 2, "b": 3})], "It is {observation}.")
    >>> _ = SimModel("calc", fn=policy).register()
    >>> Agent("calc", "sim:calc", [add])("what is 2 + 3?").output
    'It is 5.'
    """

    pattern = "agent"
    sim_policy = staticmethod(sim_agent_policy)

    model_attrs: ClassVar[tuple[str, ...]] = ("model",)
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {"max_tokens": 1, "max_iterations": 1,
                                                "max_tool_calls": 1}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset()
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, model: str | Model, tools: Sequence[Any] = (), *,
                 system: str | None = None, prompt: str = "{{ input }}", max_iterations: int = 8,
                 max_tool_calls: int = 32, tool_mode: ToolMode = "auto",
                 temperature: float | None = None, max_tokens: int | None = None,
                 output: Any = None, memory: Any = None, cache_prompt: bool | str = False,
                 **options: Any):
        super().__init__(name, **options)
        owner = f"agent '{name}': "
        self.model = resolve_model(model)
        self.cache_prompt = cache_ttl(cache_prompt, f"{owner}cache_prompt")
        """Prompt caching of the system prompt, the tool list and the conversation so far:
        ``"5m"`` (``cache_prompt=True``), ``"1h"`` or None."""
        check_service_tier(options.get("service_tier"), self.model, f"{owner}service_tier")
        self.output = None if output is None else OutputSchema(output, owner=owner)
        """The final answer's schema: the agent's output is then the validated object."""
        self.tools: dict[str, Tool] = {}
        # A list inside the list (``[lookup, orchnb.mcp_tools(...)]``) is its tools, in order.
        flat = [t for obj in tools for t in (obj if isinstance(obj, (list, tuple)) else [obj])]
        for i, obj in enumerate(flat):
            if not isinstance(obj, Tool) and not callable(obj):
                raise SpecError(f"{owner}tools[{i}] = {obj!r} is not a tool: pass a typed Python "
                                f"function or an orchnb.Tool", key=f"tools[{i}]")
            t = as_tool(obj)
            if t.name in self.tools:
                raise SpecError(f"{owner}two tools are named '{t.name}'", key=f"tools[{i}]")
            self.tools[t.name] = t
        allowed = KNOWN_VARIABLES | {"memory"}
        self.prompt = Prompt(prompt, owner=owner, allowed=allowed)
        self.system = None if system is None else Prompt(system, where="system", owner=owner,
                                                         allowed=allowed)
        self.memory = None if memory is None else as_memory(memory)
        """Recalled for the agent's input into ``{{ memory }}`` (prompt or system)."""
        _check_memory_use(owner, self.memory, self.prompt, self.system)
        check_count(max_iterations, f"{owner}max_iterations", key="max_iterations")
        check_count(max_tool_calls, f"{owner}max_tool_calls (tool calls run per model reply)",
                    key="max_tool_calls", maximum=MAX_TOOL_CALLS_LIMIT)
        self.max_tool_calls = max_tool_calls
        if tool_mode not in ("native", "text", "auto"):
            raise SpecError(f"{owner}tool_mode must be native, text or auto, got {tool_mode!r}",
                            key="tool_mode")
        check_number(temperature, f"{owner}temperature", hint="usually 0 to 2")
        check_number(max_tokens, f"{owner}max_tokens", minimum=1, integer=True,
                     maximum=MAX_TOKENS_KNOB)
        self.max_iterations, self.tool_mode = max_iterations, tool_mode
        self.temperature, self.max_tokens = temperature, max_tokens

    @property
    def native(self) -> bool:
        """Whether tools go to the model natively (else as ReAct text in the system prompt)."""
        if self.tool_mode != "auto":
            return self.tool_mode == "native"
        return self.model.capabilities.tools

    @property
    def _native_output(self) -> bool:
        # The schema rides on the wire only beside native tools (a ReAct text turn is prose).
        return self.output is not None and native_output(self.model) and (
            self.native or not self.tools)

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        with call_levers(self.cache_prompt, self._overrides.get("service_tier")):
            return await self._loop(ctx, input, vars)

    async def _loop(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        if self.memory is not None:
            vars = {**vars, "memory": await recall(ctx, self.memory, as_text(input),
                                                   step=self.name)}
        messages = self._opening(input, vars)
        cap = ctx.options.max_iterations or self.max_iterations
        for i in range(1, cap + 1):
            with ctx.span("step", self.name, iteration=i, input=_turn_input(messages)) as span:
                answer, observed = await self._iterate(ctx, messages)
                if answer is not None and self.output is not None:
                    answer = await conform(
                        ctx, self.model, messages, self.output, answer, step=self.name,
                        tools=[t.spec for t in self.tools.values()] if self.native else (),
                        temperature=self.temperature, max_tokens=self.max_tokens)
                span.set_output(answer if answer is not None else "\n".join(observed))
                if answer is not None:
                    return answer
        raise MaxIterationsExceeded(
            f"agent '{self.name}' gave no final answer within max_iterations={cap}; raise "
            f"max_iterations, or make the prompt say when to stop")

    def _opening(self, input: Any, vars: Vars) -> list[Message]:
        values = {**vars, "input": as_text(input), "tools": list(self.tools)}
        system = self.system.render(**values) if self.system is not None else ""
        if not self.native and self.tools:
            system = (system + "\n\n" if system else "") + react_instructions(
                [t.spec for t in self.tools.values()])
        if self.output is not None and not self._native_output:
            system = (system + "\n\n" if system else "") + (
                self.output.instructions("Your final answer must be"))
        user = Message("user", self.prompt.render(**values))
        return [Message("system", system), user] if system else [user]

    async def _iterate(self, ctx: RunContext, messages: list[Message]) -> tuple[Any, list[str]]:
        """One model call and the tools it asks for: (final answer or None, observations)."""
        native = self.native
        schema = self.output if self._native_output else None
        response = await ctx.call(
            self.model, messages, step=self.name,
            tools=[t.spec for t in self.tools.values()] if native else (),
            temperature=self.temperature, max_tokens=self.max_tokens,
            output_schema=schema.schema if schema is not None else None,
            output_name=schema.name if schema is not None else "output")
        if response.tool_calls:
            messages.append(Message("assistant", response.text, list(response.tool_calls)))
            observed = []
            for n, call in enumerate(response.tool_calls, 1):
                observed.append(await self._use(ctx, call) if n <= self.max_tool_calls
                                else self._refuse(ctx, call, self._over_cap(response)))
                messages.append(Message("tool", observed[-1], tool_call_id=call.id,
                                        name=call.name))
            return None, observed
        turn = parse_react(response.text)
        if isinstance(turn, Answer):
            return turn.text, []
        if native and not (self.tool_mode == "auto" and isinstance(turn, Action)
                           and self._find(turn.tool)):
            return response.text, []  # native models answer in prose
        if isinstance(turn, Action):
            observed = await self._use(ctx, ToolCall("", turn.tool, turn.arguments))  # type: ignore[arg-type]
        else:
            observed = (f"Invalid format: {turn.problem}. Reply with 'Action:' and "
                        f"'Action Input:' lines, or with 'Final Answer:'.")
        messages += [Message("assistant", until_observation(response.text)),
                     Message("user", f"Observation: {observed}")]
        return None, [observed]

    def _find(self, name: str) -> Tool | None:
        if name in self.tools:
            return self.tools[name]
        folded = {k.lower(): t for k, t in self.tools.items()}
        return folded.get(name.strip().lower())

    async def _use(self, ctx: RunContext, call: ToolCall) -> str:
        """Run one requested tool call and return the observation text."""
        tool, args = self._find(call.name), call.arguments
        if tool is not None and isinstance(args, str):  # text mode: bare value, one parameter
            params = list(tool.spec.parameters.get("properties", {}))
            args = {params[0]: args} if len(params) == 1 else {"_raw": args}
        if tool is None:
            problem = (f"Error: unknown tool '{call.name}'; available tools: "
                       f"{', '.join(self.tools) or '(none)'}")
        elif isinstance(args, Mapping) and set(args) == {"_raw"}:
            keys = dict.fromkeys(tool.spec.parameters.get("properties", {}), "...")
            problem = (f"Error: the arguments for {tool.name} are not a JSON object: "
                       f"{args['_raw']!r}; send them as JSON, e.g. {json.dumps(keys)}")
        else:
            return (await ctx.tool(tool, dict(args), step=self.name,
                                   call_id=call.id or None)).text
        return self._refuse(ctx, call, problem)

    def _over_cap(self, response: Any) -> str:
        return (f"Error: not run: this reply asked for {len(response.tool_calls)} tool calls and "
                f"at most {self.max_tool_calls} run per reply; ask for the ones still needed "
                f"in your next reply")

    def _refuse(self, ctx: RunContext, call: ToolCall, problem: str) -> str:
        """Record a call that cannot run and return its error observation."""
        # Nothing runs, so this is recorded as a failed tool span but is no step boundary.
        with ctx.span("tool", self.name, tool=call.name, input=as_text(call.arguments)) as span:
            span.fail(problem[7:], output=problem)
        return problem

    def describe(self) -> dict[str, Any]:
        """The agent loop for graphs: the model node, one node per tool, and their edges."""
        model = {"id": self.name, "kind": "llm", "model": self.model.id,
                 "prompt": self.prompt.source, "tool_mode": self.tool_mode,
                 "system": self.system.source if self.system is not None else None}
        tools = [{"id": t.name, "kind": "tool", "description": t.description,
                  "parameters": t.spec.parameters} for t in self.tools.values()]
        return {"id": self.name, "kind": "pattern", "pattern": self.pattern,
                "max_iterations": self.max_iterations, "children": [model, *tools],
                "edges": self.edges()}

    def edges(self) -> list[tuple[str, str, str]]:
        calls = [e for t in self.tools for e in ((self.name, t, "call"), (t, self.name, "observe"))]
        return [("__in__", self.name, ""), *calls,
                (self.name, self.name, f"loop ≤ {self.max_iterations}"),
                (self.name, "__out__", "final answer")]

    def __repr__(self) -> str:
        return (f"<Agent {self.name!r}: {self.model.id}, tools: {', '.join(self.tools) or '-'}, "
                f"max_iterations={self.max_iterations}, max_tool_calls={self.max_tool_calls}>")

    def children(self) -> list[Any]:
        """An agent holds no nodes: its tools are calls it makes, not steps of a graph."""
        return []

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the first call, then the later iterations re-sending the conversation."""
        here = w.within(at, self.name)
        text = input if isinstance(input, str) else as_text(input)
        try:
            messages = self._opening(text, vars)
            status, note = ("depends" if w.marked(messages) else "known"), ""
        except Exception as e:  # shown in the preview; the run itself would raise it
            messages, status, note = [Message("user", self.prompt.source)], "error", str(e)
        tools = [t.spec for t in self.tools.values()] if self.native else []
        first = w.model_call(self.name, "agent", self.model, messages,
                             w.under(here, "iteration 1"), status=status,
                             deps=["input"] if status == "depends" else [], tools=tools,
                             max_tokens=self.max_tokens, cache_prompt=self.cache_prompt,
                             note=note or f"tools: {', '.join(self.tools) or '-'}")
        if self.max_iterations > 1:
            later = [*messages, Message("assistant", w.pending("tool call chosen by the model")),
                     Message("tool", w.pending("observation"))]
            w.model_call(self.name, "agent", self.model, later, w.under(
                here, f"iterations 2–{self.max_iterations}, until it answers", certain=False),
                status="depends", deps=["earlier iterations"], tools=tools,
                calls=self.max_iterations - 1, max_tokens=self.max_tokens,
                cache_prompt=self.cache_prompt,
                note="each iteration re-sends the whole conversation: see the context chart")
        w.agent_context(self, first)
        return w.pending(f"answer of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this agent (``pipe.to_yaml()``)."""
        out: dict[str, Any] = {"model": self.model.id}
        if self.system is not None:
            out["system"] = self.system.source
        tools: list[Any] = []
        servers: dict[int, dict[str, Any]] = {}
        for t in self.tools.values():
            mcp = getattr(t, "yaml_spec", None)  # an MCP server's tool: one entry per server
            if mcp is not None:
                entry = servers.get(id(t.server))
                if entry is None:
                    entry = servers[id(t.server)] = {"mcp": {**mcp["mcp"], "include": []}}
                    tools.append(entry)
                entry["mcp"]["include"].append(t.name)
                continue
            tools.append(fn_name(getattr(t, "fn", None),
                                 f"agent '{self.name}': tool '{t.name}'"))
        out.update(without_defaults(
            {"prompt": self.prompt.source, "tools": tools, "max_iterations": self.max_iterations,
             "max_tool_calls": self.max_tool_calls, "tool_mode": self.tool_mode,
             "temperature": None if self.temperature is None else float(self.temperature),
             "max_tokens": self.max_tokens},
            prompt="{{ input }}", tools=[], max_iterations=8, max_tool_calls=32,
            tool_mode="auto", temperature=None, max_tokens=None))
        memory = getattr(self, "memory", None)
        if memory is not None:
            out["memory"] = memory.name
        out.update(lever_spec(self))
        return out


def _turn_input(messages: list[Message]) -> str:
    """What is new to the model this iteration: the user's message, then the observations
    since its last reply (each iteration span shows its input, as tracing UIs expect)."""
    tail: list[str] = []
    for m in reversed(messages):
        if m.role in ("assistant", "system"):
            break
        tail.append(m.content if isinstance(m.content, str) else as_text(m.content))
    return "\n".join(reversed(tail))
