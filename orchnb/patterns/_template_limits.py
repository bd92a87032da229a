"""Bounds on what a prompt template may build or run, checked before the work is done.

A rendered prompt is capped (:attr:`Prompt.max_chars`), but a template can build a huge value
without writing it out (``'%999999999s' % 'x'``, ``'x' | center(10**9)``, a loop that doubles
a string) or loop for ever without output (nested ``range`` loops, exponential macro
recursion). So every way of making a big value estimates its size *before* computing it
(binary operators, ``~``, the growing filters, ``str`` methods, ``lipsum``), and each render
has a budget of loop iterations and calls (:data:`MAX_STEPS`) and of characters built in all
(:data:`WORK_FACTOR` times the cap). Literal cases fail when the prompt is defined.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import pass_context
from jinja2.filters import FILTERS
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import MAX_RANGE, SecurityError
from jinja2.utils import _PassArg, generate_lorem_ipsum

MAX_PROMPT_CHARS = 1_000_000
MAX_STEPS = 1_000_000
"""Loop iterations one render may run; a call (function, macro, method) counts as
:data:`CALL_STEPS` (a macro call costs Jinja2 about as much as 20 iterations): at most 50,000
calls."""
CALL_STEPS = 20
WORK_FACTOR = 10
"""A render may build at most this many times its character cap, intermediate values
included (macro output, ``{% set %}`` blocks, concatenations)."""
MAX_INT_BITS = 65_536
"""Largest integer a template may compute (about 20,000 digits)."""


@dataclass(slots=True)
class Budget:
    """What one render may still spend."""

    cap: int
    steps: int = MAX_STEPS
    work: int = 0

    def __post_init__(self) -> None:
        self.work = self.work or WORK_FACTOR * self.cap


_BUDGET: ContextVar[Budget | None] = ContextVar("orchnb_template_budget", default=None)


def start(cap: int, steps: int = MAX_STEPS) -> Any:
    """Open a render's budget; pass the token to :func:`stop`."""
    return _BUDGET.set(Budget(cap, steps))


def stop(token: Any) -> None:
    _BUDGET.reset(token)


def _cap() -> int:
    budget = _BUDGET.get()
    return MAX_PROMPT_CHARS if budget is None else budget.cap


def charge(size: int, what: str) -> None:
    """Refuse a value of ``size`` characters (or items) over the cap, and count it."""
    budget = _BUDGET.get()
    cap = MAX_PROMPT_CHARS if budget is None else budget.cap
    if size > cap:
        raise SecurityError(f"{what} would build {size:,} characters or items, more than a "
                            f"prompt may hold ({cap:,})")
    if budget is not None:
        budget.work -= size
        if budget.work < 0:
            raise SecurityError(f"the template builds more than {WORK_FACTOR * cap:,} "
                                f"characters in all ({what}, in a loop or a macro?)")


def step(cost: int = CALL_STEPS) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.steps -= cost
        if budget.steps < 0:
            raise SecurityError(f"the template runs more than {MAX_STEPS:,} loop iterations "
                                f"(or {MAX_STEPS // CALL_STEPS:,} calls); loop over less, or "
                                "prepare the text in Python")


def size_of(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` has; counting stops past ``limit``, so the
    cost is at most ``limit`` element visits."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() * 30103 // 100_000 + 2
    if not isinstance(value, (list, tuple, set, frozenset, dict)):
        return 8
    total, stack = 2, [_elements(value)]
    while stack and total <= limit:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            total += 4
            stack.append(_elements(item))
        else:
            total += 2 + size_of(item, limit)
    return total


_END = object()


def _elements(value: Any) -> Iterator[Any]:
    return itertools.chain.from_iterable(value.items()) if isinstance(value, dict) else iter(value)


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# -- operators -----------------------------------------------------------------------------------

def check_binop(op: str, left: Any, right: Any) -> None:
    """Raise :class:`SecurityError` if ``left op right`` would be too big; nothing computed."""
    cap = _cap()
    if op == "*":
        if is_int(left) and is_int(right):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("'*' would compute too large a number for a prompt")
            return
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and is_int(n) and n > 0:
                per = len(seq) if isinstance(seq, (str, bytes)) else size_of(seq, cap)
                charge(per * n, f"'*' ({per:,} × {n:,})")
    elif op == "**":
        if is_int(left) and is_int(right) and abs(left) > 1 and right > 0 and (
                right > MAX_INT_BITS or left.bit_length() * right > MAX_INT_BITS):
            raise SecurityError(f"{left if left.bit_length() < 64 else '...'} ** {right} is "
                                "too large a number for a prompt")
    elif op == "+":
        if (isinstance(left, (str, bytes, list, tuple))
                and isinstance(right, (str, bytes, list, tuple))):
            charge(len(left) + len(right), "'+'")
    elif op == "%" and isinstance(left, (str, bytes)):
        charge(percent_size(left, right), "'%' formatting")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_PERCENT = re.compile(rb"%(?:\([^)]{0,200}\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)")


def percent_size(fmt: str | bytes, args: Any) -> int:
    """An upper bound on ``len(fmt % args)``: per directive, its width and precision plus the
    largest argument."""
    values = list(args.values()) if isinstance(args, dict) else (
        list(args) if isinstance(args, tuple) else [args])
    cap = _cap()
    biggest = max((size_of(v, cap) for v in values), default=0)
    stars = sum(abs(v) for v in values if is_int(v) and abs(v) < 1 << 64)
    raw = fmt.encode("utf-8", "surrogatepass") if isinstance(fmt, str) else fmt
    total = len(fmt)
    for m in _PERCENT.finditer(raw):
        for n in (m.group(1), m.group(2)):
            if n:
                total += stars if n == b"*" else (int(n) if len(n) < 20 else 1 << 64)
        total += biggest * 4 if m.group(3) in (b"r", b"a") else biggest
    return total


def brace_size(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound on ``len(fmt.format(*args, **kwargs))``."""
    values = [*args, *kwargs.values()]
    cap = _cap()
    biggest = max((size_of(v, cap) for v in values), default=0)
    total = 0
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # format() will raise its own error
    for literal, name, spec, conversion in fields:
        total += len(literal)
        if name is None:
            continue
        total += biggest * (4 if conversion in ("r", "a") else 1)
        if spec and "{" in spec:
            total += sum(abs(v) for v in values if is_int(v) and abs(v) < 1 << 64)
        total += sum(int(n) if len(n) < 20 else 1 << 64 for n in re.findall(r"\d+", spec or ""))
    return total


# -- str methods ------------------------------------------------------------------------------

def check_method(obj: Any, name: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of ``obj.name`` (a str, bytes or list method) before it runs; returns the
    arguments to call with (an iterable to join is read once, here)."""
    if isinstance(obj, (str, bytes)):
        n = len(obj)
        if name in ("center", "ljust", "rjust", "zfill") and args:
            charge(max(n, as_int(args[0])), f".{name}()")
        elif name == "expandtabs":
            tab = as_int(args[0] if args else kwargs.get("tabsize", 8), 8)
            charge(n + obj.count("\t" if isinstance(obj, str) else b"\t") * max(tab, 0),
                   ".expandtabs()")
        elif name == "replace" and len(args) >= 2:
            charge(replace_size(obj, args[0], args[1], args[2] if len(args) > 2 else -1),
                   ".replace()")
        elif name == "join" and args:
            items = _bounded_list(args[0], "join")
            charge(_join_size(items, len(obj)), ".join()")
            return (items, *args[1:])
        elif name == "translate" and args and isinstance(args[0], dict):
            longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))),
                          default=1)
            charge(n * max(longest, 1), ".translate()")
    elif isinstance(obj, (list, set)) and name in ("extend", "update") and args:
        items = _bounded_list(args[0], name)
        charge(len(obj) + len(items), f".{name}()")
        return (items, *args[1:])
    return args


def replace_size(s: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(s, (str, bytes)) or not isinstance(old, type(s)) or not isinstance(
            new, type(s)):
        return len(s) if isinstance(s, (str, bytes)) else 0
    found = len(s) + 1 if not old else s.count(old)
    if is_int(count) and count >= 0:
        found = min(found, count)
    return len(s) + found * max(0, len(new) - len(old))


def _bounded_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, list):
        return value
    cap = _cap()
    items = list(itertools.islice(value, cap + 1))
    if len(items) > cap:
        raise SecurityError(f"{what} of more than {cap:,} items")
    return items


def _join_size(items: list[Any], sep: int) -> int:
    cap, total = _cap(), sep * max(len(items) - 1, 0)
    for item in items:
        total += size_of(item, cap)
        if total > cap:
            break
    return total


# -- filters and globals --------------------------------------------------------------------

def _str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _center(value: Any, width: Any = 80) -> None:
    charge(max(len(_str(value)), as_int(width)), "center")


def _indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    text = _str(s)
    w = len(width) if isinstance(width, str) else as_int(width)
    charge(len(text) + (text.count("\n") + 1) * max(w, 0), "indent")


def _wordwrap(s: Any, width: Any = 79, break_long_words: bool = True,
              wrapstring: Any = None, break_on_hyphens: bool = True) -> None:
    text, sep = _str(s), len(wrapstring) if isinstance(wrapstring, str) else 1
    lines = 2 * len(text) // max(as_int(width, 79), 1) + text.count("\n") + 2
    charge(len(text) + lines * sep, "wordwrap")


def _replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    text = _str(s)
    charge(replace_size(text, _str(old), _str(new), -1 if count is None else count), "replace")


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    charge(percent_size(_str(value), kwargs or args), "format")


def _join(value: Any, d: Any = "", attribute: Any = None) -> list[Any]:
    items = _bounded_list(value, "join")
    charge(_join_size(items, len(_str(d))), "join")
    return items


def _count(value: Any, n: Any, fill_with: Any = None) -> None:
    if as_int(n) > _cap():
        raise SecurityError(f"batch/slice into {n:,} pieces, more than a prompt may hold")


def _tojson(value: Any, indent: Any = None) -> None:
    if indent is not None and (len(indent) if isinstance(indent, str) else as_int(indent)) > 64:
        raise SecurityError("tojson indent over 64")
    charge(size_of(value, _cap()) * (2 if indent is not None else 1), "tojson")


def _whole(value: Any, *args: Any, **kwargs: Any) -> None:
    charge(size_of(value, _cap()), "converting a value to text")


def _sum(iterable: Any, attribute: Any = None, start: Any = 0) -> list[Any] | None:
    if isinstance(start, (int, float)):
        return None
    items = _bounded_list(iterable, "sum")
    charge(size_of(start, _cap()) + _join_size(items, 0), "sum")
    return items


ESTIMATES: dict[str, Callable[..., Any]] = {
    "center": _center, "indent": _indent, "wordwrap": _wordwrap, "replace": _replace,
    "format": _format, "join": _join, "batch": _count, "slice": _count, "tojson": _tojson,
    "string": _whole, "pprint": _whole, "sum": _sum,
}
"""Filters whose result can be much larger than their input: name → size check (raising
:class:`SecurityError`), which may return the input read into a list."""


def bounded_filters() -> dict[str, Callable[..., Any]]:
    """The growing filters, wrapped in their size checks. They take the context, which also
    keeps Jinja2 from running them while compiling (constant folding)."""
    out: dict[str, Callable[..., Any]] = {}
    for name, estimate in ESTIMATES.items():
        out[name] = _wrap(FILTERS[name], estimate, name)
    out["orchnb-iter"], out["orchnb-out"], out["orchnb-concat"] = _iter, _out, _concat
    return out


def _wrap(original: Callable[..., Any], estimate: Callable[..., Any], name: str) -> Any:
    kind = _PassArg.from_obj(original)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        read = estimate(value, *args, **kwargs)
        if read is not None:
            value = read
        if name == "sum" and read is not None:  # linear, where sum() of lists is quadratic
            start = kwargs.get("start", args[1] if len(args) > 1 else 0)
            attribute = kwargs.get("attribute", args[0] if args else None)
            if attribute is None:
                return type(start)(itertools.chain(start, *value)) if not isinstance(
                    start, str) else start + "".join(value)
        if kind is _PassArg.environment:
            return original(context.environment, value, *args, **kwargs)
        if kind is _PassArg.eval_context:
            return original(context.eval_ctx, value, *args, **kwargs)
        return original(value, *args, **kwargs)

    bounded.__name__ = getattr(original, "__name__", name)
    return bounded


@pass_context
def _iter(context: Context, iterable: Any) -> Iterator[Any]:
    """Every loop's iterable: each item counts as a step."""
    budget = _BUDGET.get()
    if budget is None:
        yield from iterable
        return
    for item in iterable:
        budget.steps -= 1
        if budget.steps < 0:
            step()  # raises with the message
        yield item


@pass_context
def _out(context: Context, value: Any) -> Any:
    """Output inside a loop, macro or block (written to a buffer, not streamed): counted."""
    budget = _BUDGET.get()
    charge(size_of(value, budget.work + 1 if budget else MAX_PROMPT_CHARS), "the text written")
    return value


@pass_context
def _concat(context: Context, parts: list[Any]) -> str:
    charge(_join_size(parts, 0), "'~'")
    return (markup_join if context.eval_ctx.autoescape else str_join)(parts)


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja2's ``lipsum``, refused when it would write more than a prompt may hold."""
    charge(as_int(n) * as_int(max) * 12, "lipsum")
    return generate_lorem_ipsum(n, html, min, max)


def counted_range(*args: int) -> range:
    """``range``, at most :data:`jinja2.sandbox.MAX_RANGE` long."""
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range of {len(rng):,} items, more than {MAX_RANGE:,}")
    return rng


def iterable_of(value: Any) -> Iterable[Any]:
    """Recursive loops call ``loop(items)``: those items are counted too."""
    return _iter(None, value)  # type: ignore[arg-type]
