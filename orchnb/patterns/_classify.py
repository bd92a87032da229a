"""The router's classifiers: an LLM prompt, embeddings over example utterances, or a function.

A classifier only predicts (raw label, parsed label, confidence); the :class:`~orchnb.Router`
decides what an unknown label or an abstention means (its default route) and traces it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..engine import RunContext, check_number, reset_levers, set_levers
from ..exceptions import SpecError
from ..models import Embedder, Model, resolve_embedder
from ._classify_cv import ORDER, MethodChoice, choose_method
from ._labels import normalize, parse_confidence, parse_label
from ._step import Step, Vars, check_name
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
                 aliases: Mapping[str, str] | None = None, cache_prompt: bool | str = False,
                 service_tier: str | None = None):
        super().__init__(name, model, DEFAULT_PROMPT if prompt is None else prompt,
                         system=system, temperature=temperature, max_tokens=max_tokens,
                         cache_prompt=cache_prompt or False, service_tier=service_tier)
        self.aliases = dict(aliases or {})

    @classmethod
    def from_step(cls, step: Step, aliases: Mapping[str, str] | None = None) -> LLMClassifier:
        return cls(step.model, step.prompt, name=step.name, system=step.system,
                   temperature=step.temperature, max_tokens=step.max_tokens, aliases=aliases,
                   cache_prompt=step.cache_prompt or False, service_tier=step.service_tier)

    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        levers = set_levers(self.cache_prompt, self.service_tier)  # as a Step's own call
        try:
            response = await ctx.call(self.model, self.messages(text, vars), step=self.name,
                                      temperature=self.temperature, max_tokens=self.max_tokens)
        finally:
            reset_levers(levers)
        raw = response.text.strip()
        label = parse_label(raw, labels, self.aliases)
        reason = None
        if label is None:
            # A few words are a label the router does not know; more, an answer without one
            # (only a short answer is normalized: a reply may be megabytes).
            short = len(raw) <= 200 and len(normalize(raw).split()) <= 3
            reason = (f"unknown label {raw[:80]!r}" if short
                      else "no route label found in the answer")
        return Prediction(raw[:500], label, parse_confidence(raw), reason)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "role": "classifier"}


METHODS = ("nearest", "centroid", "knn", "linear", "hybrid")
"""How an :class:`EmbeddingClassifier` turns example embeddings into a label."""

HYBRID_WEIGHT = 0.5
"""How much the nearest-example vote counts against the linear head in ``"hybrid"``."""
HYBRID_TEMPERATURE = 0.05
"""Softmax temperature that turns nearest-example similarities into a vote."""


def _has_sklearn() -> bool:
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


class EmbeddingClassifier:
    """Semantic routing over example utterances, four ways (``method``):

    - ``"nearest"``: the route of the most similar example;
    - ``"centroid"``: the route whose mean example embedding is most similar;
    - ``"knn"``: a similarity-weighted vote of the ``k`` most similar examples;
    - ``"linear"``: a logistic-regression head (scikit-learn) trained on the examples'
      embeddings (regularisation ``C``);
    - ``"hybrid"``: the linear head's probabilities times a softmax vote of each route's
      nearest example (log-linear, weight 0.5);
    - ``"auto"`` (default): the method with the best cross-validated accuracy on the
      examples themselves (stratified k-fold, k ≤ 5; ties to the simpler method; linear and
      hybrid only with scikit-learn), chosen when the examples are first embedded;
      :attr:`choice` says which won and by how much. With a single example in some route
      nothing can be held out, and it is ``"nearest"``. No fixed preference: on Banking77
      the hybrid led, on CLINC150 the linear head (benchmarks/results/fewshot.md).

    Abstains (the router then takes its default route) when the input's ``score`` is below
    ``threshold``: the best route's probability for ``"linear"`` / ``"hybrid"``, else its
    similarity (to the nearest example, centroid, or nearest voting example).
    ``orchnb.calibrate`` picks the threshold on validation data. Confidence is the margin of
    the best route over the next.

    >>> clf = EmbeddingClassifier({"billing": ["refund please"], "tech": ["app crashes"]})
    >>> clf.embedder.id, clf.method
    ('sim:hash', 'nearest')
    """

    kind = "classifier"

    model_attrs: ClassVar[tuple[str, ...]] = ("embedder",)

    def __init__(self, examples: Mapping[str, Sequence[str]], embed: str | Embedder = "sim", *,
                 threshold: float | None = None, name: str = "classify", method: str = "auto",
                 k: int = 5, C: float = 10.0):
        if not examples or not all(isinstance(v, (list, tuple)) and v for v in examples.values()):
            raise SpecError("give each route a non-empty list of example utterances, e.g. "
                            "{'billing': ['I want a refund', ...]}", key="examples")
        check_name(name, "EmbeddingClassifier")
        if threshold is not None and (not isinstance(threshold, (int, float))
                                      or isinstance(threshold, bool)
                                      or not -1.0 <= threshold <= 1.0):
            raise SpecError(f"EmbeddingClassifier(threshold=...) is a cosine similarity from -1 "
                            f"to 1 (or None), not {threshold!r}", key="threshold")
        if method not in (*METHODS, "auto"):
            raise SpecError(f"unknown method {method!r}; use one of "
                            f"{', '.join(METHODS)} or 'auto'", key="method")
        for knob, value, above, integer, hint in (
                ("k", k, False, True, "the examples that vote in method='knn', e.g. 5"),
                ("C", C, True, False, "the inverse regularisation of the linear head, e.g. 10")):
            try:
                check_number(value, f"EmbeddingClassifier({knob}=...)", minimum=0 if above else 1,
                             above=above, integer=integer, optional=False, hint=hint)
            except SpecError as e:
                raise SpecError(e.message, key=knob) from None
        self.asked = method
        """The method as given (``"auto"`` or a name); :attr:`method` is the one in use."""
        self.name = name
        self.examples = {str(k): [str(x) for x in v] for k, v in examples.items()}
        try:
            self.embedder = resolve_embedder(embed)
        except SpecError as e:
            raise type(e)(e.message, key="embed") from None
        self.threshold = threshold
        self.choice: MethodChoice | None = None
        """How ``method="auto"`` chose (cross-validated accuracy of each method on the
        examples); None until the examples are embedded, and for a named method."""
        if method == "auto" and (min(len(v) for v in self.examples.values()) < 2
                                 or len(self.examples) < 2):
            method = "nearest"  # nothing to hold out: decided now, said in ``choice``
            self.choice = MethodChoice(
                "nearest", examples=sum(map(len, self.examples.values())),
                reason="too few examples to cross-validate (a route needs 2), so the nearest "
                       "example")
        elif method in ("linear", "hybrid") and not _has_sklearn():
            raise SpecError(f"method={method!r} needs scikit-learn: pip install "
                            "'orchnb[embeddings]'", key="method")
        self.method = method
        self.k = k
        self.C = float(C)
        self._texts = [t for v in self.examples.values() for t in v]
        self._owners = [k for k, v in self.examples.items() for _ in v]
        self._labels = list(self.examples)
        self._vectors: list[list[float]] | None = None
        self._fitted: Any = None
        self._prefetched: dict[str, list[float]] = {}
        self._scored: dict[str, tuple[Any, float, float]] = {}
        self._lock: tuple[Any, asyncio.Lock] | None = None

    # -- the model ------------------------------------------------------------------------------
    def fit(self, vectors: Any) -> None:
        """Set the example embeddings (in ``examples`` order) and train the method's model."""
        import numpy as np

        if self.method == "auto":
            methods = ORDER if _has_sklearn() else ORDER[:3]
            self.choice = choose_method(self, vectors, methods)
            self.method = self.choice.method
        x = np.asarray(vectors, dtype=float)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        x = x / norms
        owner_idx = np.array([self._labels.index(o) for o in self._owners])
        starts = np.r_[0, np.flatnonzero(np.diff(owner_idx)) + 1]
        fitted: dict[str, Any] = {"x": x, "owner": owner_idx, "starts": starts}
        if self.method == "centroid":
            c = np.stack([x[owner_idx == j].mean(axis=0) for j in range(len(self._labels))])
            cn = np.linalg.norm(c, axis=1, keepdims=True)
            cn[cn == 0] = 1.0
            fitted["centroids"] = c / cn
        elif self.method in ("linear", "hybrid"):
            from sklearn.linear_model import LogisticRegression

            head = LogisticRegression(C=self.C, max_iter=2000)
            head.fit(x, owner_idx)
            fitted["head"] = head
        self._vectors = [list(map(float, row)) for row in vectors]
        self._fitted = fitted

    def route_scores(self, queries: Any) -> tuple[Any, Any, Any]:
        """For each query vector: a score per route (rows × routes), the method's score of the
        best route, and the similarity to the nearest example (unrounded)."""
        import numpy as np

        f = self._fitted
        q = np.asarray(queries, dtype=float)
        qn = np.linalg.norm(q, axis=1, keepdims=True)
        qn[qn == 0] = 1.0
        q = q / qn
        sims = q @ f["x"].T
        n, r = len(q), len(self._labels)
        # Examples are stored route by route: each route's best example in one reduceat.
        per_example = np.maximum.reduceat(sims, f["starts"], axis=1)
        if self.method == "nearest":
            scores = per_example
        elif self.method == "centroid":
            scores = q @ f["centroids"].T
        elif self.method == "knn":
            k = min(self.k, sims.shape[1])
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            scores = np.zeros((n, r))
            rows = np.arange(n)[:, None]
            np.add.at(scores, (np.broadcast_to(rows, top.shape), f["owner"][top]),
                      np.clip(sims[rows, top], 0, None))
            scores = scores / k
        else:
            head = f["head"]
            proba = head.predict_proba(q)
            scores = np.zeros((n, r))
            scores[:, head.classes_] = proba
            if self.method == "hybrid":
                z = per_example / HYBRID_TEMPERATURE
                z = z - z.max(axis=1, keepdims=True)
                vote = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # log softmax
                logit = np.log(scores + 1e-12) + HYBRID_WEIGHT * vote
                logit = logit - logit.max(axis=1, keepdims=True)
                scores = np.exp(logit) / np.exp(logit).sum(axis=1, keepdims=True)
        best = scores.argmax(axis=1)
        if self.method in ("linear", "hybrid", "centroid"):
            score = scores[np.arange(n), best]
        else:  # nearest / knn: the similarity of the best route's nearest example
            score = per_example[np.arange(n), best]
        return scores, score, sims.max(axis=1)

    # -- predicting -----------------------------------------------------------------------------
    async def predict(self, ctx: RunContext, text: str, labels: Sequence[str],
                      vars: Vars) -> Prediction:
        done = self._scored.get(text)
        if done is not None and self._fitted is not None:
            return self._prediction(*done, labels)
        query = await self._query_vector(ctx, text)
        scores, score, similarity = self.route_scores([query])
        return self._prediction(scores[0], float(score[0]), float(similarity[0]), labels)

    def _prediction(self, row: Any, score: float, similarity: float,
                    labels: Sequence[str]) -> Prediction:
        order = sorted(range(len(self._labels)), key=lambda j: -row[j])
        best = self._labels[order[0]]
        top = float(row[order[0]])
        margin = top - (float(row[order[1]]) if len(order) > 1 else 0.0)
        ranked = [(self._labels[j], float(row[j])) for j in order[:10]]
        # Unrounded: calibration and threshold sweeps recount from these.
        meta = {"similarity": similarity, "score": score, "method": self.method,
                "scores": {k: round(v, 4) for k, v in ranked}}
        if self.threshold is not None and score < self.threshold:
            what = "probability" if self.method in ("linear", "hybrid") else "similarity"
            return Prediction(best, None, margin, f"abstained: {what} {score:.3f} below "
                              f"threshold {self.threshold:g}", meta)
        label = best if best in labels else None
        return Prediction(best, label, margin, None if label else f"unknown label {best!r}", meta)

    async def prefetch(self, ctx: RunContext, texts: Sequence[str]) -> None:
        """Embed the examples and all of ``texts`` up front, in batched calls (an eval does
        this): ``predict`` then needs no embedding call for them. ``forget()`` drops them."""
        if self._fitted is None:
            await self._ensure_examples(ctx, step=f"{self.name}:examples")
        todo = list(dict.fromkeys(t for t in texts if t not in self._prefetched))
        if todo:
            vectors = await embed_traced(ctx, self.embedder, todo, f"{self.name}:queries")
            self._prefetched.update(zip(todo, vectors, strict=True))
            # Score them all at once too (one matrix product, not one per row).
            for i in range(0, len(todo), 4096):
                part = todo[i:i + 4096]
                scores, score, sim = self.route_scores([self._prefetched[t] for t in part])
                for j, t in enumerate(part):
                    self._scored[t] = (scores[j], float(score[j]), float(sim[j]))

    def forget(self) -> None:
        """Drop the query vectors (and their scores) kept by ``prefetch``."""
        self._prefetched = {}
        self._scored = {}

    async def _ensure_examples(self, ctx: RunContext, step: str) -> None:
        vectors = await embed_traced(ctx, self.embedder, list(self._texts), step)
        self.fit(vectors)

    async def _query_vector(self, ctx: RunContext, text: str) -> list[float]:
        hit = self._prefetched.get(text)
        if hit is not None and self._fitted is not None:
            return hit
        if self._fitted is not None:
            return (await embed_traced(ctx, self.embedder, [text], self.name))[0]
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        async with self._lock[1]:  # concurrent first calls embed the examples once
            if self._fitted is None:
                # First use: examples and query in one call (one paid round trip, not two).
                vectors = await embed_traced(ctx, self.embedder, [*self._texts, text], self.name)
                self.fit(vectors[:-1])
                return vectors[-1]
        return (await embed_traced(ctx, self.embedder, [text], self.name))[0]

    def describe(self) -> dict[str, Any]:
        return {"id": self.name, "kind": "classifier", "role": "classifier",
                "embed": self.embedder.id, "threshold": self.threshold, "method": self.method,
                "examples": {k: len(v) for k, v in self.examples.items()}}

    def __repr__(self) -> str:
        return (f"EmbeddingClassifier({self.embedder.id!r}, method={self.method!r}, "
                f"routes={list(self.examples)})")


class FunctionClassifier:
    """A Python function ``fn(text) -> label`` (or ``(label, confidence)``), sync or async."""

    kind = "python"

    model_attrs: ClassVar[tuple[str, ...]] = ()

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
        return Prediction(raw[:500], label, confidence,
                          None if label else f"unknown label {raw[:80]!r}")

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
    """One embedding call through the engine (span, budget, price, step boundary). A run with
    ``cache=False`` also bypasses a local embedder's disk cache."""
    if not ctx.options.cache and callable(getattr(embedder, "without_cache", None)):
        embedder = embedder.without_cache()  # type: ignore[attr-defined]
    return await ctx.embed(embedder, texts, step=step)
