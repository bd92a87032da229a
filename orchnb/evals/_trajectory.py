"""Trajectory scorers: an agent's recorded tool calls against the ones a row expects.

``orchnb.trajectory("expected_tools")`` reads, for each row, the tool spans of that row's run
(the agent's calls, in the order they started, refused ones included) and the expected calls
in a data column: a list of tool names, a list of ``{"name": ..., "args": {...}}``, or that
list as JSON text (``"search, lookup"`` reads as two names). How they must agree:

- ``"strict"``: the same calls in the same order, no more, no fewer;
- ``"unordered"``: the same calls in any order (as many of each);
- ``"subset"``: every call made was expected (the agent did nothing it should not have);
- ``"superset"``: every expected call was made (extra calls allowed).

Arguments are compared only where an expected call gives ``args``: exactly (``args="exact"``,
the default; ``2 == 2.0``), by ``args=fn(got_args, expected_args) -> bool``, or not at all
(``args=None``). ``max_steps=N`` fails a row that made more than N tool calls (alone, with no
expected column, it is a step-count limit). Scores are 0 or 1; a row with no expected
trajectory (empty cell) scores NaN, while ``[]`` expects no call at all. Each failing row gets
a readable diff in the ``NAME_diff`` column (shown in ``report.failures``).

``orchnb.judge(model, rubric, trajectory=True)`` grades the whole trajectory (each call, its
result, the final answer) with the judge machinery of ``_judge.py``.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError
from ._collect import RowIndex
from ._scorers import Scorer

if TYPE_CHECKING:
    from ..engine import Run

MODES = ("strict", "unordered", "subset", "superset")
MAX_CALLS = 256
"""Longest trajectory matched call by call (a longer one fails, saying so): matching by an
argument function is quadratic."""
_RESULT_CHARS = 300

Call = dict[str, Any]
ArgsMatch = Callable[[Any, Any], Any]


def row_trajectories(run: Run, n: int) -> list[list[Call]]:
    """Each row's tool calls, in the order they started: ``name``, ``args`` (the arguments
    parsed from the span, or its text when they do not parse), ``status`` and ``result``."""
    idx = RowIndex(run, n)
    out: list[list[Call]] = [[] for _ in range(n)]
    for s in sorted((s for s in idx.spans if s.kind == "tool"), key=lambda s: s.start or 0.0):
        i = idx.row(s)
        if i is not None:
            out[i].append({"name": s.tool, "args": _args(s.input), "status": s.status,
                           "result": (s.output or "")[:_RESULT_CHARS]})
    return out


def _args(text: str | None) -> Any:
    if text is None:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text


def expected_calls(value: Any, where: str) -> list[Call] | None:
    """The expected calls in a data cell (None: no expectation for this row)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            value = [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{where}: expected a list of tool names or of {{'name', 'args'}}, "
                        f"got {str(value)[:80]!r}")
    calls = []
    for item in value:
        if isinstance(item, str):
            calls.append({"name": item})
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            calls.append({"name": item["name"], **({"args": item["args"]}
                                                   if "args" in item else {})})
        else:
            raise SpecError(f"{where}: each expected call is a tool name or a dict with "
                            f"'name' (and 'args'), not {str(item)[:80]!r}")
    return calls


class _Matcher:
    """Whether a made call matches an expected one (name, then arguments if asked)."""

    def __init__(self, args: str | ArgsMatch | None):
        self.args = args

    def __call__(self, got: Call, want: Call) -> bool:
        if got["name"] != want["name"]:
            return False
        if self.args is None or "args" not in want:
            return True
        if self.args == "exact":
            return bool(got["args"] == want["args"])
        return bool(self.args(got["args"], want["args"]))  # type: ignore[operator]


def _matching(got: list[Call], want: list[Call], same: _Matcher) -> dict[int, int]:
    """A largest matching of made calls to expected ones (Kuhn's augmenting paths):
    ``{got index: want index}``."""
    ok = [[j for j, w in enumerate(want) if same(g, w)] for g in got]
    owner: dict[int, int] = {}  # want index -> got index

    def augment(i: int, seen: set[int]) -> bool:
        for j in ok[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(got)):
        augment(i, set())
    return {i: j for j, i in owner.items()}


def _show(c: Call, width: int = 60) -> str:
    if "args" not in c or c["args"] in ({}, None):
        return str(c["name"])
    a = c["args"]
    text = json.dumps(a, ensure_ascii=False, sort_keys=True, default=str) if not isinstance(
        a, str) else a
    return f"{c['name']}({text[:width]}{'…' if len(text) > width else ''})"


def call_text(c: Call, width: int = 60) -> str:
    """One call as a line: its name and arguments (``width`` characters of them), status and
    result (``search({"q": "o1"}) [ok] → found o1``)."""
    return f"{_show(c, width)} [{c.get('status', 'ok')}] → {c.get('result', '')}"


def _chain(calls: list[Call]) -> str:
    return " → ".join(_show(c) for c in calls) or "(no tool calls)"


def _strict_problems(got: list[Call], want: list[Call], same: _Matcher) -> list[str]:
    names = difflib.SequenceMatcher(None, [w["name"] for w in want], [g["name"] for g in got],
                                    autojunk=False)
    problems = []
    for op, a0, a1, b0, b1 in names.get_opcodes():
        if op == "equal":
            problems += [f"step {b0 + k + 1}: {_show(got[b0 + k])}, expected "
                         f"{_show(want[a0 + k])}" for k in range(a1 - a0)
                         if not same(got[b0 + k], want[a0 + k])]
        elif op == "replace":
            problems.append(f"step {b0 + 1}: {_chain(got[b0:b1])} instead of "
                            f"{_chain(want[a0:a1])}")
        elif op == "delete":
            problems.append(f"missing {_chain(want[a0:a1])} (before step {b0 + 1})")
        else:
            problems.append(f"extra {_chain(got[b0:b1])} at step {b0 + 1}")
    return problems


def _set_problems(got: list[Call], want: list[Call], same: _Matcher, mode: str) -> list[str]:
    pairs = _matching(got, want, same)
    problems = []
    if mode in ("unordered", "superset"):
        missing = [w for j, w in enumerate(want) if j not in set(pairs.values())]
        if missing:
            problems.append(f"missing {', '.join(map(_show, missing))}")
    if mode in ("unordered", "subset"):
        extra = [g for i, g in enumerate(got) if i not in pairs]
        if extra:
            problems.append(f"unexpected {', '.join(map(_show, extra))}")
    return problems


def judge_trajectory(got: list[Call], want: list[Call] | None, *, mode: str,
                     same: _Matcher, max_steps: int | None) -> tuple[float, str | None]:
    """(score, diff): 1.0 and None when the trajectory passes, else 0.0 and what differs."""
    problems = []
    if max_steps is not None and len(got) > max_steps:
        problems.append(f"{len(got)} tool calls, over max_steps={max_steps}")
    if want is not None:
        if max(len(got), len(want)) > MAX_CALLS:
            problems.append(f"too long to match ({len(got)} calls made, {len(want)} "
                            f"expected; at most {MAX_CALLS})")
        elif mode == "strict":
            problems += _strict_problems(got, want, same)
        else:
            problems += _set_problems(got, want, same, mode)
    if not problems:
        return 1.0, None
    head = f"expected {_chain(want)}; got {_chain(got)}: " if want is not None else ""
    return 0.0, head + "; ".join(problems)


def trajectory(expected: str | None = None, *, mode: str = "strict",
               args: str | ArgsMatch | None = "exact", max_steps: int | None = None,
               name: str | None = None) -> Scorer:
    """A scorer of each row's tool calls against the data column ``expected`` (see the
    module's description of modes, argument matching and ``max_steps``).

    >>> s = trajectory("tools", mode="unordered")
    >>> s.name, s.reads
    ('trajectory', 'trajectory')
    >>> report = orchnb.evaluate(agent, data, scorers=[s])   # doctest: +SKIP
    >>> report.failures[["input", "trajectory_diff"]]         # doctest: +SKIP
    """
    where = "trajectory scorer"
    if mode not in MODES:
        raise SpecError(f"{where}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not (args is None or args == "exact" or callable(args)):
        raise SpecError(f"{where}: args must be 'exact', None (names only) or a function "
                        f"(got_args, expected_args) -> bool, not {args!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int)
                                  or max_steps < 0):
        raise SpecError(f"{where}: max_steps must be a whole number >= 0, not {max_steps!r}")
    if expected is None and max_steps is None:
        raise SpecError(f"{where}: give the column of expected tool calls "
                        f"(trajectory('expected_tools')) or a step limit (max_steps=N)")
    if expected is not None and (not isinstance(expected, str) or not expected):
        raise SpecError(f"{where}: expected must name a column (a string), not {expected!r}")
    same = _Matcher(args)
    label = name or ("trajectory" if expected is not None else "steps")

    def diff(calls: list[Call], row: Mapping[str, Any]) -> tuple[float, str | None]:
        want = None
        if expected is not None:
            want = expected_calls(row.get(expected), f"{where} {label!r}, column {expected!r}")
            if want is None:
                return math.nan, None
        return judge_trajectory(calls, want, mode=mode, same=same, max_steps=max_steps)

    return Scorer(label, lambda calls, _, row: diff(calls, row)[0], needs_expected=False,
                  reads="trajectory", columns=(expected,) if expected else (), diff=diff)


def render(calls: Sequence[Call], output: Any) -> str:
    """A trajectory as a judge reads it: each call, its arguments and result, then the answer."""
    lines = [f"{k}. {call_text(c)}" for k, c in enumerate(calls, 1)]
    return ("Tool calls:\n" + ("\n".join(lines) if lines else "(none)")
            + f"\n\nFinal answer:\n{'' if output is None else output}")
