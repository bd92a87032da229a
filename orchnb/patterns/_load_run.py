"""``orchnb.load_run(run_id)``: a run read back from the trace store, ready to fork or replay.

Its pipeline is rebuilt from the ``%%orch`` YAML stored with it (the one place fork needs the
YAML loader, so the fork machinery itself stays below the patterns).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import Run, RunContext
from ..exceptions import ForkError, SpecError
from ..trace import COLUMNS, Span, get_store
from ._spec import from_yaml

if TYPE_CHECKING:
    from ._base import Pipeline


# -- stored runs ---------------------------------------------------------------------------------
def load_run(run_id: str, *, pipeline: Pipeline | None = None,
             namespace: Mapping[str, Any] | None = None) -> Run:
    """A run read back from the trace store (this kernel's or an earlier one's), ready to
    ``fork`` or ``replay``. Its pipeline is rebuilt from the ``%%orch`` YAML stored with it
    (callables named there are looked up in ``namespace``, default the caller's globals: in a
    notebook, the notebook's names), or is
    the one passed as ``pipeline=``.

    >>> run = orchnb.load_run("3f2a9c1b7d0e")                  # doctest: +SKIP
    >>> run.fork("summarize", model="openai:gpt-4o").resume()  # doctest: +SKIP
    """
    store = get_store()
    rows = store.read_rows("run_id = ?", (str(run_id),))
    spans = [_span(row) for row in rows]
    root = next((s for s in spans if s.kind == "run"), None)
    if root is None:
        raise ForkError(f"no run '{run_id}' in {store.path}: orchnb.traces().run_id lists the "
                        "stored runs (ORCHNB_HOME picks the store)")
    spec, stored_input = store.read_run(root.run_id)
    if pipeline is None:
        if not spec:
            raise ForkError(f"run {run_id} of '{root.pipeline}' was made by a pipeline built in "
                            "Python, whose definition is not stored: pass it, "
                            f"orchnb.load_run({run_id!r}, pipeline=PIPELINE)")
        if namespace is None:  # the caller's names: in a notebook, the cell's (user_ns)
            namespace = sys._getframe(1).f_globals
        pipeline = from_yaml(spec, name=root.pipeline, namespace=namespace)
    try:
        value: Any = json.loads(stored_input) if stored_input else root.input
    except ValueError:
        value = root.input
    run = Run(root.pipeline, root.pattern, value, _stored_body, pipeline.options)
    run.id = root.run_id
    run.status, run.output = root.status, root.output
    run.trace.spans = sorted(spans, key=lambda s: s.end if s.end is not None else math.inf)
    run.owner, run.source, run.forked_from = pipeline, spec, root.forked_from
    run.rebuild = pipeline._rebuild
    run._done.set()
    return run


async def _stored_body(ctx: RunContext, x: Any) -> Any:
    raise SpecError("a stored run cannot run again: fork or replay it")


_BOOLS = frozenset(("priced", "cached", "simulated", "replayed", "usage_estimated", "batch"))


def _span(row: Sequence[Any]) -> Span:
    values = dict(zip(COLUMNS, row))
    meta = values.get("meta")
    if isinstance(meta, str):
        try:
            values["meta"] = json.loads(meta)
        except ValueError:
            values["meta"] = None
    for k in _BOOLS:
        if values.get(k) is not None:
            values[k] = bool(values[k])
    return Span(**values)
