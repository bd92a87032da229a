"""The text ReAct protocol, for models without native tool calling.

The model is told to answer in ``Thought: / Action: / Action Input: / Final Answer:`` lines and
gets ``Observation:`` messages back. Parsing is forgiving: labels in any case or in markdown bold,
tool names in backticks or with inline ``name({...})`` arguments, JSON fenced, Python-ish or as
``key=value`` pairs, and a hallucinated ``Observation:`` (and all after it) is dropped.

>>> parse_react('Thought: add them\\nAction: `add`\\nAction Input: {"a": 1, "b": 2}')
Action(tool='add', arguments={'a': 1, 'b': 2}, thought='add them')
>>> parse_react("**Final Answer:** 3")
Answer(text='3', thought='')
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import ModelRequest, ToolSpec
from ._plans import loose_json

# A label at a line start, markdown tolerated. Possessive (*+): the markup classes share no
# character with the label words, and without backtracking the search stays linear.
_L = r"^[ \t>*_#`-]*+{}[ \t*_`]*+[:：][ \t*_]*+"
_THOUGHT = re.compile(_L.format("thought"), re.I | re.M)
_ACTION = re.compile(_L.format("action") + r"(.*)$", re.I | re.M)
_INPUT = re.compile(_L.format(r"action[ _]input"), re.I | re.M)
_FINAL = re.compile(_L.format(r"final[ _]answer"), re.I | re.M)
_OBSERVATION = re.compile(_L.format("observation"), re.I | re.M)
# \b and the possessive \w++: a word is tried once, not from each of its letters (which is
# quadratic on a megabyte of letters).
_PAIR = re.compile(r"\b(\w++)\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^,\n]+)")


@dataclass(frozen=True, slots=True)
class Action:
    """The model wants ``tool`` called; ``arguments`` is a dict, or raw text when it wrote no
    JSON object (the agent maps it onto a single-parameter tool)."""

    tool: str
    arguments: dict[str, Any] | str
    thought: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """The model's final answer."""

    text: str
    thought: str = ""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Neither an action nor an answer; ``problem`` is told to the model."""

    problem: str


def parse_react(text: str) -> Action | Answer | Invalid:
    """Read one ReAct turn. Plain prose with no labels at all counts as the final answer."""
    text = until_observation(text)  # the model may imagine the tool's result; ignore it
    # Each label's regex runs only when its word is in the text: a plain substring test skips
    # the per-line-start work of the regexes on long prose.
    low = text.lower()
    action = _ACTION.search(text) if "action" in low else None
    final = _FINAL.search(text) if "answer" in low else None
    thought = _thought(text) if "thought" in low else ""
    if final is not None and (action is None or final.start() < action.start()):
        return Answer(_unfence(text[final.end():]), thought)
    if action is None:
        if ("thought" in low and _THOUGHT.search(text)) or ("input" in low
                                                            and _INPUT.search(text)):
            return Invalid("your reply had no 'Action:' line and no 'Final Answer:' line")
        return Answer(text.strip())
    line = action.group(1).strip().strip("*`'\" ").rstrip(".:")
    name, _, inline = line.partition("(")
    name = name.strip().strip("*`'\" ")
    if not name:
        return Invalid("the 'Action:' line named no tool")
    rest = text[action.end():]
    given = _INPUT.search(rest)
    raw = rest[given.end():] if given else inline.rsplit(")", 1)[0]
    return Action(name, parse_arguments(raw), thought)


def until_observation(text: str) -> str:
    """``text`` without an ``Observation:`` the model imagined after its action."""
    low = text.lower()
    action = _ACTION.search(text) if "action" in low else None
    obs = (_OBSERVATION.search(text, action.end())
           if action is not None and "observation" in low else None)
    return text[:obs.start()].rstrip() if obs is not None else text


def _thought(text: str) -> str:
    m = _THOUGHT.search(text)
    return text[m.end():].split("\n", 1)[0].strip() if m else ""


def _unfence(text: str) -> str:
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3].split("\n", 1)[-1] if "\n" in text[3:-3] else text[3:-3]
    return text.strip()


def parse_arguments(raw: str) -> dict[str, Any] | str:
    """Tool arguments from messy text: a JSON object (fenced or not), a Python dict, or
    ``key=value`` pairs; otherwise the stripped text itself.

    >>> parse_arguments("a=1, b='x'")
    {'a': 1, 'b': 'x'}
    """
    raw = raw.strip()
    value = loose_json(raw) if "{" in raw else None
    if isinstance(value, dict):
        return value
    pairs = _PAIR.findall(raw) if "\n" not in raw.strip() else []
    if pairs and "=" in raw:
        return {k: _scalar(v) for k, v in pairs}
    return _unfence(raw).strip("\"'")


def _scalar(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text.strip("\"'")


def react_instructions(tools: Sequence[ToolSpec]) -> str:
    """The system-prompt section that teaches a model the text protocol and the tools."""
    lines = ["You can use these tools:"]
    for t in tools:
        props = t.parameters.get("properties", {})
        required = set(t.parameters.get("required", []))
        args = ", ".join(f'"{k}": {v.get("type", "any")}{"" if k in required else " (optional)"}'
                         for k, v in props.items())
        lines.append(f"- {t.name}: {t.description} Arguments: {{{args}}}")
    names = ", ".join(t.name for t in tools)
    lines += ["", "To use a tool, reply in exactly this format and then stop:",
              "Thought: what you need to do next",
              f"Action: the tool's name, one of [{names}]",
              "Action Input: the arguments as one JSON object",
              "", "You will get the result as 'Observation: ...'. When you know the answer, reply:",
              "Thought: I know the answer", "Final Answer: the answer"]
    return "\n".join(lines)


def sim_agent_policy(calls: Sequence[tuple[str, Mapping[str, Any]]],
                     answer: str = "{observation}") -> Callable[[ModelRequest], Any]:
    """A ``SimModel(fn=...)`` that plays an agent: make ``calls`` in order, then answer.

    It counts the observations already in the conversation, so it is stateless and works in
    native mode (tool calls) and text mode (ReAct text) alike. ``answer`` may use
    ``{observation}`` (the last tool result) and ``{input}`` (the first user message).

    >>> from orchnb.models import SimModel
    >>> policy = sim_agent_policy([("add", {"a": 2, "b": 3})], "It is {observation}.")
    >>> _ = SimModel("calc", fn=policy).register()
    """
    def policy(request: ModelRequest) -> Any:
        msgs = request.messages
        native = [m.content for m in msgs if m.role == "tool"]
        text = [m.content.split(":", 1)[1].strip() for m in msgs
                if m.role == "user" and m.content.startswith("Observation:")]
        seen = native or text
        if len(seen) < len(calls):
            name, args = calls[len(seen)]
            if request.tools:
                return {"tool": name, "args": dict(args)}
            return (f"Thought: I should use {name}.\nAction: {name}\n"
                    f"Action Input: {json.dumps(dict(args))}")
        first = next((m.content for m in msgs if m.role == "user"), "")
        final = answer.format(observation=seen[-1] if seen else "", input=first)
        return final if request.tools else f"Thought: I know the answer.\nFinal Answer: {final}"

    return policy
