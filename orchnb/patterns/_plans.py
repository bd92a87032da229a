"""Reading structure out of what models write: plans, re-plans and JSON buried in prose.

Small models wrap JSON in markdown fences, add a sentence before it, or answer with a numbered
list instead; these parsers accept all of that and fail with a message saying what was expected.

>>> parse_plan('Sure! ```json\\n["search", "summarize"]\\n```')
['search', 'summarize']
>>> parse_plan("1. search\\n2) summarize")
['search', 'summarize']
>>> parse_replan("FINAL ANSWER: 42")
Final(answer='42')
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

# Parsers of model output must stay linear on hostile text: no pattern may let two adjacent
# quantifiers match the same characters (``\s*`` before ``\n?``, ``\s*`` spanning lines before
# an anchor), which backtracks quadratically on a megabyte of spaces or newlines.
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*+\s*+(.*?)```", re.S)
_ITEM = re.compile(r"^[ \t]*+(?:(?:step[ \t]*+)?\d++[ \t]*+[.):\-]|[-*•])[ \t]++(.*\S)",
                   re.I | re.M)
# Strings (single or double quoted, possibly unterminated) and one kind of bracket.
_STRINGS = r""""[^"\\]*+(?:\\.[^"\\]*+)*+"?|'[^'\\]*+(?:\\.[^'\\]*+)*+'?"""
_TOKENS = {"{": re.compile(_STRINGS + r"|[{}]", re.S), "[": re.compile(_STRINGS + r"|[][]", re.S)}
_MAX_DEPTH = 64
"""Deeper JSON than this is not a plan, decision or tool call: loose_json gives up."""
_MAX_TOKENS = 100_000
_MAX_STARTS = 4
_MAX_FENCES = 8
_MAX_LITERAL = 20_000
"""Longest text given to ``ast.literal_eval`` (Python-ish JSON from small models is short)."""
_MAX_STEPS = 200
"""Most steps a plan may have (each one is a paid call)."""
_MAX_LIST_TEXT = 65_536
"""How much of a reply is read for a numbered / bulleted list."""
_FINAL = re.compile(r"^[\s>*_#`\"']*+(?:final[ _]answer|final|answer|done|finish(?:ed)?)"
                    r"[\s*_`\"']*+(?::|-|$)\s*(.*)", re.I | re.S)
_STEP_KEYS = ("step", "description", "task", "title", "action", "text")
_FINAL_KEYS = ("final", "final_answer", "answer", "response", "result")


class PlanError(ValueError):
    """A reply held no usable plan (the message says what was expected)."""


class Plan(BaseModel):
    """A validated plan: one or more non-empty step descriptions."""

    steps: list[str] = Field(min_length=1)

    @field_validator("steps", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [s for s in (_step_text(v).strip() for v in value) if s]


@dataclass(frozen=True, slots=True)
class Final:
    """A re-planner's (or supervisor's) final answer; ``None`` means "use the last result"."""

    answer: str | None


class Numbered(list):
    """A list that renders as a numbered list in prompts: ``{{ plan }}`` → ``1. a`` / ``2. b``."""

    def __str__(self) -> str:
        return "\n".join(f"{i}. {_step_text(s)}" for i, s in enumerate(self, 1)) or "(none)"


class History(list):
    """Steps done and their results; renders as ``1. step → result`` lines in prompts."""

    def __str__(self) -> str:
        return "\n".join(f"{i}. {h['step']} → {h['result']}" for i, h in enumerate(self, 1)) \
            or "(nothing yet)"


def _step_text(value: Any) -> str:
    if isinstance(value, dict):
        for key in _STEP_KEYS:
            if key in value:
                return str(value[key])
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def loose_json(text: str) -> Any:
    """The first JSON (or Python literal) value in ``text``: fenced, bare, or inside prose.

    Returns None when there is none. Hostile text cannot make it slow or crash it: the scan is
    linear and bounded (at most ``_MAX_DEPTH`` levels of nesting and ``_MAX_TOKENS`` brackets
    and strings looked at), so a megabyte of anything is answered in milliseconds.

    >>> loose_json('I think {"a": 1} is right')
    {'a': 1}
    >>> loose_json("[" * 100_000) is None
    True
    """
    fenced = [m.group(1) for m in itertools.islice(_FENCE.finditer(text), _MAX_FENCES)]
    for cand in [*fenced, text]:
        cand = cand.strip()
        for attempt in (cand, _balanced(cand, "{", "}"), _balanced(cand, "[", "]")):
            if attempt:
                value = _load(attempt)
                if value is not None:
                    return value
    return None


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than ~1000
        pass
    if len(text) > _MAX_LITERAL:  # Python's parser is slow on large inputs; JSON was tried
        return None
    try:  # single quotes, trailing commas, True/None: Python-ish JSON from small models
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _balanced(text: str, open_: str, close: str) -> str | None:
    """The first balanced ``open_ … close`` span of ``text`` (quotes respected), or None.

    One pass over the brackets and strings from the first ``open_`` (a regex skips everything
    else); when that one never closes, the earliest pair that did is the answer. A few restarts
    recover from a stray quote; nesting deeper than ``_MAX_DEPTH`` or more than ``_MAX_TOKENS``
    tokens means it is not a reply worth reading, and gives None.
    """
    tokens = _TOKENS[open_]
    budget = _MAX_TOKENS
    start = text.find(open_)
    for _ in range(_MAX_STARTS):
        if start == -1:
            return None
        stack: list[int] = []
        best: tuple[int, int] | None = None
        for m in tokens.finditer(text, start):
            budget -= 1
            if budget < 0:
                return None
            ch = text[m.start()]
            if ch == open_:
                if len(stack) >= _MAX_DEPTH:
                    return None
                stack.append(m.start())
            elif ch == close and stack:
                first = stack.pop()
                if not stack:
                    return text[first:m.end()]
                if best is None or first < best[0]:
                    best = (first, m.end())
        if best is not None:
            return text[best[0]:best[1]]
        start = text.find(open_, start + 1)
    return None


def parse_plan(reply: Any) -> list[str]:
    """Plan steps from a list, ``{"steps": [...]}``, JSON text (fenced or not) or a numbered /
    bulleted list; raises :class:`PlanError`."""
    value = reply if not isinstance(reply, str) else loose_json(reply)
    if isinstance(value, dict):
        value = next((value[k] for k in ("steps", "plan") if k in value), None)
    if value is None and isinstance(reply, str):
        items = itertools.islice(_ITEM.finditer(reply, 0, _MAX_LIST_TEXT), _MAX_STEPS + 1)
        value = [m.group(1).strip("*_ ") for m in items] or None
    if isinstance(value, list) and len(value) > _MAX_STEPS:
        raise PlanError(f"the plan has more than {_MAX_STEPS} steps; ask the planner for a "
                        "shorter plan")
    try:
        return Plan(steps=value).steps
    except ValidationError:
        excerpt = reply if len(str(reply)) < 200 else str(reply)[:200] + "…"
        raise PlanError(f"expected a JSON list of steps (or a numbered list), got {excerpt!r}"
                        ) from None


def parse_replan(reply: Any) -> Final | list[str]:
    """A re-planner's reply: a :class:`Final` answer or the revised remaining steps (possibly
    empty: nothing left to do). Accepts ``FINAL ANSWER: ...``, ``{"final": ...}``,
    ``{"steps": [...]}``, a JSON list or a numbered list; raises :class:`PlanError`."""
    if isinstance(reply, str) and (m := _FINAL.match(reply.strip())):
        return Final(m.group(1).strip() or None)
    value = reply if not isinstance(reply, str) else loose_json(reply)
    if isinstance(value, dict):
        for key in _FINAL_KEYS:
            if value.get(key) not in (None, ""):
                return Final(str(value[key]))
        steps = next((value[k] for k in ("steps", "plan", "remaining") if k in value), None)
        if isinstance(steps, list):
            return [s for s in (_step_text(v).strip() for v in steps) if s]
    if isinstance(value, list):
        return [s for s in (_step_text(v).strip() for v in value) if s]
    try:
        return parse_plan(reply)
    except PlanError:
        raise PlanError(f"expected 'FINAL ANSWER: ...' or a JSON list of the remaining steps, "
                        f"got {str(reply)[:200]!r}") from None


# -- supervisor decisions (Team) -------------------------------------------------------------
_DONE = re.compile(r"^[\s>*_#`\"']*+(?:finish(?:ed)?|done|final[ _]answer|complete)"
                   r"[\s*_`\"']*+(?:[:\-]\s*(.*))?$", re.I | re.S)
_NEXT = re.compile(r"^[ \t>*_#`-]*+(?:next(?:[ _](?:agent|speaker))?|agent|speaker|to|delegate to)"
                   r"[ \t*_`]*+[:\-][ \t]*(.+)$", re.I | re.M)
_HEAD = 32_768
"""A supervisor names the next member near the start: only this much is searched for names."""
_NEXT_KEYS = ("next", "agent", "to", "speaker", "member", "name")
_INSTRUCTION_KEYS = ("instruction", "instructions", "task", "message", "input")


@dataclass(frozen=True, slots=True)
class Decision:
    """What a team supervisor decided: a member to act next, or done (with an answer)."""

    agent: str | None = None
    instruction: str = ""
    done: bool = False
    answer: str | None = None
    problem: str = ""
    """Why no decision could be read (``agent`` is None and ``done`` False)."""


class Workspace(list):
    """The team's shared messages; renders as ``[member] text`` blocks in prompts."""

    def post(self, turn: int, agent: str, content: str) -> None:
        self.append({"turn": turn, "agent": agent, "content": content})

    def __str__(self) -> str:
        return "\n".join(f"[{m['agent']}] {m['content']}" for m in self) or "(empty)"


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text).strip(" \t*_`\"'.,:;!?()[]<>").lower()


def parse_decision(reply: Any, members: list[str]) -> Decision:
    """A supervisor's reply: ``FINISH: answer`` / ``DONE``, a member's name (optionally
    ``name: instruction``), ``Next: name``, or JSON ``{"next": name, "instruction": ...}``.

    >>> parse_decision("**Writer**: draft the intro", ["researcher", "writer"])
    Decision(agent='writer', instruction='draft the intro', done=False, answer=None, problem='')
    >>> parse_decision("FINISH: 42", ["writer"]).answer
    '42'
    """
    text = reply if isinstance(reply, str) else json.dumps(reply, default=str)
    by_name = {_norm(m): m for m in members}
    value = reply if isinstance(reply, dict) else (loose_json(text) if "{" in text else None)
    if isinstance(value, dict):
        target = next((str(value[k]) for k in _NEXT_KEYS if value.get(k)), None)
        answer = next((str(value[k]) for k in _FINAL_KEYS if value.get(k) not in (None, "")), None)
        how = next((str(value[k]) for k in _INSTRUCTION_KEYS if value.get(k)), "")
        if target is not None and _norm(target) in by_name:
            return Decision(by_name[_norm(target)], how)
        if answer is not None or (target is not None and _DONE.match(target)):
            return Decision(done=True, answer=answer)
    full = text.strip()
    if m := _DONE.match(full):
        return Decision(done=True, answer=(m.group(1) or "").strip() or None)
    body = full[:_HEAD]
    if m := _NEXT.search(body):
        body = m.group(1).strip()
    for key, name in sorted(by_name.items(), key=lambda kv: -len(kv[0])):  # "name: instruction"
        words = r"[\s_\-]+".join(map(re.escape, key.split()))
        if m := re.match(rf"[\s>*_#`\"'(\[]*{words}\b[\s*_`\"')\].]*(?:[:\-—]|\n|$)\s*(.*)",
                         body, re.I | re.S):
            return Decision(name, m.group(1).strip())
    lowered = _norm(body)
    hits = sorted((m.start(), name) for key, name in by_name.items()
                  if (m := re.search(rf"\b{re.escape(key)}\b", lowered)))
    if hits:  # a name somewhere in prose: the first one mentioned
        return Decision(hits[0][1])
    if m := re.search(r"\b(?:FINISH|FINAL ANSWER)\b\s*[:\-]?\s*", body):
        return Decision(done=True, answer=full[m.end():].strip() or None)
    return Decision(problem=f"the supervisor's reply {text[:120]!r} named no team member; "
                            f"reply with one of {', '.join(members)} or 'FINISH: <answer>'")
