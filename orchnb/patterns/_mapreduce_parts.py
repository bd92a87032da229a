"""Map-reduce's helpers: knob checks, reducer nodes, and grouping for hierarchical reduce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine import MAX_CONCURRENCY, MAX_RETRIES, MAX_TOKENS_KNOB, as_text, check_count
from ..exceptions import SpecError
from ..models import estimate_tokens
from ._base import FunctionStep, Node, Pipeline, Step, as_node
from ._chunking import check_budget


def check_knobs(mr: Any) -> None:
    """Raise :class:`SpecError` (with the knob as key) for a bad map-reduce setting."""
    check_budget(mr.chunk_tokens, mr.overlap_tokens)
    where = f"mapreduce '{mr.name}':"
    check_count(mr.concurrency, f"{where} concurrency", maximum=MAX_CONCURRENCY,
                key="concurrency")
    if mr.on_error not in ("fail", "skip", "retry"):
        raise SpecError(f"mapreduce '{mr.name}': on_error must be 'fail', 'skip' or "
                        f"'retry', got {mr.on_error!r}", key="on_error")
    if mr.chunker is not None and not callable(mr.chunker):
        raise SpecError(f"mapreduce '{mr.name}': chunker must be a function of the text "
                        f"returning the items, got {mr.chunker!r}", key="chunker")
    check_count(mr.retries, f"{where} retries", minimum=0, maximum=MAX_RETRIES, key="retries")
    check_count(mr.reduce_tokens, f"{where} reduce_tokens", maximum=MAX_TOKENS_KNOB,
                key="reduce_tokens", optional=True)
    if not isinstance(mr.batch, bool):
        raise SpecError(f"{where} batch must be true or false, not {mr.batch!r}", key="batch")
    if mr.batch and mr.executor is not None:
        raise SpecError(f"{where} batch: true sends the map through the providers' batch APIs "
                        f"from this kernel; it cannot run on Ray as well (drop executor:)",
                        key="batch")
    names = [c.name for c in mr.children()]
    if "split" in names or len(set(names)) < len(names):
        raise SpecError(f"mapreduce '{mr.name}': the map and reduce steps need distinct "
                        f"names other than 'split' (got {', '.join(names)})", key="reduce")


def reducer_node(obj: Any) -> Node:
    if isinstance(obj, (Step, FunctionStep, Pipeline)):
        return obj
    if callable(obj):  # fn(outputs): the list is its one argument, whatever it is called
        node = FunctionStep(name_of(obj, "reduce"), lambda outputs: obj(outputs))
        node.origin = obj  # type: ignore[attr-defined]  # the function to_yaml() names
        return node
    return as_node(obj, "reduce")


def name_of(obj: Any, fallback: str) -> str:
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None)
    return fallback if not isinstance(name, str) or name == "<lambda>" else name


def joined(outputs: Sequence[Any]) -> str:
    return "\n\n".join(as_text(o) for o in outputs)


def group_outputs(outputs: list[Any], budget: int) -> list[list[Any]]:
    """Consecutive groups under ``budget`` tokens, at least two outputs each (so it converges)."""
    groups: list[list[Any]] = [[]]
    size = 0
    for o in outputs:
        cost = estimate_tokens(as_text(o)) + 1
        if len(groups[-1]) >= 2 and size + cost > budget:
            groups.append([])
            size = 0
        groups[-1].append(o)
        size += cost
    if len(groups) > 1 and len(groups[-1]) == 1:
        lone = groups.pop()  # a lone last output would not shrink: merge it
        groups[-1] += lone
    return groups
