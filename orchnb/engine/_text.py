"""How values show as text in the trace and in prompts (the engine's one formatter of values)."""

from __future__ import annotations

import json
from typing import Any


def as_text(value: Any) -> str:
    """How a step's input or output is shown in the trace and in prompts.

    >>> as_text({"a": 1})
    '{"a": 1}'
    """
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=_plain)
    except (TypeError, ValueError):
        return repr(value)


def _plain(value: Any) -> Any:
    # pydantic models (structured outputs) as their JSON form; anything else as its str().
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) and not isinstance(value, type) else str(value)
