"""Scorers for :func:`~orchnb.evaluate` on any pipeline: built-ins by name, Python functions,
and LLM judges (:func:`~orchnb.judge`, in ``_judge.py``).

A scorer turns one row's ``(output, expected[, row])`` into a number in [0, 1] (``True`` is 1).
Built-ins by name:

- ``"exact"``: the output equals the expected text once surrounding whitespace is stripped;
- ``"iexact"``: the same, ignoring case;
- ``"contains"``: the expected text occurs in the output (case ignored);
- ``"regex:PATTERN"``: ``PATTERN`` is found in the output (``re.search``; no expected needed);
- ``"json:FIELD"``: the output parses as JSON (a ```` ```json ```` fence is fine) and its
  ``FIELD`` (dotted path, ``a.b.0``) equals the expected value (or the expected JSON's ``FIELD``);
- ``"numeric"`` / ``"numeric:TOL"`` / ``"numeric:TOL%"``: the output's first number is within
  an absolute (or relative, with ``%``) tolerance of the expected number (default 1e-6).

The rule for nothing to compare with: when a row's expected answer is missing (None, NaN) or
empty once stripped, the built-ins that compare with it (all but ``regex:``) score it NaN:
it is left out of the mean and of ``summary.scored``, never 1.0 (every text "contains" the
empty string) nor a silent 0.

>>> score = as_scorer("contains")
>>> score("Your parcel ships Monday", "monday", {})
1.0
>>> as_scorer("numeric:0.5")("about 41.8 km", "42", {})
1.0
>>> as_scorer("contains")("anything", "", {})
nan
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..exceptions import SpecError
from ..patterns import parse_json_answer

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
BUILT_INS = ("exact", "iexact", "contains", "regex:PATTERN", "json:FIELD", "numeric[:TOL]")


@dataclass
class Scorer:
    """A named scorer: ``fn(output, expected, row) -> float`` (NaN: cannot score this row).

    ``needs_expected`` says whether it reads the expected column; ``llm`` marks judges (they
    run as their own traced run after the pipeline's rows)."""

    name: str
    fn: Callable[[Any, Any, Mapping[str, Any]], float]
    needs_expected: bool = True
    binary: bool = True
    """Scores are 0 or 1 (McNemar's test applies in comparisons)."""
    llm: bool = False
    judge: Any = None
    """The :class:`~orchnb.evals.Judge` behind an LLM scorer."""
    reads: str = "output"
    """What ``fn`` gets as its first argument: the row's ``"output"``, or its
    ``"trajectory"`` (the row's tool calls, see ``orchnb.trajectory``)."""
    columns: tuple[str, ...] = ()
    """Data columns the scorer reads from the row (checked before the eval runs)."""
    diff: Callable[[Any, Mapping[str, Any]], tuple[float, str | None]] | None = None
    """``diff(value, row) -> (score, why)``: a score with what went wrong (``NAME_diff``)."""

    def __call__(self, output: Any, expected: Any, row: Mapping[str, Any]) -> float:
        return self.fn(output, expected, row)


def _text(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def _nothing(expected: Any) -> bool:
    """A missing or empty expected answer."""
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return True
    return isinstance(expected, str) and not expected.strip()


ScoreFn = Callable[[Any, Any, Mapping[str, Any]], float]


def _compared(fn: ScoreFn) -> ScoreFn:
    """A built-in that compares with the expected answer: NaN when there is none."""
    def score(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
        return math.nan if _nothing(expected) else fn(output, expected, row)

    return score


def _exact(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
    return float(_text(output).strip() == _text(expected).strip())


def _iexact(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
    return float(_text(output).strip().casefold() == _text(expected).strip().casefold())


def _contains(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
    return float(_text(expected).strip().casefold() in _text(output).casefold())


def parse_json(text: Any) -> Any:
    """JSON from a model's answer: the whole text, a fenced block, or the first ``{...}``
    (values that are not text are returned as they are)."""
    if not isinstance(text, str):
        return text
    return parse_json_answer(text)


_MISSING = object()


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(
                part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(b, str) and not isinstance(a, str):
        return json.dumps(a, sort_keys=True) == b.strip() or str(a) == b.strip()
    return a == b


def _json_field(path: str) -> Callable[[Any, Any, Mapping[str, Any]], float]:
    def score(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
        try:
            got = _field(parse_json(output), path)
        except ValueError:
            return 0.0
        if got is _MISSING:
            return 0.0
        want = expected
        if isinstance(expected, str):
            try:
                parsed = json.loads(expected)
            except ValueError:
                parsed = _MISSING
            if isinstance(parsed, (Mapping, list)):
                want = _field(parsed, path)
            elif parsed is not _MISSING:
                want = parsed
        elif isinstance(expected, (Mapping, list)):
            want = _field(expected, path)
        return float(want is not _MISSING and _same(got, want))

    return score


def first_number(x: Any) -> float:
    """The first number in ``x`` (``1,234.5`` reads as 1234.5); NaN when there is none.

    >>> first_number("Total: $1,234.50 (est.)")
    1234.5
    """
    if isinstance(x, (int, float)):
        return float(x)
    m = _NUMBER.search(_text(x))
    return float(m.group().replace(",", "")) if m else math.nan


def _numeric(spec: str) -> Callable[[Any, Any, Mapping[str, Any]], float]:
    relative = spec.endswith("%")
    try:
        tol = float(spec.rstrip("%")) if spec else 1e-6
    except ValueError:
        raise SpecError(f"scorer 'numeric:{spec}': the tolerance must be a number like "
                        f"'numeric:0.01' or 'numeric:2%'") from None

    def score(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
        got, want = first_number(output), first_number(expected)
        if math.isnan(want):
            return math.nan
        if math.isnan(got):
            return 0.0
        limit = abs(want) * tol / 100 if relative else tol
        return float(abs(got - want) <= limit + 1e-12)

    return score


def _regex(pattern: str) -> Callable[[Any, Any, Mapping[str, Any]], float]:
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise SpecError(f"scorer 'regex:{pattern}': not a valid regular expression ({e})") from None
    return lambda output, expected, row: float(compiled.search(_text(output)) is not None)


def _from_function(fn: Callable[..., Any]) -> Scorer:
    name = getattr(fn, "__name__", "score")
    if name == "<lambda>":
        name = "score"
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        takes_row = len(params) >= 3
    except (TypeError, ValueError):
        takes_row = False

    def score(output: Any, expected: Any, row: Mapping[str, Any]) -> float:
        value = fn(output, expected, row) if takes_row else fn(output, expected)
        if value is None:
            return math.nan
        if isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SpecError(f"scorer {name!r} returned {value!r}; a scorer returns a number "
                            f"(0 to 1) or a bool") from None

    return Scorer(name, score, binary=False)


def as_scorer(spec: Any) -> Scorer:
    """A :class:`Scorer` from a built-in name, a Python function or a judge.

    >>> as_scorer("regex:^\\\\d+$").name
    'regex:^\\\\d+$'
    """
    if isinstance(spec, Scorer):
        return spec
    if hasattr(spec, "as_scorer"):  # a Judge
        return spec.as_scorer()
    if isinstance(spec, str):
        kind, _, arg = spec.partition(":")
        if kind == "exact" and not arg:
            return Scorer("exact", _compared(_exact))
        if kind == "iexact" and not arg:
            return Scorer("iexact", _compared(_iexact))
        if kind == "contains" and not arg:
            return Scorer("contains", _compared(_contains))
        if kind == "regex" and arg:
            return Scorer(spec, _regex(arg), needs_expected=False)
        if kind == "json" and arg:
            return Scorer(spec, _compared(_json_field(arg)))
        if kind == "numeric":
            return Scorer(spec, _compared(_numeric(arg)))
        raise SpecError(f"unknown scorer {spec!r}; built-ins: {', '.join(BUILT_INS)}; or give "
                        f"a function (output, expected) -> float | bool, or orchnb.judge(...)")
    if callable(spec):
        return _from_function(spec)
    raise SpecError(f"{spec!r} is not a scorer; give a built-in name "
                    f"({', '.join(BUILT_INS)}), a function or orchnb.judge(model, rubric)")


def as_scorers(specs: Any) -> list[Scorer]:
    """Scorers from one spec or a list; names made unique (``exact``, ``exact#2``)."""
    if specs is None:
        return []
    items = list(specs) if isinstance(specs, (list, tuple)) else [specs]
    out: list[Scorer] = []
    seen: set[str] = set()
    for s in items:
        sc = as_scorer(s)
        name, i = sc.name, 2
        while name in seen:
            name, i = f"{sc.name}#{i}", i + 1
        if name != sc.name:
            sc = replace(sc, name=name)
        seen.add(name)
        out.append(sc)
    return out
