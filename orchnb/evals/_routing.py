"""Routing evals on graded answers: how much of the strong model's quality a router keeps for
the share of queries it sends there (RouteLLM's APGR and CPT), what that costs, with bootstrap
confidence intervals.

The curve: rows sorted by the router's score (highest first; tied rows move together), the
first ``share`` of them answered by the strong model and the rest by the weak one. PGR (share of
the weak-to-strong gap recovered) = ``(quality - weak_only) / (strong_only - weak_only)``.
APGR is the area under PGR against share (weak-only 0, strong-only 1, random routing 0.5);
CPT(p) the smallest share whose PGR reaches ``p`` (linear between the curve's points).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import SpecError
from ..patterns import check_graded, text_key
from ._costs import chars_to_tokens, rates_for
from ._routing_ladder import LadderReport
from ._routing_report import RoutingReport

SPLITS = ("refuse", "drop", "flag")


def evaluate_routing(router_or_scores: Any, data: Any, *, text: str = "text",
                     weak_score: str = "weak_score", strong_score: str = "strong_score",
                     weak_cost: float | str | None = None, strong_cost: float | str | None = None,
                     models: Sequence[str] | Mapping[str, str] | None = None,
                     output_tokens: Any = None, threshold: float | None = None,
                     cascade: bool = False, on_training: str = "refuse",
                     bootstrap: int = 300, seed: int = 0,
                     scores: Sequence[str] | None = None,
                     costs: Sequence[float | str] | None = None) -> Any:
    """Score a router on graded answers: ``.apgr`` (with ``.apgr_ci``), ``.cpt(0.5)``,
    ``.strong_share`` and ``.pgr`` at its own threshold, ``.curve``, ``.points``, ``.mistakes()``,
    ``.summary`` and ``.plot()`` (weak-only, strong-only, random and oracle drawn).

    ``router_or_scores``: a :class:`~orchnb.QualityRouter`, a column of ``data`` holding
    scores, an array of scores (one per row, higher = more in need of the strong model) or a
    function ``text -> score``. ``weak_score`` / ``strong_score`` name the graded columns (1/0
    correctness or any number). ``weak_cost`` / ``strong_cost``: dollars per query (a number or
    a column); left out, prices stay unknown and no saving is claimed. ``models``: the two
    models (``("mixtral", "gpt-4")``, or model ids such as ``"openai:gpt-4-1106-preview"``),
    named in the summary; model ids are priced from the pricing table when ``output_tokens``
    (answer tokens per query: a number, a column of answer texts, or a pair for weak and
    strong) is given, with the prompt's tokens estimated from its text.

    ``cascade=True`` scores a cascade on the same axes: its scores say how strongly each weak
    answer's check failed, and an escalated row pays for both models (the saving is still
    against the strong model alone).

    Rows a router learned from are refused (``on_training="refuse"``), dropped (``"drop"``,
    said in the summary) or kept and flagged (``"flag"``): it is judged on rows it did not see.

    **A ladder of models** (more than two, cheapest first): ``scores=[col, ...]`` names one
    graded column per model and ``costs=[...]`` their dollars per query (numbers or columns;
    or ``models=`` ids with ``output_tokens``, priced from the table). ``router_or_scores`` is
    a ladder :class:`~orchnb.QualityRouter` or an array of predicted scores (rows × models,
    with ``threshold=``). The result is a :class:`LadderReport`: quality against cost with each
    model alone as a point, the oracle's and the router's frontiers, ``.apgr`` by cost,
    ``.shares`` / ``.quality`` / ``.pgr`` / ``.cost_per_1k`` / ``.saving`` at the router's
    threshold with their bootstrap intervals (``.point_ci``, ``.points``), a bootstrap interval
    on APGR, ``.mistakes(n)`` (rows where its pick lost quality or money against the cheapest
    model that did as well) and the sentence with its intervals.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"text": list("abcd"), "weak_score": [0, 1, 0, 1],
    ...                    "strong_score": [1, 1, 1, 0], "s": [0.9, 0.7, 0.4, 0.1]})
    >>> r = evaluate_routing("s", df, bootstrap=0)
    >>> r.apgr, r.cpt(0.5)
    (1.125, 0.125)
    """
    if on_training not in SPLITS:
        raise SpecError(f"on_training={on_training!r}; use one of {', '.join(SPLITS)}",
                        key="on_training")
    if scores is not None:
        return _ladder(router_or_scores, data, text=text, scores=scores, costs=costs,
                       models=models, output_tokens=output_tokens, threshold=threshold,
                       on_training=on_training, bootstrap=bootstrap, seed=seed)
    return _pair(router_or_scores, data, text=text, weak_score=weak_score,
                 strong_score=strong_score, weak_cost=weak_cost, strong_cost=strong_cost,
                 models=models, output_tokens=output_tokens, threshold=threshold,
                 cascade=cascade, on_training=on_training, bootstrap=bootstrap, seed=seed)


def _pair(router_or_scores: Any, data: Any, *, text: str, weak_score: str, strong_score: str,
          weak_cost: Any, strong_cost: Any, models: Any, output_tokens: Any,
          threshold: float | None, cascade: bool, on_training: str, bootstrap: int,
          seed: int) -> Any:
    """The two-model branch of :func:`evaluate_routing`."""
    import pandas as pd

    df = _frame(data, text, weak_score, strong_score)
    df, dropped, flagged = _held_out(df, getattr(router_or_scores, "trained_on", None), text,
                                     on_training)
    if len(df) < 2:
        raise SpecError(f"evaluate_routing needs 2 graded rows or more, got {len(df)}", key="data")
    scores, own = _scores(router_or_scores, df, text)
    if threshold is None:
        threshold = own
    weak = df[weak_score].to_numpy(float)
    strong = df[strong_score].to_numpy(float)
    names = _names(models, router_or_scores)
    wc, sc = _both_costs(df, text, weak_cost, strong_cost, models, names, output_tokens)
    table = pd.DataFrame({"text": df[text].astype(str), "weak_score": weak, "strong_score": strong,
                          "score": scores})
    escalated = sc + wc if cascade and sc is not None and wc is not None else sc
    return RoutingReport(table, threshold=threshold, weak_cost=wc, strong_cost=escalated,
                         strong_only_cost=sc, names=names, bootstrap=bootstrap,
                         seed=seed, dropped=dropped, flagged=flagged,
                         held_out=bool(getattr(router_or_scores, "trained_on", None))
                         and not flagged, embedded=_embedded(router_or_scores))


def _ladder(source: Any, data: Any, *, text: str, scores: Sequence[str], costs: Any,
            models: Any, output_tokens: Any, threshold: float | None, on_training: str,
            bootstrap: int, seed: int) -> Any:
    """The ladder branch of :func:`evaluate_routing`."""
    import numpy as np


    scores = list(scores)
    if len(scores) < 2:
        raise SpecError("evaluate_routing(scores=[...]) names one graded column per model, "
                        "cheapest first (2 or more)", key="scores")
    df = _frame(data, text, scores[0], scores[1])
    for c in scores[2:]:
        df = _frame(df, text, c, c)
    df, dropped, flagged = _held_out(df, getattr(source, "trained_on", None), text, on_training)
    if len(df) < 2:
        raise SpecError(f"evaluate_routing needs 2 graded rows or more, got {len(df)}", key="data")
    names = _ladder_names(models, source, scores)
    if hasattr(source, "scores") and getattr(source, "ladder", None) is not None:
        pred = np.asarray(source.scores(list(df[text].astype(str))), dtype=float)
        threshold = float(source.threshold) if threshold is None else threshold
    else:
        pred = np.asarray(source, dtype=float)
    if pred.shape != (len(df), len(scores)):
        raise SpecError(f"evaluate_routing: predictions of shape {pred.shape} for {len(df)} "
                        f"rows and {len(scores)} models; give a ladder QualityRouter or an "
                        f"array (rows × models)", key="router_or_scores")
    costs = _ladder_costs(df, text, costs, models, names, output_tokens, len(scores))
    return LadderReport(df[text].astype(str).tolist(), pred, df[scores].to_numpy(float), costs,
                        names=names, threshold=threshold, dropped=dropped, flagged=flagged,
                        held_out=bool(getattr(source, "trained_on", None)) and not flagged,
                        embedded=_embedded(source), bootstrap=bootstrap, seed=seed)


def _ladder_names(models: Any, source: Any, scores: list[str]) -> list[str]:
    if models is not None:
        if len(models) != len(scores):
            raise SpecError(f"evaluate_routing: {len(models)} models for {len(scores)} score "
                            f"columns; name each, cheapest first", key="models")
        return [str(m) for m in models]
    return list(getattr(source, "ladder", None) or scores)


def _ladder_costs(df: Any, text: str, costs: Any, models: Any, names: list[str],
                  output_tokens: Any, m: int) -> Any:
    """Dollars per row and model (rows × models), or None when any price is unknown."""
    import numpy as np

    if costs is not None:
        if len(costs) != m:
            raise SpecError(f"evaluate_routing: {len(costs)} costs for {m} models; give "
                            f"dollars per query for each, cheapest first", key="costs")
        cols = [_cost(c, df, "costs") for c in costs]
    elif models is not None and output_tokens is not None:
        cols = [_priced(n, df[text], _pick(output_tokens, i), df) for i, n in enumerate(names)]
    else:
        return None
    return None if any(c is None for c in cols) else np.column_stack(cols)


def _embedded(source: Any) -> dict[str, Any] | None:
    """What the router's embedding outside any run cost (learning, scoring these rows): no
    trace holds it, so the report says it."""
    import copy

    found = getattr(getattr(source, "scorer", source), "embedded", None)
    return {k: copy.copy(v) for k, v in found.items()} if isinstance(found, dict) else None


def _both_costs(df: Any, text: str, weak_cost: Any, strong_cost: Any, models: Any,
                names: Any, output_tokens: Any) -> tuple[Any, Any]:
    """Dollars per query of the weak and the strong model (None: unknown): as given, else
    priced from the models' ids when ``output_tokens`` says how long the answers are."""
    costs = {k: _cost(v, df, k) for k, v in (("weak_cost", weak_cost),
                                              ("strong_cost", strong_cost))}
    if models is not None and output_tokens is not None:
        for i, key in enumerate(("weak_cost", "strong_cost")):
            if costs[key] is None:
                costs[key] = _priced(names[i], df[text], _pick(output_tokens, i), df)
    return costs["weak_cost"], costs["strong_cost"]


def _held_out(df: Any, seen: Any, text: str, on_training: str) -> tuple[Any, int, int]:
    """The rows to report on, and how many training rows were dropped / kept flagged."""
    import numpy as np

    if not seen:
        return df, 0, 0
    inside = np.array([text_key(str(t)) in seen for t in df[text]], dtype=bool)
    if inside.any() and on_training == "refuse":
        raise SpecError(
            f"{int(inside.sum())} of {len(df)} rows are among the router's training "
            f"examples, where it looks better than it is. Evaluate on held-out rows (split "
            f"the data before building the router), or pass on_training='drop' (leave them "
            f"out) or 'flag' (keep them, flagged)", key="data")
    if on_training == "drop":
        return df[~inside].reset_index(drop=True), int(inside.sum()), 0
    return df, 0, int(inside.sum())


def _frame(data: Any, text: str, weak: str, strong: str) -> Any:
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise SpecError(f"evaluate_routing: data is a DataFrame of graded answers, not "
                        f"{type(data).__name__}", key="data")
    check_graded(data, (text, weak, strong), what="evaluate_routing: data lacks", key="data")
    out = data.reset_index(drop=True).copy()
    for c in (weak, strong):
        col = pd.to_numeric(out[c].map(lambda v: float(v) if isinstance(v, bool) else v),
                            errors="coerce")
        if col.isna().any():
            raise SpecError(f"evaluate_routing: column {c!r} has {int(col.isna().sum())} "
                            f"missing or non-numeric grades; grade every row", key=c)
        out[c] = col.astype(float)
    return out


def _scores(source: Any, df: Any, text: str) -> tuple[Any, float | None]:
    import numpy as np

    if isinstance(source, str):
        if source not in df.columns:
            raise SpecError(f"evaluate_routing: no score column {source!r} in the data",
                            key="router_or_scores")
        return df[source].to_numpy(float), None
    if callable(getattr(source, "scores", None)):
        return np.asarray(source.scores(list(df[text].astype(str))), dtype=float), float(
            source.threshold)
    if callable(source):
        return np.array([float(source(str(t))) for t in df[text]]), None
    values = np.asarray(source, dtype=float)
    if values.shape != (len(df),):
        raise SpecError(f"evaluate_routing: {values.shape[0] if values.ndim else 0} scores "
                        f"for {len(df)} rows; give one score per row", key="router_or_scores")
    return values, None


def _cost(value: Any, df: Any, key: str) -> Any:
    import numpy as np

    if value is None:
        return None
    if isinstance(value, str):
        if value not in df.columns:
            raise SpecError(f"evaluate_routing: no cost column {value!r} in the data", key=key)
        col = df[value].astype(float).to_numpy()
        return None if np.isnan(col).any() else col  # one unknown price: the sum is unknown
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"evaluate_routing({key}=...) is dollars per query (a number >= 0 or "
                        f"a column name), not {value!r}", key=key)
    return np.full(len(df), float(value))


def _pick(value: Any, i: int) -> Any:
    return value[i] if isinstance(value, (tuple, list)) else value


def _priced(model: str, texts: Any, out: Any, df: Any) -> Any:
    """Dollars per row for ``model`` from the pricing table (None when its price is unknown)."""
    import numpy as np

    rates = rates_for(model) if ":" in model else None
    if rates is None or rates.ref is None:
        return None
    prompt = chars_to_tokens(texts.astype(str).str.len().to_numpy(), 1)
    if isinstance(out, str):
        if out not in df.columns:
            raise SpecError(f"evaluate_routing: no answer column {out!r} for output_tokens",
                            key="output_tokens")
        answer = chars_to_tokens(df[out].fillna("").astype(str).str.len().to_numpy(), 0)
    else:
        answer = np.full(len(df), float(out))
    return prompt * rates.input + answer * rates.output


def _names(models: Any, source: Any) -> tuple[str, str]:
    if isinstance(models, Mapping):
        return str(models.get("weak", "weak")), str(models.get("strong", "strong"))
    if models is not None:
        weak, strong = models
        return str(weak), str(strong)
    routes = getattr(source, "routes", None)
    if routes:
        found = []
        for label in ("weak", "strong"):
            node = routes.get(label)
            model = getattr(node, "model", None)
            found.append(getattr(model, "id", None) or getattr(node, "name", label))
        return found[0], found[1]
    return "weak", "strong"
