"""Router: a classifier picks a route; the route (any step or pattern) handles the input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..engine import Run, RunContext, SpanHandle, as_text
from ..exceptions import RunError, SpecError
from ..models import Message, resolve_model
from ._base import Node, Pipeline, Step, Vars, as_node
from ._classify import Classification, Classifier, Prediction, as_classifier
from ._labels import normalize
from ._to_yaml import classifier_spec, node_spec


class Router(Pipeline):
    """``input → classifier → one of routes[label] → output`` (``default`` when unsure).

    The classifier is a model id or :class:`~orchnb.Step` (an LLM prompt with ``{{ input }}``
    and ``{{ labels }}``), an :class:`EmbeddingClassifier` or a function ``text -> label``.
    An unparseable or unknown label, or an abstention, takes the ``default`` route and is
    flagged in the trace (``route``, ``raw_label``, ``confidence`` columns; ``meta.defaulted``).

    >>> from orchnb import SimModel, Step
    >>> _ = SimModel("triage", rules={"refund|charge": "Label: Billing"}, default="??").register()
    >>> triage = Router("triage", classifier="sim:triage", routes={
    ...     "billing": Step("billing", "sim:echo", "Billing team: {{ input }}"),
    ...     "technical": Step("technical", "sim:echo", "Tech team: {{ input }}"),
    ... }, default="technical")
    >>> triage("I want a refund").output
    'Billing team: I want a refund'
    >>> c = triage.predict("my screen is black")
    >>> c.route, c.raw_label, c.defaulted
    ('technical', '??', True)
    """

    pattern = "router"

    model_attrs: ClassVar[tuple[str, ...]] = ("classifier",)
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset()
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, classifier: Any, routes: Mapping[str, Any], *,
                 default: str | None = None, aliases: Mapping[str, str] | None = None,
                 **options: Any):
        super().__init__(name, **options)
        if not routes:
            raise SpecError(f"router '{name}' has no routes; give it at least one", key="routes")
        self.routes: dict[str, Node] = {str(k): as_node(v, str(k)) for k, v in routes.items()}
        self.classifier: Classifier = as_classifier(classifier, aliases)
        self.default = default
        self._validate()

    # -- the pattern ------------------------------------------------------------------------
    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        choice = await self.classify(ctx, input, vars)
        _mark(ctx.current_scope(), choice)
        steps = {**(vars.get("steps") or {}), self.classifier.name: choice.route}
        return await self.routes[choice.route].invoke(ctx, input, {**vars, "steps": steps})

    async def classify(self, ctx: RunContext, input: Any, vars: Vars | None = None
                       ) -> Classification:
        """Only the classification, inside a run (evals use this): one "step" span."""
        text = input if input.__class__ is str else as_text(input)
        labels = list(self.routes)
        # The classification's span opened and closed here (no scope object: every request).
        span, token, t0 = ctx.enter_span("step", self.classifier.name, text)
        try:
            scope = {**(vars or {}), "routes": labels, "labels": labels}
            prediction = await self.classifier.predict(ctx, text, labels, scope)
            choice = self._decide(prediction)
            _mark(SpanHandle(span), choice, prediction.meta)
        except BaseException as e:
            ctx.exit_span(span, token, t0, exc=e)
            raise
        ctx.exit_span(span, token, t0, choice.route)
        return choice

    def _decide(self, p: Prediction) -> Classification:
        if p.label is not None and p.label in self.routes:
            return Classification(p.label, p.raw_label, p.confidence)
        reason = p.reason or f"unknown label {p.raw_label!r}"
        if self.default is None:
            raise RunError(f"router '{self.name}': {reason}; known routes: "
                           f"{', '.join(self.routes)}. Set default= to catch such inputs")
        return Classification(self.default, p.raw_label, p.confidence, True, reason)

    # -- classification alone -----------------------------------------------------------------
    def predict(self, input: Any) -> Classification:
        """Classify one input without running its route (sync; traced like a run).

        >>> triage.predict("I was charged twice").route   # doctest: +SKIP
        'billing'
        """
        return self._classification_run(input).run_sync().output

    async def apredict(self, input: Any) -> Classification:
        """``predict`` for async code."""
        return (await self._classification_run(input).arun()).output

    def _classification_run(self, input: Any) -> Run:
        async def body(ctx: RunContext, x: Any) -> Classification:
            choice = await self.classify(ctx, x, {"run_input": x})
            _mark(ctx.current_scope(), choice)
            return choice

        return self.new_run(input, body=body)

    # -- shape ----------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """The route labels, in order."""
        return list(self.routes)

    def children(self) -> list[Node]:
        unique = {id(n): n for n in self.routes.values()}
        return [self.classifier, *unique.values()]  # type: ignore[list-item]

    def edges(self) -> list[tuple[str, str, str]]:
        c = self.classifier.name
        out = [("__in__", c, "")]
        out += [(c, node.name, label) for label, node in self.routes.items()]
        out += [(n.name, "__out__", "") for n in self.children()[1:]]
        return out

    def describe(self) -> dict[str, Any]:
        """The graph, plus ``routes`` (label → node id) and ``default`` (the default label)."""
        return {**super().describe(), "default": self.default,
                "routes": {label: node.name for label, node in self.routes.items()}}

    def _validate(self) -> None:
        known = ", ".join(self.routes)
        if self.default is not None and self.default not in self.routes:
            raise SpecError(f"router '{self.name}': default route '{self.default}' is not "
                            f"defined; known routes: {known}", key="default")
        seen: dict[str, str] = {}
        for label, node in self.routes.items():
            key = normalize(label)
            if not key or key in seen:
                raise SpecError(f"router '{self.name}': route label {label!r} "
                                + ("has no letters or digits" if not key else
                                   f"is the same as {seen[key]!r} once case and punctuation "
                                   f"are ignored"), key=f"routes.{label}")
            seen[key] = label
            if node.name == self.classifier.name:
                raise SpecError(f"router '{self.name}': route '{label}' has the classifier's "
                                f"name '{node.name}'; rename one", key=f"routes.{label}")
        names: dict[str, int] = {}
        for node in {id(n): n for n in self.routes.values()}.values():
            names[node.name] = names.get(node.name, 0) + 1
        for n, count in names.items():
            if count > 1:
                raise SpecError(f"router '{self.name}': {count} different routes hold a node "
                                f"named '{n}'; give them distinct names", key="routes")
        extra = getattr(self.classifier, "examples", {})
        for label in extra:
            if label not in self.routes:
                raise SpecError(f"router '{self.name}': examples for '{label}', which is not a "
                                f"route; known routes: {known}", key=f"classifier.examples.{label}")

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: the classifier's call, then every route under its condition."""
        here = w.within(at, self.name)
        labels = list(self.routes)
        clf = self.classifier
        text = input if isinstance(input, str) else as_text(input)
        scope = {**vars, "routes": labels, "labels": labels}
        if isinstance(clf, Step):
            w.step(clf, text, scope, here, kind="classifier")
        elif hasattr(clf, "embedder"):
            embedder = clf.embedder
            note = (f"the first call also embeds the {len(clf._texts)} examples"
                    if clf._vectors is None else "")
            if getattr(embedder, "remote", False):
                w.model_call(clf.name, "embed", resolve_model(embedder.id),
                             [Message("user", text)], here,
                             status="depends" if w.is_pending(text) else "known", deps=[],
                             note=note)
            else:
                w.local(clf.name, "embed", embedder.id, [Message("user", text)], here,
                        f"local embedder, no paid call; {note}".strip("; "))
        else:
            w.python(clf.name, here,
                     f"classifier function {w.fn_name(getattr(clf, 'fn', clf))}()")
        steps = {**(vars.get("steps") or {}), clf.name: w.pending(f"route chosen by {clf.name}")}
        by_node: dict[int, list[str]] = {}
        for label, node in self.routes.items():
            by_node.setdefault(id(node), []).append(label)
        for node in self.routes.values():
            names = by_node.pop(id(node), None)
            if names is None:
                continue
            when = "if route " + " or ".join(f"'{n}'" for n in names)
            if self.default in names:
                when += " (the default)"
            w.walk(node, input, {**vars, "steps": steps}, w.under(here, when, certain=False))
        return w.pending(f"output of {self.name}")

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this router (``pipe.to_yaml()``)."""
        seen: dict[int, str] = {}
        routes = {}
        for label, node in self.routes.items():
            if id(node) in seen:
                raise SpecError(f"router '{self.name}': routes '{seen[id(node)]}' and "
                                f"'{label}' share one node, which YAML cannot express; give "
                                f"each route its own step", key=f"routes.{label}")
            seen[id(node)] = label
            routes[label] = node_spec(node)
        out: dict[str, Any] = {"classifier": classifier_spec(self.classifier, self.name)}
        aliases = getattr(self.classifier, "aliases", None)
        if aliases:
            out["aliases"] = dict(aliases)
        out["routes"] = routes
        if self.default is not None:
            out["default"] = self.default
        return out


def _mark(span: SpanHandle, choice: Classification,
          meta: Mapping[str, Any] | None = None) -> None:
    span.set_route(choice.route, raw_label=choice.raw_label, confidence=choice.confidence)
    flags: dict[str, Any] = {"defaulted": choice.defaulted}
    if choice.reason:
        flags["reason"] = choice.reason
    if meta:
        flags.update(meta)
    span.note(**flags)
