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
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_ITEM = re.compile(r"^\s*(?:(?:step\s*)?\d+\s*[.):\-]|[-*•])\s+(.+?)\s*$", re.I | re.M)
_FINAL = re.compile(r"^[\s>*_#`\"']*(?:final[ _]answer|final|answer|done|finish(?:ed)?)"
                    r"[\s*_`\"']*(?::|-|$)\s*(.*)", re.I | re.S)
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

    Returns None when there is none.

    >>> loose_json('I think {"a": 1} is right')
    {'a': 1}
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for cand in candidates:
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
    except ValueError:
        pass
    try:  # single quotes, trailing commas, True/None: Python-ish JSON from small models
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _balanced(text: str, open_: str, close: str) -> str | None:
    start = text.find(open_)
    while start != -1:
        depth, quote, escaped = 0, "", False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:  # inside a string: only its closing quote matters
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = ""
                continue
            if ch in "\"'":
                quote = ch
            elif ch == open_:
                depth += 1
            elif ch == close:
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        start = text.find(open_, start + 1)
    return None


def parse_plan(reply: Any) -> list[str]:
    """Plan steps from a list, ``{"steps": [...]}``, JSON text (fenced or not) or a numbered /
    bulleted list; raises :class:`PlanError`."""
    value = reply if not isinstance(reply, str) else loose_json(reply)
    if isinstance(value, dict):
        value = next((value[k] for k in ("steps", "plan") if k in value), None)
    if value is None and isinstance(reply, str):
        value = [m.group(1).strip("*_ ") for m in _ITEM.finditer(reply)] or None
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
