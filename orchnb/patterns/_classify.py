"""The router's classifiers: an LLM prompt, embeddings over example utterances, or a function.

A classifier only predicts (raw label, parsed label, confidence); the :class:`~orchnb.Router`
decides what an unknown label or an abstention means (its default route) and traces it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..engine import RunContext
from ..exceptions import SpecError
from ..models import Model
from ._base import Step, Vars, check_name
from ._embed import Embedder, cosine_scores, resolve_embedder
from ._labels import normalize, parse_confidence, parse_label
from ._template import Prompt

DEFAULT_PROMPT = """Classify the message into exactly one of these routes:
{{ labels | join(", ") }}.
Answer with the route label only.

Message: {{ input }}"""


@dataclass(frozen=True, slots=True)
class Classification:
    """Where a router sends one input.

    >>> c = Classification("billing", "Label: Billing", 0.9)
    >>> c.route, c.defaulted
    ('billing', False)
    """

    route: str
    """The route taken (the default route when ``defaulted``)."""
    raw_label: str
    """What the classifier said before parsing (model text, nearest route, function result)."""
    confidence: float | None = None
    """Embeddings: similarity margin of the best route over the next; LLM: self-reported."""
    defaulted: bool = False
    """True when the label was unparseable or unknown, or the classifier abstained."""
    reason: str | None = None
    """Why it defaulted."""


@dataclass(slots=True)
class Prediction:
    """A classifier's raw answer: ``label`` is a known route label or None."""

    raw_label: str
    label: str | None
    confidence: float | None = None
    reason: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Classifier(Protocol):
    """What a router needs from its classifier."""

    name: str

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction: ...

    def describe(self) -> dict[str, Any]: ...


class LLMClassifier(Step):
    """A prompt asking a model for the route label; ``{{ input }}`` and ``{{ labels }}`` (also
    ``{{ routes }}``) are available. The answer is parsed robustly (see ``parse_label``).

    >>> LLMClassifier("sim:triage").prompt.variables == {"labels", "input"}
    True
    """

    def __init__(self, model: str | Model, prompt: str | Prompt | None = None, *,
                 name: str = "classify", system: str | Prompt | None = None,
                 temperature: float | None = None, max_tokens: int | None = None,
                 aliases: Mapping[str, str] | None = None):
        super().__init__(name, model, DEFAULT_PROMPT if prompt is None else prompt,
                         system=system, temperature=temperature, max_tokens=max_tokens)
        self.aliases = dict(aliases or {})

    @classmethod
    def from_step(cls, step: Step, aliases: Mapping[str, str] | None = None) -> LLMClassifier:
        return cls(step.model, step.prompt, name=step.name, system=step.system,
                   temperature=step.temperature, max_tokens=step.max_tokens, aliases=aliases)

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        response = await ctx.call(self.model, self.messages(text, vars), step=self.name,
                                  temperature=self.temperature, max_tokens=self.max_tokens)
        raw = response.text.strip()
        label = parse_label(raw, labels, self.aliases)
        reason = None if label else (f"unknown label {raw[:80]!r}" if len(normalize(raw).split())
                                     <= 3 else "no route label found in the answer")
        return Prediction(raw[:500], label, parse_confidence(raw), reason)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "role": "classifier"}


class EmbeddingClassifier:
    """Semantic routing: the route whose example utterances are most similar to the input.

    Abstains (the router then takes its default route) when the best similarity is below
    ``threshold``. Confidence is the margin of the best route's similarity over the next one's.

    >>> clf = EmbeddingClassifier({"billing": ["refund please"], "tech": ["app crashes"]})
    >>> clf.embedder.id
    'sim:hash'
    """

    kind = "classifier"

    def __init__(self, examples: Mapping[str, Sequence[str]], embed: str | Embedder = "sim", *,
                 threshold: float | None = None, name: str = "classify"):
        if not examples or not all(isinstance(v, (list, tuple)) and v for v in examples.values()):
            raise SpecError("give each route a non-empty list of example utterances, e.g. "
                            "{'billing': ['I want a refund', ...]}", key="examples")
        check_name(name, "EmbeddingClassifier")
        if threshold is not None and (not isinstance(threshold, (int, float))
                                      or isinstance(threshold, bool)
                                      or not -1.0 <= threshold <= 1.0):
            raise SpecError(f"EmbeddingClassifier(threshold=...) is a cosine similarity from -1 "
                            f"to 1 (or None), not {threshold!r}", key="threshold")
        self.name = name
        self.examples = {str(k): [str(x) for x in v] for k, v in examples.items()}
        try:
            self.embedder = resolve_embedder(embed)
        except SpecError as e:
            raise type(e)(e.message, key="embed") from None
        self.threshold = threshold
        self._texts = [t for v in self.examples.values() for t in v]
        self._owners = [k for k, v in self.examples.items() for _ in v]
        self._vectors: list[list[float]] | None = None
        self._lock: tuple[Any, asyncio.Lock] | None = None

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        query = await self._query_vector(ctx, text)
        scores: dict[str, float] = {}
        for owner, s in zip(self._owners, cosine_scores(query, self._vectors or []), strict=True):
            scores[owner] = max(s, scores.get(owner, -1.0))
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, top = ranked[0]
        margin = top - (ranked[1][1] if len(ranked) > 1 else 0.0)
        meta = {"similarity": round(top, 4), "scores": {k: round(v, 4) for k, v in ranked}}
        if self.threshold is not None and top < self.threshold:
            return Prediction(best, None, margin, f"abstained: similarity {top:.3f} below "
                              f"threshold {self.threshold:g}", meta)
        label = best if best in labels else None
        return Prediction(best, label, margin, None if label else f"unknown label {best!r}", meta)

    async def _query_vector(self, ctx: RunContext, text: str) -> list[float]:
        if self._vectors is not None:
            return (await embed_traced(ctx, self.embedder, [text], self.name))[0]
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        async with self._lock[1]:  # concurrent first calls embed the examples once
            if self._vectors is None:
                # First use: examples and query in one call (one paid round trip, not two).
                vectors = await embed_traced(ctx, self.embedder, [*self._texts, text], self.name)
                self._vectors = vectors[:-1]
                return vectors[-1]
        return (await embed_traced(ctx, self.embedder, [text], self.name))[0]

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "kind": "classifier", "role": "classifier",
                "embed": self.embedder.id, "threshold": self.threshold,
                "examples": {k: len(v) for k, v in self.examples.items()}}

    def __repr__(self) -> str:
        return f"EmbeddingClassifier({self.embedder.id!r}, routes={list(self.examples)})"


class FunctionClassifier:
    """A Python function ``fn(text) -> label`` (or ``(label, confidence)``), sync or async."""

    kind = "python"

    def __init__(self, fn: Callable[[str], Any], name: str | None = None):
        if not callable(fn):
            raise SpecError(f"FunctionClassifier: {fn!r} is not a function of the text",
                            key="classifier")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "classify")

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        out = self.fn(text)
        if inspect.isawaitable(out):
            out = await out
        raw, confidence = (out if isinstance(out, tuple) else (out, None))
        raw = "" if raw is None else str(raw)
        label = parse_label(raw, labels)
        return Prediction(raw, label, confidence, None if label else f"unknown label {raw!r}")

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "kind": "python", "role": "classifier",
                "function": getattr(self.fn, "__name__", repr(self.fn))}


def as_classifier(obj: Any, aliases: Mapping[str, str] | None = None) -> Classifier:
    """A classifier from a model id, a Step, a Python function or a classifier."""
    if isinstance(obj, LLMClassifier):
        obj.aliases = {**obj.aliases, **(aliases or {})}
        return obj
    if isinstance(obj, Step):
        return LLMClassifier.from_step(obj, aliases)
    if isinstance(obj, (str, Model)):
        return LLMClassifier(obj, aliases=aliases)
    if callable(getattr(obj, "predict", None)):
        return obj
    if callable(obj):
        return FunctionClassifier(obj)
    raise SpecError(f"{obj!r} cannot classify: use a model id, orchnb.Step, "
                    f"EmbeddingClassifier or a Python function", key="classifier")


async def embed_traced(ctx: RunContext, embedder: Embedder, texts: list[str],
                       step: str) -> list[list[float]]:
    """One embedding call through the engine (span, budget, price, step boundary)."""
    return await ctx.embed(embedder, texts, step=step)
