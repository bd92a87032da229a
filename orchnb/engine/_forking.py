"""Fork and replay, the engine's side (``run.fork``, ``run.replay``).

A fork is a new run whose calls before the fork step are answered from the recorded run (a
:class:`~orchnb.engine.ReplaySource`) and which pauses at the fork step's first call; a replay
answers every call from the recording and reports where the run no longer does what it did.
The new run comes from the run's ``rebuild`` callable, given by whoever made the run (the
pipeline): the engine knows recordings and runs, the pipeline knows its steps and their edits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import ForkError, OrchnbError
from ._replay import Recording, ReplayReport, ReplaySource, span_seq

if TYPE_CHECKING:
    from ..trace import Span
    from ._run import Run


class Rebuild(Protocol):
    """How a run's maker builds it again: a new run (not started) on ``parent``'s input of the
    pipeline that made ``parent`` (with ``step``, of a copy with ``edits`` applied to that step,
    checked against ``parent``'s recorded steps), with ``hooks`` and run ``options``. Raises
    :class:`~orchnb.ForkError` for a step or an edit the pipeline does not have."""

    def __call__(self, parent: Run, step: str | None, edits: Mapping[str, Any], *,
                 hooks: Sequence[Any], **options: Any) -> Run: ...


def recorded(run: Run) -> list[Span]:
    """Every span of ``run`` so far, the open ones of a paused run included."""
    return [*run.trace.spans, *run._open.values()]


def _rebuild_of(run: Run, what: str) -> Rebuild:
    if run.rebuild is None:
        raise ForkError(f"run {run.id} of '{run.pipeline}' has no pipeline to {what}: "
                        "load it with orchnb.load_run(run_id, pipeline=PIPELINE)")
    return run.rebuild


def prepare_fork(parent: Run, step: str, edits: Mapping[str, Any], *, item: int | None = None,
                 iteration: int | None = None, hooks: Sequence[Any] = (),
                 pause: bool = True) -> Run:
    """The fork of ``parent`` at ``step``, checked but not started (widgets start it with
    ``start_nowait``); with ``pause`` it stops at the fork step's first call.

    >>> fork = prepare_fork(run, "summarize", {"temperature": 0})   # doctest: +SKIP
    >>> fork.start(stepping=False)                                  # doctest: +SKIP
    """
    rebuild = _rebuild_of(parent, "fork")
    spans = recorded(parent)
    recording = Recording(spans)
    point = recording.fork_point(step, item=item, iteration=iteration)
    if point is None:
        where = "".join(f" {k} {v}" for k, v in (("item", item), ("iteration", iteration))
                        if v is not None)
        reached = sorted({s.step for s in spans if s.kind != "run"})
        raise ForkError(f"run {parent.id} of '{parent.pipeline}' never reached step "
                        f"'{step}'{where}; steps it reached: {', '.join(reached) or '(none)'}",
                        key=step)
    source = ReplaySource(recording, "fork", parent_id=parent.id, until=span_seq(point),
                          step=step, item=item, iteration=iteration, pause=pause)
    o = parent.options
    run = rebuild(parent, step, edits, hooks=[source, *hooks], cache=o.cache,
                  persist=o.persist, budget=o.budget, timeout=o.timeout)
    run.options = replace(run.options, replay=source)
    run.forked_from = parent.id
    run.source = parent.source
    return run


def replay_run(parent: Run) -> ReplayReport:
    """``parent.replay()``: see :meth:`orchnb.Run.replay`."""
    rebuild = _rebuild_of(parent, "replay")
    source = ReplaySource(Recording(recorded(parent)), "replay", parent_id=parent.id)
    run = rebuild(parent, None, {}, hooks=[source], persist=False, progress=False)
    run.options = replace(run.options, replay=source)
    run.forked_from = parent.id
    with contextlib.suppress(OrchnbError):  # the differences say what went wrong
        run.run_sync()
    return source.report(run)
