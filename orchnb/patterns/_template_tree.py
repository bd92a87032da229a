"""What a prompt template's syntax tree shows before it runs.

:func:`harden` routes loops, ``~`` and buffered output through the counting filters of
:mod:`._template_limits`; :func:`definition_problem` finds, from literals alone, what would be
over the limits (``'%999999999s' % 'x'``, nested ``range(100000)`` loops), computing nothing.
"""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SecurityError

from ._template_limits import (
    ESTIMATES,
    MAX_STEPS,
    as_int,
    brace_size,
    charge,
    check_binop,
    check_method,
    counted_range,
    is_int,
    start,
    stop,
)

# Output inside these goes to a buffer, not out (where the streamed cap would see it); a loop
# at the top level writes out.
_BUFFERED = (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)


def harden(node: nodes.Node, buffered: bool = False) -> None:
    """Route loops, ``~`` and buffered output through the counting filters (in place)."""
    for field, value in node.iter_fields():
        if isinstance(value, list):
            setattr(node, field, [_hardened(v, buffered or isinstance(node, _BUFFERED))
                                  if isinstance(v, nodes.Node) else v for v in value])
        elif isinstance(value, nodes.Node):
            setattr(node, field, _hardened(value, buffered or isinstance(node, _BUFFERED)))
    if isinstance(node, nodes.For):
        node.iter = _filter(node.iter, "orchnb-iter")
    if isinstance(node, nodes.Output) and buffered:
        node.nodes = [_filter(nodes.Const(n.data, lineno=n.lineno)
                              if isinstance(n, nodes.TemplateData) else n, "orchnb-out")
                      for n in node.nodes]


def _hardened(node: nodes.Node, buffered: bool) -> nodes.Node:
    harden(node, buffered)
    if isinstance(node, nodes.Concat):
        return _filter(nodes.List(node.nodes, lineno=node.lineno), "orchnb-concat")
    return node


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _NotLiteral(Exception):
    pass


def _literal(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return [_literal(n) for n in node.items]
    if isinstance(node, nodes.Neg):
        return -_literal(node.node)
    if isinstance(node, (nodes.Mul, nodes.Pow, nodes.Add)):
        left, right = _literal(node.left), _literal(node.right)
        if is_int(left) and is_int(right):
            check_binop(node.operator, left, right)
            if node.operator == "**":
                return left**right
            return left * right if node.operator == "*" else left + right
    raise _NotLiteral


def definition_problem(ast: nodes.Template, cap: int) -> tuple[str, int] | None:
    """What a template would build or run over the limits, from its literals alone (what can
    be known before any variable is seen), with the line; nothing is computed."""
    token = start(cap)
    try:
        for node in ast.find_all((nodes.BinExpr, nodes.Filter, nodes.Call, nodes.For)):
            try:
                _check_literal(node)
            except _NotLiteral:
                continue
            except SecurityError as e:
                return str(e), node.lineno
        loops = _literal_loop_steps(ast)
        if loops is not None and loops[0] > MAX_STEPS:
            return (f"nested loops would run {loops[0]:,} times, more than the "
                    f"{MAX_STEPS:,} a render may", loops[1])
        return None
    finally:
        stop(token)


def _check_literal(node: nodes.Node) -> None:
    if isinstance(node, nodes.BinExpr) and node.operator in ("*", "%", "+", "**"):
        check_binop(node.operator, _literal(node.left), _literal(node.right))
    elif isinstance(node, nodes.Filter) and node.name in ESTIMATES and node.node is not None:
        args = [_literal(a) for a in node.args]
        kwargs = {k.key: _literal(k.value) for k in node.kwargs}
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _NotLiteral
        ESTIMATES[node.name](_literal(node.node), *args, **kwargs)
    elif isinstance(node, nodes.Call) and not node.dyn_args and not node.dyn_kwargs:
        args = [_literal(a) for a in node.args]
        kwargs = {k.key: _literal(k.value) for k in node.kwargs}
        if isinstance(node.node, nodes.Name) and node.node.name == "lipsum":
            charge(as_int(kwargs.get("n", args[0] if args else 5))
                   * as_int(kwargs.get("max", args[3] if len(args) > 3 else 100)) * 12, "lipsum")
        elif isinstance(node.node, nodes.Name) and node.node.name == "range":
            counted_range(*args)
        elif (isinstance(node.node, nodes.Getattr) and node.node.attr == "format"
              and isinstance(obj := _literal(node.node.node), str)):
            charge(brace_size(obj, tuple(args), kwargs), ".format()")
        elif isinstance(node.node, nodes.Getattr):
            check_method(_literal(node.node.node), node.node.attr, tuple(args), kwargs)
    else:
        raise _NotLiteral


def _literal_loop_steps(node: nodes.Node, outer: int = 1) -> tuple[int, int] | None:
    """The most iterations of nested loops over literal ``range(...)`` calls, and the line."""
    worst: tuple[int, int] | None = None
    for child in node.iter_child_nodes():
        times = outer
        if isinstance(child, nodes.For):
            n = _range_len(child.iter)
            times = outer * n if n is not None else outer
            if worst is None or times > worst[0]:
                worst = (times, child.lineno)
        inner = _literal_loop_steps(child, times)
        if inner is not None and (worst is None or inner[0] > worst[0]):
            worst = inner
    return worst


def _range_len(node: nodes.Node) -> int | None:
    if (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)
            and node.node.name == "range" and not node.kwargs):
        try:
            return len(range(*[_literal(a) for a in node.args]))
        except (_NotLiteral, TypeError, ValueError, SecurityError):
            return None
    return None
