"""QualityRouter: a router that learned, from graded answers, when the cheap model is enough."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..engine import RunContext, check_number
from ..exceptions import SpecError
from ..models import Model
from ._quality_scorer import QualityScorer, check_graded, target_knob
from ._router import Router
from ._step import Step, Vars

ROUTES = ("weak", "strong")


class QualityRouter(Router):
    """Send a query to ``strong`` only when a scorer learned from graded answers predicts the
    strong model is needed; everything else goes to ``weak``. A :class:`~orchnb.Router`
    (traced, stepped, composable like any other) with routes ``weak`` and ``strong``.

    ``examples`` is a DataFrame of graded answers: the query (``text``), the weak model's score
    and the strong model's score on it (``weak_score`` / ``strong_score``: 1/0 correctness or any
    number). The scorer predicts the gain ``strong - weak`` from the query's embedding
    (``embed``: ``"sim"``, ``"st:all-MiniLM-L6-v2"``, ``"openai:..."``); kNN and a linear head
    are tried and the better by cross-validated APGR is kept (``router.scorer.cv``);
    ``length=True`` also tries a prompt-length term (it helps on unseen topics, but long
    prompts cost more: on MMLU it cut the saving at a 31% strong share from 61% to 46%).
    ``groups`` (a column, e.g. the subject) cross-validates by whole groups: choose it when
    the router will meet topics its examples lack. The examples are embedded once, when the
    router is built, outside any run; what that cost is in ``router.scorer.embedded`` (and in
    ``evaluate_routing``'s report).

    Set the threshold with exactly one of ``strong_share`` (share of queries sent to strong),
    ``quality`` (share of the weak-to-strong gap to recover, at least), ``budget_per_1k``
    (dollars per 1,000 queries, at most, with ``weak_cost``/``strong_cost`` in dollars per
    query) or ``threshold`` (a predicted gain); the first three are met on held-out
    (out-of-fold) examples. With none, ``strong_share=0.5``. Evaluate it on other rows with
    ``orchnb.evaluate_routing``.

    ``weak`` / ``strong`` are steps, patterns or model ids (a model id answers ``{{ input }}``).

    **A ladder of models by price**: ``ladder=[cheap, mid, dear]`` (cheapest first) with
    ``scores=[col, col, col]`` (one graded column per model) instead of weak/strong. The scorer
    predicts each model's score on the query and the router takes the cheapest model predicted
    to score at least as well as every dearer one, less the threshold (with two models this is
    the rule above). Set it with ``quality`` (share of the cheapest-to-dearest gap, default
    0.8), ``budget_per_1k`` (with ``costs=[dollars per query, ...]``), ``strong_share`` (the
    share of queries sent above the cheapest model, whichever dearer model takes them: what
    a user moving from two models means by "strong calls"; the rule splits them among the
    dearer models) or ``threshold``; all but the last are met on out-of-fold examples. The
    route is the chosen model's step (a model id's step is named after the model).
    ``length=True`` is for two models only: its one weight on the predicted gain has no
    single counterpart on a ladder. Evaluate it with ``orchnb.evaluate_routing(router, data,
    scores=[...], costs=[...])``.

    >>> import pandas as pd
    >>> graded = pd.DataFrame({"text": [f"q{i} " + ("hard proof" if i % 2 else "easy sum")
    ...                                  for i in range(40)],
    ...                        "weak": [i % 2 == 0 for i in range(40)], "strong": [True] * 40})
    >>> qr = QualityRouter("qr", weak="sim:echo", strong="sim:echo", examples=graded,
    ...                    weak_score="weak", strong_score="strong", strong_share=0.5)
    >>> qr.predict("a hard proof").route, qr.predict("an easy sum").route
    ('strong', 'weak')
    """

    pattern = "quality_router"

    model_attrs: ClassVar[tuple[str, ...]] = ("classifier",)
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset()
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, weak: Any = None, strong: Any = None, examples: Any = None, *,
                 text: str = "text", weak_score: str = "weak_score",
                 strong_score: str = "strong_score", embed: Any = "sim", method: str = "auto",
                 strong_share: float | None = None, quality: float | None = None,
                 budget_per_1k: float | None = None, weak_cost: float | None = None,
                 strong_cost: float | None = None, threshold: float | None = None,
                 scorer: QualityScorer | None = None, seed: int = 0, groups: str | None = None,
                 length: bool = False, ladder: Sequence[Any] | None = None,
                 scores: Sequence[str] | None = None,
                 costs: Sequence[float] | None = None, **options: Any):
        if ladder is not None or scores is not None:
            self._init_ladder(name, weak, strong, examples, ladder, scores, costs, text=text,
                              embed=embed, method=method, seed=seed, groups=groups,
                              length=length, target=(strong_share, quality, budget_per_1k,
                                                     threshold), options=options)
            return
        if weak is None or strong is None:
            raise SpecError(f"quality router '{name}' needs weak= and strong= (two models), or "
                            f"ladder=[cheapest, ..., dearest] with scores=[one column per "
                            f"model]", key="weak" if weak is None else "strong")
        self.ladder: list[str] | None = None
        """The route labels from cheapest to dearest (None: the two-model router)."""
        if scorer is None:
            texts, gains, labels = _graded(examples, text, weak_score, strong_score, groups,
                                           name)
            scorer = QualityScorer(texts, gains, embed=embed, method=method, seed=seed,
                                   groups=labels, length=length)
        else:  # its threshold is this router's own
            scorer = copy.copy(scorer)
        self.scorer: QualityScorer = scorer
        """The learned scorer (``.head``, ``.cv``: cross-validated APGR of each head)."""
        self.examples_source = examples if isinstance(examples, str) else None
        self.columns = {"text": text, "weak_score": weak_score, "strong_score": strong_score}
        if groups is not None:
            self.columns["groups"] = groups
        super().__init__(name, scorer, {"weak": _node(weak, "weak"),
                                        "strong": _node(strong, "strong")}, **options)
        self.target = _target(strong_share, quality, budget_per_1k, threshold, weak_cost,
                              strong_cost)
        """How the threshold was set: ``(knob, value)``."""
        self.costs: tuple[Any, ...] = (weak_cost, strong_cost)
        scorer.threshold = self._threshold()

    def _init_ladder(self, name: str, weak: Any, strong: Any, examples: Any, ladder: Any,
                     scores: Any, costs: Any, *, text: str, embed: Any, method: str,
                     seed: int, groups: str | None, length: bool, target: tuple[Any, ...],
                     options: dict[str, Any]) -> None:
        from ._quality_ladder_init import ladder_parts

        nodes, labels, scorer, cost_list, knob = ladder_parts(
            name, weak, strong, examples, ladder, scores, costs, text=text, embed=embed,
            method=method, seed=seed, groups=groups, length=length, target=target)
        self.scorer = scorer  # type: ignore[assignment]
        self.examples_source = examples if isinstance(examples, str) else None
        self.columns = {"text": text, **({"groups": groups} if groups else {})}
        self.score_columns = list(scores)
        self.ladder = labels
        super().__init__(name, scorer, dict(zip(labels, nodes, strict=True)), **options)
        self.target = knob
        self.costs = tuple(cost_list) if cost_list is not None else ()
        scorer.threshold = (float(knob[1]) if knob[0] == "threshold" else
                            scorer.threshold_for(knob[0], knob[1], cost_list))

    def _threshold(self) -> float:
        knob, value = self.target
        s = self.scorer
        if knob == "threshold":
            return float(value)
        if knob == "quality":
            return s.threshold_for_share(s.share_for_quality(value), "at_least")
        if knob == "budget_per_1k":
            wc, sc = self.costs
            share = (value / 1000 - wc) / (sc - wc) if sc != wc else 1.0  # type: ignore[operator]
            return s.threshold_for_share(min(1.0, max(0.0, share)), "at_most")
        return s.threshold_for_share(value)

    @property
    def threshold(self) -> float:
        """The predicted gain above which a query goes to ``strong``."""
        return self.scorer.threshold

    @property
    def trained_on(self) -> frozenset[bytes]:
        """Hashes of the example texts (``evaluate_routing`` refuses to report on them)."""
        return self.scorer.trained_on

    def scores(self, texts: Any) -> Any:
        """Predicted gains of ``texts`` (numpy array; embeds outside any run); with a ladder,
        the predicted score of each model (rows × models)."""
        if self.ladder is not None:
            return self.scorer.predicted(list(texts))  # type: ignore[attr-defined]
        return self.scorer.scores(list(texts))

    # -- the pattern and what tooling asks of it ------------------------------------------------
    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        # A router's control flow; its classifier is the learned scorer at this threshold.
        return await super()._run(ctx, input, vars)

    def children(self) -> list[Any]:
        return super().children()

    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the query's embedding (local or paid), then each route under its condition."""
        return super().walk_preview(w, input, vars, at)

    def to_spec(self) -> dict[str, Any]:
        """YAML keys, when the examples were given as a CSV path (a DataFrame cannot be
        written as YAML)."""
        if self.examples_source is None:
            raise SpecError(f"quality router '{self.name}' learned from a DataFrame, which "
                            f"YAML cannot hold; build it with examples='graded.csv' (a CSV "
                            f"path) to write it as YAML, or keep it in Python", key="examples")
        from ._to_yaml import node_spec

        knob, value = self.target
        if self.ladder is not None:
            return self._ladder_spec(node_spec)
        out: dict[str, Any] = {"weak": node_spec(self.routes["weak"]),
                               "strong": node_spec(self.routes["strong"]),
                               "examples": self.examples_source, **self.columns,
                               "embed": self.scorer.embedder.id, "method": self.scorer.asked,
                               knob: value}
        if self.scorer.seed:
            out["seed"] = self.scorer.seed
        if self.scorer.length:
            out["length"] = True
        if knob == "budget_per_1k":
            out["weak_cost"], out["strong_cost"] = self.costs
        return out

    def _ladder_spec(self, node_spec: Any) -> dict[str, Any]:
        knob, value = self.target
        out: dict[str, Any] = {
            "ladder": [node_spec(self.routes[label]) for label in self.ladder or ()],
            "scores": self.score_columns, "examples": self.examples_source, **self.columns,
            "embed": self.scorer.embedder.id, "method": self.scorer.base.asked,  # type: ignore[attr-defined]
            knob: value}
        if self.costs:
            out["costs"] = list(self.costs)
        if self.scorer.base.seed:  # type: ignore[attr-defined]
            out["seed"] = self.scorer.base.seed  # type: ignore[attr-defined]
        return out

    def __repr__(self) -> str:
        if self.ladder is not None:
            return (f"<QualityRouter {self.name!r}: ladder {' < '.join(self.ladder)}, "
                    f"{self.scorer.head} on {len(self.scorer.texts)} examples, threshold "
                    f"{self.threshold:+.3f}>")
        return (f"<QualityRouter {self.name!r}: {self.scorer.head} on "
                f"{len(self.scorer.texts)} examples, threshold {self.threshold:+.3f}>")


def _node(obj: Any, name: str) -> Any:
    if isinstance(obj, (str, Model)):
        return Step(name, obj, "{{ input }}")
    return obj


def _graded(examples: Any, text: str, weak: str, strong: str, groups: str | None, name: str
            ) -> tuple[list[str], list[float], list[Any] | None]:
    import pandas as pd

    if isinstance(examples, str):
        try:
            examples = pd.read_csv(examples)
        except OSError as e:
            raise SpecError(f"quality router '{name}': cannot read examples {examples!r}: {e}",
                            key="examples") from None
    if not isinstance(examples, pd.DataFrame):
        raise SpecError(f"quality router '{name}': examples= is a DataFrame (or CSV path) of "
                        f"graded answers, not {type(examples).__name__}", key="examples")
    check_graded(examples, (text, weak, strong, *([groups] if groups else [])),
                 what=f"quality router '{name}': examples lack", key="examples")
    gains = (pd.to_numeric(examples[strong], errors="coerce").astype(float)
             - pd.to_numeric(examples[weak], errors="coerce").astype(float))
    labels = examples[groups].tolist() if groups else None
    return [str(t) for t in examples[text]], gains.tolist(), labels


def _target(share: float | None, quality: float | None, budget: float | None,
            threshold: float | None, weak_cost: float | None, strong_cost: float | None
            ) -> tuple[str, float]:
    knob, value = target_knob(share, quality, budget, threshold, default=("strong_share", 0.5))
    if knob == "budget_per_1k":
        for k, v in (("weak_cost", weak_cost), ("strong_cost", strong_cost)):
            check_number(v, f"QualityRouter({k}=...)", optional=False,
                         hint="dollars per query, needed with budget_per_1k")
    return knob, value
