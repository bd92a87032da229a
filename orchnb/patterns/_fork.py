"""Fork and replay a run, and load a stored run back (``run.fork``, ``run.replay``,
``orchnb.load_run``).

The engine forks (``engine/_forking.py``: the recording, the fork point, the replay source);
the pipeline's part is here: :func:`rebuild_run`, its runs' ``rebuild``, makes the edited copy
of the pipeline, so everything about its steps that can be wrong with a fork (a pipeline whose
shape changed, an edit the step does not have) is a :class:`~orchnb.ForkError` raised here,
before any call.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import Run, prepare_fork, span_seq
from ..exceptions import ForkError
from ..models import Model, resolve_model
from ..trace import Span
from ._template import Prompt

if TYPE_CHECKING:
    from ._base import Pipeline

__all__ = ["apply_edits", "check_shape", "editable", "prepare_fork", "rebuild_run"]

# -- the pipeline's nodes ------------------------------------------------------------------
def _clone(obj: Any, memo: dict[int, Any]) -> Any:
    """A copy of the node tree that edits can change (models, tools, functions are shared;
    ``runs`` too, so a fork shows up in the pipeline's ``runs``)."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, list):
        return [_clone(v, memo) for v in obj]
    if isinstance(obj, dict):
        return {k: _clone(v, memo) for k, v in obj.items()}
    if (type(obj).__module__.startswith(__package__ + ".") and hasattr(obj, "__dict__")
            and not isinstance(obj, (Prompt, type))):
        new = copy.copy(obj)
        memo[id(obj)] = new
        for name, value in vars(new).items():
            if name != "runs":
                setattr(new, name, _clone(value, memo))
        return new
    return obj


def _nodes(pipe: Any) -> Iterator[Any]:
    seen: set[int] = set()
    stack = [pipe]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        kids = list(node.children()) if hasattr(node, "children") else []
        stack.extend(reversed(kids))


def _internal(pipe: Pipeline) -> set[str]:
    """The bookkeeping span names of the patterns in ``pipe`` (each pattern says its own)."""
    return {n for node in _nodes(pipe) for n in getattr(node, "internal_steps", ())}


def _names(pipe: Pipeline) -> set[str]:
    names = _internal(pipe)
    for node in _nodes(pipe):
        names.add(str(getattr(node, "name", "")))
        for key in ("tools", "members"):
            named = getattr(node, key, None)
            if isinstance(named, Mapping):
                names.update(map(str, named))
    return names


def _find(pipe: Pipeline, step: str) -> Any | None:
    return next((n for n in _nodes(pipe) if getattr(n, "name", None) == step), None)


def editable(node: Any) -> list[str]:
    """The edit keys ``run.fork`` accepts for ``node``."""
    keys = []
    if isinstance(getattr(node, "prompt", None), Prompt):
        keys.append("prompt")
    if hasattr(node, "system") and isinstance(node.system, (Prompt, str, type(None))):
        keys.append("system")
    if isinstance(getattr(node, "model", None), Model):
        keys.append("model")
    if hasattr(node, "temperature"):
        keys.append("temperature")
    knobs = getattr(node, "fork_knobs", {})  # each node says which of its numbers may change
    keys += [k for k in knobs if k not in keys]
    return keys


def apply_edits(node: Any, edits: Mapping[str, Any]) -> None:
    """Check every edit first (unknown keys, bad values), then set them on ``node``."""
    name = getattr(node, "name", "?")
    allowed = editable(node)
    unknown = sorted(set(edits) - set(allowed))
    if unknown:
        raise ForkError(f"fork at step '{name}': {', '.join(map(repr, unknown))} cannot be "
                        f"edited there; editable: {', '.join(allowed) or '(nothing)'}",
                        key=unknown[0])
    owner = f"step '{name}': "
    values: dict[str, Any] = {}
    for key, value in edits.items():
        if key == "prompt":
            values[key] = Prompt(str(value), owner=owner)
        elif key == "system":
            text = str(value or "")
            values[key] = (text or None) if isinstance(node.system, str) else (
                Prompt(text, where="system", owner=owner) if text.strip() else None)
        elif key == "model":
            values[key] = resolve_model(value)
        elif key == "temperature":
            t = None if value is None else _number(value, float, owner, key)
            if t is not None and not 0.0 <= t <= 2.0:
                raise ForkError(f"{owner}temperature must be between 0 and 2, got {t}", key=key)
            values[key] = t
        else:
            n = None if value is None else _number(value, int, owner, key)
            least = node.fork_knobs[key]
            if n is not None and n < least:
                raise ForkError(f"{owner}{key} must be a whole number ≥ {least}, "
                                f"got {n}", key=key)
            values[key] = n
    for key, value in values.items():
        setattr(node, key, value)


def _number(value: Any, kind: type, owner: str, key: str) -> Any:
    if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                   and not value.is_integer()):
        raise ForkError(f"{owner}{key} must be a number, got {value!r}", key=key)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ForkError(f"{owner}{key} must be a number, got {value!r}", key=key) from None


def check_shape(pipe: Pipeline, spans: Sequence[Span], run_id: str) -> None:
    """Every step the recorded run went through must still be a step of ``pipe``."""
    known = _names(pipe)
    for s in sorted(spans, key=span_seq):
        if s.kind in ("step", "pattern", "model", "tool"):
            for name in (s.step, s.tool if s.kind == "tool" else None):
                if name is not None and name not in known:
                    raise ForkError(
                        f"run {run_id}: step '{name}' of the recorded run is not a step of "
                        f"pipeline '{pipe.name}' any more (its steps: "
                        f"{', '.join(sorted(known - _internal(pipe)))}): the pipeline changed "
                        "shape since the run; pass pipeline= the pipeline it ran, or start a "
                        "new run", key=name)


# -- fork and replay: the engine asks the pipeline for the new run -----------------------------

def rebuild_run(pipe: Pipeline, parent: Run, step: str | None, edits: Mapping[str, Any], *,
                hooks: Sequence[Any], **options: Any) -> Run:
    """``pipe``'s runs' ``rebuild`` (see :class:`orchnb.engine.Rebuild`): for a fork at
    ``step``, an edited copy of ``pipe`` checked against ``parent``'s recorded steps."""
    if step is not None:
        check_shape(pipe, [*parent.trace.spans, *parent._open.values()], parent.id)
        pipe = _clone(pipe, {})
        if edits:
            node = _find(pipe, step)
            if node is None:
                raise ForkError(f"fork at '{step}': it is a tool, not a step; edits apply to "
                                "steps (fork at the agent's name to edit its prompt or model)",
                                key=step)
            apply_edits(node, edits)
    pipe.check_models()
    return pipe.new_run(parent.input, name=parent.pipeline, hooks=hooks, **options)
