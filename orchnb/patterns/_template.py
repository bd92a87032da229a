"""Prompt templates: Jinja2, sandboxed, strict about undefined variables, checked up front."""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from ..exceptions import TemplateError

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                            keep_trailing_newline=True)
KNOWN_VARIABLES = frozenset({"input", "steps", "outputs", "item", "run_input", "vars", "plan",
                             "workspace", "task", "routes", "labels", "tools", "history",
                             "agents"})


class Prompt:
    """A compiled prompt template. Syntax errors and unknown variables fail at definition.

    >>> Prompt("Summarize: {{ input }}").render(input="a text")
    'Summarize: a text'
    >>> Prompt("{{ steps.summary }}").step_refs
    {'summary'}
    """

    __slots__ = ("_parts", "_template", "source", "step_refs", "variables")

    def __init__(self, source: str, *, where: str = "prompt",
                 allowed: frozenset[str] = KNOWN_VARIABLES, line: int | None = None,
                 owner: str = ""):
        if not isinstance(source, str):
            raise TemplateError(f"{owner}a prompt must be text, got {type(source).__name__}",
                                key=where, line=line)
        self.source = source
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
        self.variables = meta.find_undeclared_variables(ast)
        unknown = sorted(self.variables - allowed)
        if unknown:
            raise TemplateError(
                f"{owner}undefined template variable(s) {', '.join(unknown)}; available: "
                f"{', '.join(sorted(allowed))} (e.g. {{{{ input }}}} or {{{{ steps.NAME }}}})",
                key=where, line=_line_of(source, unknown[0]))
        self.step_refs = _step_refs(ast)
        self._template = _ENV.from_string(source)
        self._parts = _simple_parts(ast)

    def render(self, **variables: Any) -> str:
        if self._template is None:
            return self.source
        if self._parts is not None:
            try:
                return _render_parts(self._parts, variables)
            except (KeyError, TypeError, AttributeError):
                pass  # let Jinja2 produce its precise message
        try:
            return self._template.render(variables)
        except jinja2.UndefinedError as e:
            raise TemplateError(f"while rendering: {e.message}; variables present: "
                                f"{', '.join(sorted(variables))}") from None
        except jinja2.TemplateError as e:
            raise TemplateError(f"while rendering: {e}") from None

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
    out = []
    for name, attr in parts:
        if attr is None:
            out.append(name)
            continue
        value = variables[name]
        if attr:
            value = value[attr] if isinstance(value, dict) else getattr(value, attr)
        if value is None:  # Jinja2 renders None as "None"; keep identical output
            value = "None"
        out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


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
