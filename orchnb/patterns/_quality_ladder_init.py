"""Building a quality router over a ladder of models: its checks, route labels and scorer."""

from __future__ import annotations

from typing import Any

from ..engine import check_number
from ..exceptions import SpecError
from ..models import Model
from ._quality_ladder import LadderScorer
from ._quality_scorer import check_graded, target_knob
from ._step import Step

DEFAULT_QUALITY = 0.8
"""A ladder router with no target keeps 80% of the dearest model's gain over the cheapest."""


def ladder_parts(name: str, weak: Any, strong: Any, examples: Any, ladder: Any, scores: Any,
                 costs: Any, *, text: str, embed: Any, method: str, seed: int,
                 groups: str | None, length: bool, target: tuple[Any, ...]
                 ) -> tuple[list[Any], list[str], LadderScorer, list[float] | None,
                            tuple[str, float]]:
    """``(nodes, labels, scorer, costs, (knob, value))`` of a ladder router, checked."""
    import pandas as pd

    if weak is not None or strong is not None:
        raise SpecError(f"quality router '{name}': give weak=/strong= (two models) or "
                        f"ladder=[...] (cheapest first), not both", key="ladder")
    if length:
        # The two-model length term is one weight on one predicted gain, chosen by APGR; a
        # ladder would need a weight per model and a joint search, for a term that cut the
        # saving on MMLU: not offered.
        raise SpecError(f"quality router '{name}': length=True is for two models (weak=/"
                        f"strong=); a ladder predicts each model's score from the embedding "
                        f"alone. Drop length=, or route between two models", key="length")
    ladder, scores = list(ladder or ()), list(scores or ())
    if len(ladder) < 2 or len(scores) != len(ladder):
        raise SpecError(f"quality router '{name}': ladder= lists the models cheapest first "
                        f"(2 or more) and scores= one graded column per model, in the same "
                        f"order; got {len(ladder)} models and {len(scores)} columns",
                        key="scores")
    cost_list = _costs(name, costs, len(ladder))
    knob = _target(target, cost_list)
    if isinstance(examples, str):
        try:
            examples = pd.read_csv(examples)
        except OSError as e:
            raise SpecError(f"quality router '{name}': cannot read examples {examples!r}: "
                            f"{e}", key="examples") from None
    if not isinstance(examples, pd.DataFrame):
        raise SpecError(f"quality router '{name}': examples= is a DataFrame (or CSV path) of "
                        f"graded answers, not {type(examples).__name__}", key="examples")
    check_graded(examples, (text, *scores, *([groups] if groups else [])),
                 what=f"quality router '{name}': examples lack", key="examples")
    graded = examples[scores].apply(lambda c: pd.to_numeric(c, errors="coerce")).astype(float)
    if graded.isna().any().any():
        raise SpecError(f"quality router '{name}': the score columns must be numbers (no "
                        f"missing grades)", key="examples")
    shorts = [_short(obj) for obj in ladder]
    nodes = [_node(obj, short if shorts.count(short) == 1 else column)
             for obj, short, column in zip(ladder, shorts, scores, strict=True)]
    labels = [n.name for n in nodes]
    scorer = LadderScorer([str(t) for t in examples[text]], graded.to_numpy(), labels,
                          embed=embed, method=method, seed=seed,
                          groups=examples[groups].tolist() if groups else None)
    return nodes, labels, scorer, cost_list, knob


def _short(obj: Any) -> str | None:
    """``openai:gpt-4o-mini`` -> ``gpt-4o-mini`` (None for a step or pattern)."""
    if not isinstance(obj, (str, Model)):
        return None
    return (obj if isinstance(obj, str) else obj.id).rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def _node(obj: Any, name: str | None) -> Any:
    """A model id becomes a step answering the input, named after its model (its route; after
    its score column when two rungs share a model name)."""
    if isinstance(obj, (str, Model)):
        return Step(name or "model", obj, "{{ input }}")
    return obj


def _costs(name: str, costs: Any, m: int) -> list[float] | None:
    if costs is None:
        return None
    costs = list(costs)
    if len(costs) != m:
        raise SpecError(f"quality router '{name}': costs= has {len(costs)} prices for {m} "
                        f"models; give dollars per query for each, cheapest first",
                        key="costs")
    for c in costs:
        check_number(c, "QualityRouter(costs=[...])", optional=False,
                     hint="dollars per query")
    return [float(c) for c in costs]


def _target(target: tuple[Any, ...], costs: list[float] | None) -> tuple[str, float]:
    knob, value = target_knob(*target, default=("quality", DEFAULT_QUALITY))
    if knob == "budget_per_1k" and costs is None:
        raise SpecError("budget_per_1k= needs costs=[dollars per query, cheapest first]",
                        key="costs")
    return knob, value
