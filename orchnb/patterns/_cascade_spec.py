"""YAML for cascades::

    pattern: cascade
    weak: step | pattern            # answers first
    strong: step | pattern          # called only when the check fails
    check: confidence | fn_name | step   # self-reported confidence, a Python check, a verifier
    threshold: 0.5                  # the score that keeps the weak answer
"""

from __future__ import annotations

from typing import Any

from ._cascade import CONFIDENCE, Cascade
from ._spec import PatternSpec, SpecContext, common_options, register_builder


class CascadeSpec(PatternSpec):
    weak: Any
    strong: Any
    check: Any
    threshold: float = 0.5


def build_cascade(spec: CascadeSpec, ctx: SpecContext, key: str, name: str) -> Cascade:
    at = (lambda k: f"{key}.{k}" if key else k)  # noqa: E731
    weak = ctx.node(spec.weak, at("weak"), "weak")
    strong = ctx.node(spec.strong, at("strong"), "strong")
    if spec.check == CONFIDENCE:
        check: Any = CONFIDENCE
    elif isinstance(spec.check, str):
        check = ctx.callable(spec.check, at("check"))
    else:
        check = ctx.node(spec.check, at("check"), "verify")
    return ctx._build(lambda: Cascade(name, weak, strong, check, threshold=spec.threshold,
                                      **common_options(spec)), key)


register_builder("cascade", CascadeSpec, build_cascade, Cascade)
