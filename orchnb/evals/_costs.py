"""Token and dollar estimates for evals: before a run starts, and for routes an eval did not run.

Prompts are rendered once with an empty input to learn each LLM step's fixed overhead; a row's
input tokens are then that overhead plus the row's text, counted the way ``sim:`` models count
(about four characters a token, three per message). Prices come from the pricing table
(``orchnb.models.cost_usd``); a ``sim:`` model costs what its ``priced_as`` model costs, or
nothing. An unknown price is NaN, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..engine import MATHJAX_OFF
from ..models import Model, Usage, cost_usd, price_ref
from ..trace import fmt_usd, plural

if TYPE_CHECKING:
    import numpy as np

DEFAULT_OUTPUT_TOKENS = 150
"""Assumed answer length of a route's LLM step when its ``max_tokens`` is unset (full-pipeline
evals replace it by the mean measured on the rows that ran the step)."""


@dataclass(frozen=True)
class Rates:
    """Dollars per input and per output token of a model, and the price it was read from."""

    ref: str | None
    """``provider:model`` whose price applies (a sim model's ``priced_as``); None: free."""
    input: float
    output: float

    @property
    def priced(self) -> bool:
        return not (math.isnan(self.input) or math.isnan(self.output))


_PROBE = 10_000
"""Tokens priced to learn a per-token rate: well under the long-context tiers (128k, 200k)."""


@lru_cache(maxsize=256)
def _rates(provider: str, name: str) -> tuple[float, float]:
    per_in, ok_in = cost_usd(provider, name, Usage(_PROBE, 0))
    per_out, ok_out = cost_usd(provider, name, Usage(0, _PROBE))
    nan = math.nan
    return (per_in / _PROBE if ok_in else nan, per_out / _PROBE if ok_out else nan)


def rates_for(model: Model | str) -> Rates:
    """The per-token prices a call to ``model`` is charged at (as the engine charges it).

    >>> r = rates_for("openai:gpt-4o-mini")
    >>> round(r.input * 1e6, 3), round(r.output * 1e6, 3)
    (0.15, 0.6)
    """
    ref = price_ref(model)  # the engine's own rule (orchnb.models.call_cost) picks the price
    if ref is None:
        return Rates(None, 0.0, 0.0)
    provider, _, name = ref.partition(":")
    return Rates(ref, *_rates(provider, name))


def chars_to_tokens(chars: np.ndarray | int, messages: int) -> Any:
    """Tokens of a prompt of ``chars`` characters in ``messages`` messages (sim's count)."""
    return (chars + 3) // 4 + 3 * messages


@dataclass
class LLMCost:
    """The cost model of one LLM step: fixed prompt overhead plus the row's text."""

    step: str
    model: str
    rates: Rates
    overhead_chars: int
    messages: int
    output_tokens: float

    def input_tokens(self, text_chars: np.ndarray) -> np.ndarray:
        return chars_to_tokens(self.overhead_chars + text_chars, self.messages)

    def cost(self, text_chars: np.ndarray) -> np.ndarray:
        """Dollars per row (NaN rows when the price is unknown)."""
        return self.input_tokens(text_chars) * self.rates.input + (
            self.output_tokens * self.rates.output)


def _overhead(step: Any, labels: Sequence[str]) -> tuple[int, int]:
    """Characters of a step's prompt without its input, and its number of messages."""
    try:
        msgs = step.messages("", {"labels": list(labels), "routes": list(labels)})
        return sum(len(m.content) for m in msgs), len(msgs)
    except Exception:
        system = getattr(step, "system", None)
        chars = len(step.prompt.source) + (len(system.source) if system is not None else 0)
        return chars, 1 + (system is not None)


def llm_cost(step: Any, labels: Sequence[str], output_tokens: float) -> LLMCost:
    chars, messages = _overhead(step, labels)
    out = step.max_tokens if getattr(step, "max_tokens", None) else output_tokens
    return LLMCost(step.name, step.model.id, rates_for(step.model), chars, messages, float(out))


def is_router(node: Any) -> bool:
    return hasattr(node, "routes") and hasattr(node, "classifier") and hasattr(node, "classify")


def _is_llm(node: Any) -> bool:
    return isinstance(getattr(node, "model", None), Model) and callable(
        getattr(node, "messages", None))


@dataclass
class NodeCost:
    """A node's cost model: its LLM steps, and for a nested router its branches."""

    steps: list[LLMCost] = field(default_factory=list)
    branches: list[NodeCost] = field(default_factory=list)
    """A nested router's routes: only one runs, so the dearest one is assumed."""

    def cost(self, text_chars: np.ndarray) -> np.ndarray:
        import numpy as np

        total = np.zeros(len(text_chars))
        for s in self.steps:
            total = total + s.cost(text_chars)
        if self.branches:
            total = total + np.max([b.cost(text_chars) for b in self.branches], axis=0)
        return total

    def all_steps(self) -> list[LLMCost]:
        out = list(self.steps)
        for b in self.branches:
            out += b.all_steps()
        return out


def node_cost(node: Any, output_tokens: float,
              observed: Mapping[str, float] | None = None) -> NodeCost:
    """The cost model of any node: one pass through each of its LLM steps (a loop pattern
    such as an agent is counted once per step, a lower bound). ``observed`` maps step names to
    measured mean output tokens, which win over the assumption."""
    observed = observed or {}
    if _is_llm(node):
        c = llm_cost(node, getattr(node, "labels", []), output_tokens)
        if node.name in observed:
            c.output_tokens = observed[node.name]
        return NodeCost([c])
    if is_router(node):
        inner = NodeCost()
        clf = node.classifier
        if _is_llm(clf):
            c = llm_cost(clf, node.labels, label_tokens(node.labels))
            inner.steps.append(c)
        inner.branches = [node_cost(r, output_tokens, observed)
                          for r in {id(r): r for r in node.routes.values()}.values()]
        return inner
    total = NodeCost()
    children = node.children() if callable(getattr(node, "children", None)) else []
    for child in children:
        sub = node_cost(child, output_tokens, observed)
        total.steps += sub.steps
        total.branches += sub.branches
    return total


def label_tokens(labels: Sequence[str]) -> float:
    """The expected answer of a classifier: one label (mean length in tokens)."""
    if not labels:
        return 1.0
    return sum((len(x) + 3) // 4 for x in labels) / len(labels)


@dataclass
class EstimatePart:
    """One line of an estimate: the classifier, or one route's share of the traffic."""

    what: str
    model: str
    priced_as: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    usd: float


@dataclass
class CostEstimate:
    """What an eval will cost before it starts (before the response cache is consulted).

    >>> print(CostEstimate(10, [EstimatePart("classifier", "sim:x", None, 10, 500, 20, 0.0)]))
    ... # doctest: +NORMALIZE_WHITESPACE
    Estimate for 10 rows: 10 calls, 500 input tokens + 20 output tokens, $0
    (classifier sim:x: free)
    """

    rows: int
    parts: list[EstimatePart]
    note: str = ""

    @property
    def usd(self) -> float:
        """Total dollars (NaN when a model's price is unknown)."""
        return sum(p.usd for p in self.parts)

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.parts)

    @property
    def input_tokens(self) -> int:
        return sum(p.input_tokens for p in self.parts)

    @property
    def output_tokens(self) -> int:
        return sum(p.output_tokens for p in self.parts)

    def __str__(self) -> str:
        bits = []
        for p in self.parts:
            as_ = f" priced as {p.priced_as}" if p.priced_as and p.priced_as != p.model else ""
            price = ("unknown price" if math.isnan(p.usd) else
                     "free" if p.priced_as is None and p.usd == 0 else fmt_usd(p.usd))
            bits.append(f"{p.what} {p.model}{as_}: {price}")
        usd = "unknown (a price is missing)" if math.isnan(self.usd) else fmt_usd(self.usd)
        text = (f"Estimate for {plural(self.rows, 'row')}: {plural(self.calls, 'call')}, "
                f"{plural(self.input_tokens, 'input token')} + "
                f"{plural(self.output_tokens, 'output token')}, {usd}"
                + (f" ({'; '.join(bits)})" if bits else ""))
        return text + (f"; {self.note}" if self.note else "")

    def _repr_html_(self) -> str:
        import html

        return f"<div class='{MATHJAX_OFF}'><b>cost estimate</b>: {html.escape(str(self))}</div>"


def describe_classifier(router: Any) -> str:
    """A short description of a router's classifier for tables: its model (and the price it is
    charged at), its embedder and threshold, or its function."""
    clf = router.classifier
    model = getattr(clf, "model", None)
    if model is not None and hasattr(model, "id"):
        ref = rates_for(model).ref
        return model.id + (f" (as {ref})" if ref and ref != model.id else "")
    embedder = getattr(clf, "embedder", None)
    if embedder is not None:
        t = getattr(clf, "threshold", None)
        return f"embed {embedder.provider}:{embedder.model}" + (
            f", threshold {t:g}" if t is not None else "")
    fn = getattr(clf, "fn", None)
    return f"function {getattr(fn, '__name__', clf.name)}" if fn else str(clf.name)


class RouterCosts:
    """Per-row dollar estimates for a router over a set of texts: its classifier, and each route
    as if every row were sent there (what the savings and the threshold sweep are made of)."""

    def __init__(self, router: Any, texts: Sequence[str],
                 output_tokens: float = DEFAULT_OUTPUT_TOKENS,
                 observed: Mapping[str, float] | None = None):
        import numpy as np

        self.router = router
        self.labels: list[str] = list(router.routes)
        self.chars = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        clf = router.classifier
        self.classifier: LLMCost | None = (
            llm_cost(clf, self.labels, label_tokens(self.labels)) if _is_llm(clf) else None)
        self.embedder: Rates | None = None
        self.examples_chars = 0
        embedder = getattr(clf, "embedder", None)
        if embedder is not None:
            remote = getattr(embedder, "remote", False)
            self.embedder = (rates_for(f"{embedder.provider}:{embedder.model}") if remote
                             else Rates(None, 0.0, 0.0))
            self.examples_chars = sum(len(t) for v in clf.examples.values() for t in v)
            self.embedder_id = f"{embedder.provider}:{embedder.model}"
        self.nodes = {label: node_cost(node, output_tokens, observed)
                      for label, node in router.routes.items()}
        self._route_rows: dict[str, np.ndarray] = {}

    def classifier_rows(self) -> np.ndarray:
        import numpy as np

        if self.classifier is not None:
            return self.classifier.cost(self.chars)
        if self.embedder is not None:
            return (self.chars + 3) // 4 * self.embedder.input
        return np.zeros(len(self.chars))

    def route_rows(self, route: str) -> np.ndarray:
        """Dollars per row if every row were sent to ``route``."""
        if route not in self._route_rows:
            self._route_rows[route] = self.nodes[route].cost(self.chars)
        return self._route_rows[route]

    def route_input_tokens(self, route: str) -> tuple[np.ndarray, float]:
        """Input tokens per row and output tokens per query of ``route``'s LLM steps."""
        steps = self.nodes[route].all_steps()
        if not steps:
            return (self.chars + 3) // 4 + 3, float(DEFAULT_OUTPUT_TOKENS)
        return (sum(s.input_tokens(self.chars) for s in steps),
                float(sum(s.output_tokens for s in steps)))

    def expensive_route(self) -> str:
        """The route dearest per query (by mean estimated cost, then by tokens)."""
        import numpy as np

        def key(route: str) -> tuple[float, float]:
            rows = self.route_rows(route)
            # An unpriced route ranks by tokens alone here (the report calls the dearest route
            # undefined while one is unpriced); no nanmean, so no "Mean of empty slice".
            c = float(rows.mean()) if rows.size and not np.isnan(rows).any() else 0.0
            tokens, out = self.route_input_tokens(route)
            return (c, float(np.mean(tokens)) + out if len(tokens) else out)

        return max(self.labels, key=key)

    def baseline_rows(self, model: str) -> np.ndarray:
        """Dollars per row if every row went to ``model`` with the dearest route's prompts."""
        rates = rates_for(model)
        tokens, out = self.route_input_tokens(self.expensive_route())
        return tokens * rates.input + out * rates.output

    def estimate(self, routes_taken: Sequence[str] | None) -> CostEstimate:
        """Before a run: the classifier on every row, plus (``routes_taken`` given: a full
        pipeline eval) each row's route, taken to be its true label's route."""
        import numpy as np

        n = len(self.chars)
        parts = []
        clf = self.classifier
        if clf is not None:
            parts.append(EstimatePart(
                "classifier", clf.model, clf.rates.ref, n, int(clf.input_tokens(self.chars).sum()),
                round(clf.output_tokens * n), float(self.classifier_rows().sum())))
        elif self.embedder is not None:
            tokens = int(((self.chars + 3) // 4).sum()) + (self.examples_chars + 3) // 4
            # An eval embeds the examples once and every row in one batched call (a provider
            # embedder splits it into requests of its batch size), not one call per row.
            parts.append(EstimatePart("embeddings", self.embedder_id, self.embedder.ref, 2,
                                      tokens, 0, tokens * self.embedder.input))
        if routes_taken is not None:
            taken = np.asarray(routes_taken, dtype=object)
            for route in self.labels:
                mask = taken == route
                rows = int(mask.sum())
                if not rows:
                    continue
                for s in self.nodes[route].all_steps():
                    tokens = s.input_tokens(self.chars[mask])
                    parts.append(EstimatePart(
                        f"route {route}", s.model, s.rates.ref, rows, int(tokens.sum()),
                        round(s.output_tokens * rows), float(s.cost(self.chars[mask]).sum())))
        return CostEstimate(n, parts, "before the response cache; cached calls cost nothing")
