"""Prompt templates: Jinja2, sandboxed, strict about undefined variables, checked up front.

Templates may not read private or internal attributes (``{{ input.__class__ }}``,
``{{ x._secret }}``, ``{{ gen.gi_frame }}``): what can be seen in the template fails when the
prompt is defined, the rest (the sandbox's rules by the value's type) when it renders, on the
fast path as on Jinja2's. A rendered prompt is capped at :attr:`Prompt.max_chars` characters
(1,000,000 by default; ``Prompt.max_chars = ...`` to change it for all prompts), and so is every
value the template builds on the way; a render runs at most 1,000,000 loop iterations and calls
(see ``_template_limits``). What literals alone show to be over (``'%999999999s' % 'x'``,
``'x' | center(10**9)``, nested ``range(100000)`` loops) fails when the prompt is defined.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.runtime import LoopContext
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    SandboxedEnvironment,
)

from ..exceptions import TemplateError
from . import _template_limits as limits
from . import _template_tree as tree
from ._template_limits import MAX_PROMPT_CHARS

# Names that are internal on some type (frames, code, tracebacks, generators, functions):
# refused at definition whatever the value will be. Python 2 spellings are kept: harmless.
_INTERNAL = frozenset({
    *UNSAFE_FUNCTION_ATTRIBUTES, *UNSAFE_METHOD_ATTRIBUTES, *UNSAFE_GENERATOR_ATTRIBUTES,
    *UNSAFE_COROUTINE_ATTRIBUTES, *UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
    "ag_code", "ag_await", "f_globals", "f_locals", "f_builtins", "f_code", "f_back",
    "tb_frame", "tb_next", "co_code", "func_globals", "func_code", "func_closure", "im_func",
    "im_self", "mro",
})


class _Env(SandboxedEnvironment):
    """The sandbox, plus size checks before anything that can build a big value runs
    (``{{ 'x' * 10**9 }}`` would build a gigabyte before any length check could see it): the
    operators, the growing filters, ``str`` methods (``center``, ``join``, ``format``...)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(limits.bounded_filters())
        self.globals.update(range=limits.counted_range, lipsum=limits.lipsum)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        limits.check_binop(op, left, right)
        return super().call_binop(context, op, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any,
             **kwargs: Any) -> Any:
        limits.step()
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's loop(children)
            args = (limits.iterable_of(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        if owner is not None and isinstance(owner, (str, bytes, list, set)):
            args = limits.check_method(owner, getattr(__obj, "__name__", ""), args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if is_map and args and isinstance(args[0], dict) else kwargs
            limits.charge(limits.brace_size(fmt, () if is_map else args, mapping),
                          f".{value.__name__}()")
            return wrapped(*args, **kwargs)

        return checked


_ENV = _Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
KNOWN_VARIABLES = frozenset({"input", "steps", "outputs", "item", "run_input", "vars", "plan",
                             "workspace", "task", "routes", "labels", "tools", "history",
                             "agents"})
_PATTERN_VARIABLES = {"chain": {"steps"}, "router": {"steps", "labels", "routes"},
                      "mapreduce": {"item", "outputs"}, "agent": {"tools"},
                      "plan_execute": {"task", "plan", "history"},
                      "team": {"task", "workspace", "agents"}}
"""What each pattern adds to the variables its parts see (beside input, run_input, history)."""
_SCOPE: ContextVar[tuple[str, ...]] = ContextVar("orchnb_template_scope", default=())


@contextmanager
def pattern_scope(pattern: str) -> Iterator[None]:
    """Prompts built inside (the YAML loader building ``pattern``'s parts) name only the
    variables their enclosing patterns provide when they refuse an unknown one."""
    token = _SCOPE.set((*_SCOPE.get(), pattern))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _shown_variables(allowed: frozenset[str]) -> frozenset[str]:
    scope = _SCOPE.get()
    if not scope or any(p not in _PATTERN_VARIABLES for p in scope):
        return allowed  # a pattern whose parts' variables are not listed: show them all
    seen = {"input", "run_input", "history"}.union(*(_PATTERN_VARIABLES[p] for p in scope))
    return frozenset(seen | (allowed - KNOWN_VARIABLES))


class Prompt:
    """A compiled prompt template. Syntax errors, unknown variables and reads of private or
    internal attributes fail at definition; a rendered prompt longer than ``max_chars``
    (default :attr:`Prompt.max_chars`, 1,000,000) is a :class:`TemplateError`.

    >>> Prompt("Summarize: {{ input }}").render(input="a text")
    'Summarize: a text'
    >>> Prompt("{{ steps.summary }}").step_refs
    {'summary'}
    >>> Prompt("{{ input.__class__ }}", owner="step 's': ")
    Traceback (most recent call last):
    ...
    orchnb.exceptions.TemplateError: line 1, key 'prompt': step 's': the template reads \
'__class__'; prompts may not read private or internal attributes (names starting with '_', \
gi_frame, f_globals, ...)
    """

    __slots__ = ("_max_chars", "_owner", "_parts", "_template", "_where", "source", "step_refs",
                 "variables")

    max_chars: int = MAX_PROMPT_CHARS
    """The longest rendered prompt accepted, in characters, for every prompt without its own
    ``max_chars`` (set ``Prompt.max_chars = 5_000_000`` to raise it for all)."""

    def __init__(self, source: str, *, where: str = "prompt",
                 allowed: frozenset[str] = KNOWN_VARIABLES, line: int | None = None,
                 owner: str = "", max_chars: int | None = None):
        if not isinstance(source, str):
            raise TemplateError(f"{owner}a prompt must be text, got {type(source).__name__}",
                                key=where, line=line)
        self.source = source
        self._owner, self._where, self._max_chars = owner, where, max_chars
        self._parts: list[tuple[str, str | None]] | None = None
        if "{" not in source:
            self._template = None
            self.variables: set[str] = set()
            self.step_refs: set[str] = set()
            return
        try:
            ast = _ENV.parse(source)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"{owner}template syntax error: {e.message} (template line "
                                f"{e.lineno})", key=where, line=e.lineno) from None
        for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            tag = {"Include": "include", "Import": "import", "FromImport": "from ... import",
                   "Extends": "extends"}[type(node).__name__]
            raise TemplateError(
                f"{owner}prompts cannot use {{% {tag} %}}: there are no other templates to "
                f"load; put the text in the prompt, or pass it in as a variable "
                f"({{{{ steps.NAME }}}}, {{{{ input }}}})", key=where, line=node.lineno)
        problem = tree.definition_problem(ast, max_chars or Prompt.max_chars)
        if problem is not None:
            raise TemplateError(f"{owner}{problem[0]}; a prompt holds at most "
                                f"{max_chars or Prompt.max_chars:,} characters (raise "
                                "orchnb.patterns.Prompt.max_chars if this is meant)",
                                key=where, line=problem[1])
        self.variables = meta.find_undeclared_variables(ast)
        unknown = sorted(self.variables - allowed)
        if unknown:
            raise TemplateError(
                f"{owner}undefined template variable(s) {', '.join(unknown)}; available: "
                f"{', '.join(sorted(_shown_variables(allowed)))} "
                f"(e.g. {{{{ input }}}} or {{{{ steps.NAME }}}})",
                key=where, line=_line_of(source, unknown[0]))
        unsafe = _unsafe_access(ast)
        if unsafe is not None:
            raise TemplateError(
                f"{owner}the template reads '{unsafe[0]}'; prompts may not read private or "
                f"internal attributes (names starting with '_', gi_frame, f_globals, ...)",
                key=where, line=unsafe[1])
        self.step_refs = _step_refs(ast)
        self._parts = _simple_parts(ast)
        tree.harden(ast)
        ast.set_environment(_ENV)
        self._template = jinja2.Template.from_code(_ENV, _ENV.compile(ast), _ENV.make_globals(None),
                                                   None)

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled Jinja templates do not pickle: a prompt travels (to Ray workers) as source.
        allowed = KNOWN_VARIABLES | frozenset(self.variables)
        return _rebuild, (self.source, self._where, allowed, self._owner, self._max_chars)

    def render(self, **variables: Any) -> str:
        return self.render_vars(variables)

    def render_vars(self, variables: dict[str, Any]) -> str:
        """``render(**variables)``, the variables given as one dict (not copied: a step's
        prompt renders on every call)."""
        if self._template is None:
            return self.source
        limit = self._max_chars or Prompt.max_chars
        if self._parts is not None:
            try:
                text = _render_parts(self._parts, variables)
            except (KeyError, TypeError, AttributeError):
                pass  # let Jinja2 produce its precise message
            else:
                if len(text) > limit:
                    raise self._too_long(limit, len(text))
                return text
        owner = self._owner
        token = limits.start(limit)
        try:
            # Streamed, so that a loop that writes without end stops at the cap.
            pieces, size = [], 0
            for piece in self._template.generate(variables):
                size += len(piece)
                if size > limit:
                    raise self._too_long(limit, size, at_least=True)
                pieces.append(piece)
            return "".join(pieces)
        except TemplateError:
            raise  # over the cap (a ValueError, not to be wrapped again)
        except jinja2.UndefinedError as e:
            raise TemplateError(f"{owner}while rendering: {e.message}; variables present: "
                                f"{', '.join(sorted(variables))}", key=self._where) from None
        except jinja2.TemplateError as e:
            raise TemplateError(f"{owner}while rendering: {e}", key=self._where) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as e:
            # a filter or operator given the wrong kind of value ({{ input | round }} on text)
            raise TemplateError(f"{owner}while rendering: {type(e).__name__}: {e}",
                                key=self._where) from None
        finally:
            limits.stop(token)

    def _too_long(self, limit: int, size: int, at_least: bool = False) -> TemplateError:
        got = f"{'at least ' if at_least else ''}{size:,}"
        return TemplateError(
            f"{self._owner}the rendered prompt has {got} characters, more than the "
            f"{limit:,} allowed; shorten what goes into it (e.g. map-reduce a long input) or "
            f"raise orchnb.patterns.Prompt.max_chars", key=self._where)

    def __repr__(self) -> str:
        return f"Prompt({self.source!r})"


def _simple_parts(ast: nodes.Template) -> list[tuple[str, str | None]] | None:
    """Templates made only of text, ``{{ name }}`` and ``{{ name.attr }}`` render without
    Jinja2's runtime (it dominates the cost of a fast step); anything else returns None."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: list[tuple[str, str | None]] = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append((node.data, None))
        elif isinstance(node, nodes.Name):
            parts.append((node.name, ""))
        elif (isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name)
              and not node.attr.startswith("_")):
            parts.append((node.node.name, node.attr))
        else:
            return None
    return parts


def _render_parts(parts: list[tuple[str, str | None]], variables: dict[str, Any]) -> str:
    if len(parts) == 1 and parts[0][1] == "":  # "{{ input }}" alone: its text as it is
        value = variables[parts[0][0]]
        if value.__class__ is str:
            return value
    out = []
    for name, attr in parts:
        if attr is None:
            out.append(name)
            continue
        value = variables[name]
        if attr:
            if isinstance(value, dict):
                value = value[attr]
            else:
                obj, value = value, getattr(value, attr)
                if not _safe_attribute(obj, attr):
                    raise AttributeError(attr)  # Jinja2 then raises the sandbox's SecurityError
        if value is None:  # Jinja2 renders None as "None"; keep identical output
            value = "None"
        out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


_SAFE: dict[tuple[type, str], bool] = {}


def _safe_attribute(obj: Any, attr: str) -> bool:
    """The sandbox's verdict on ``obj.attr``, cached: it depends only on the type and name."""
    key = (obj.__class__, attr)
    safe = _SAFE.get(key)
    if safe is None:
        safe = _ENV.is_safe_attribute(obj, attr, None)
        if len(_SAFE) < 4096:
            _SAFE[key] = safe
    return safe


def _unsafe_name(name: str, item: bool = False) -> bool:
    # ``steps["_prep"]`` names a dict key (a step may be called "_prep"); only dunders and
    # internal names are refused there. ``x._y`` and ``x | attr("_y")`` read attributes.
    return (name.startswith("__") if item else name.startswith("_")) or name in _INTERNAL


def _unsafe_access(ast: nodes.Template) -> tuple[str, int] | None:
    """The first private / internal attribute the template reads, with its line."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr) and _unsafe_name(node.attr):
            return node.attr, node.lineno
        if (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
                and isinstance(node.arg.value, str) and _unsafe_name(node.arg.value, True)):
            return node.arg.value, node.lineno
        if (isinstance(node, nodes.Filter) and node.name == "attr" and node.args
                and isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str)
                and _unsafe_name(node.args[0].value)):
            return node.args[0].value, node.lineno
    return None


def _line_of(source: str, word: str) -> int | None:
    for i, text in enumerate(source.splitlines(), 1):
        if word in text:
            return i
    return None


def _step_refs(ast: nodes.Template) -> set[str]:
    refs = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "steps":
            if isinstance(node, nodes.Getattr):
                refs.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                refs.add(node.arg.value)
    return refs


def _rebuild(source: str, where: str, allowed: frozenset[str], owner: str,
             max_chars: int | None) -> Prompt:
    return Prompt(source, where=where, allowed=allowed, owner=owner, max_chars=max_chars)
