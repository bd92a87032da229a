"""A span's meta column: the text json.dumps(meta, default=str, ensure_ascii=False) gives."""

from __future__ import annotations

import datetime
import json
import math

import pytest

from orchnb.trace import Span


def _meta_text(meta):
    span = Span("r", "r.1", None, "p", "chain", "s", "step")
    span.meta = meta
    return span.to_row()[list(Span.__dataclass_fields__).index("meta")]


@pytest.mark.parametrize("meta", [
    {"defaulted": False, "reason": "unknown label 'é\"x'"},
    {"cost": math.nan, "nested": {"a": [1, 2.5, None, True]}, 3: "int key"},
    {"when": datetime.date(2026, 1, 2)},
])
def test_meta_is_the_stdlib_text(meta):
    assert _meta_text(meta) == json.dumps(meta, default=str, ensure_ascii=False)


def test_a_cyclic_meta_is_refused_as_the_stdlib_refuses_it():
    meta: dict = {}
    meta["self"] = meta
    with pytest.raises(ValueError, match="Circular"):
        _meta_text(meta)
