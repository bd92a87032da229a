"""``Playground(pipe)``: draw a pipeline, step through runs, inspect and edit steps, approve tool
calls, compare runs. ``TraceView()``: a live table of spans. Both are anywidget widgets whose
state lives only in synced traits; their JS and CSS are the files next to this module.

Button handlers return at once: runs go on the engine's background loop (``Run.start_nowait``
and friends), the run's spans reach the widget through a run hook, and the widget refreshes at
most ``refresh_hz`` times a second, so a 1,000-item map-reduce does not flood the front end.
"""

from __future__ import annotations

import json
import pathlib
import threading
import time
import weakref
from concurrent.futures import Future
from typing import Any

import anywidget
import traitlets as t

from ..engine import Run
from ..exceptions import OrchnbError
from ..patterns import Pipeline
from ..trace import plural
from . import _edits
from ._graph_layout import layout, to_svg
from ._live import RunTracker, Throttle, history_entry
from ._static import StaticFallback
from ._traceview import NO_MATH, TraceView

__all__ = ["Playground", "TraceView"]
_HERE = pathlib.Path(__file__).parent
HISTORY = 10


class Playground(StaticFallback, anywidget.AnyWidget):
    """An interactive playground for a pipeline (any of the six patterns, nested or not).

    Step / Run / Stop / Reset drive a run one model or tool call at a time or to the end; the
    graph highlights the call waiting at its boundary and colours finished steps; clicking a
    node shows its rendered prompt, output, tool calls, tokens, cost, latency and errors, and
    lets you edit its prompt, model and parameters. With "approve tools" on, every tool call
    waits for approve / edit arguments / reject.

    >>> pg = orchnb.Playground(triage)     # doctest: +SKIP
    >>> pg                                 # doctest: +SKIP  (the widget)
    >>> pg.input_text = "I was charged twice"; pg.step(); pg.wait()   # doctest: +SKIP

    Every button has a method: :meth:`step`, :meth:`run`, :meth:`stop`, :meth:`reset`,
    :meth:`approve`, :meth:`reject`, :meth:`edit`, :meth:`write_back`, :meth:`compare`,
    :meth:`fork` ("Fork here" in a step's edit form: re-run from that step with the edits,
    replaying what came before, then compare).
    """

    _esm = _HERE / "playground.js"
    _css = _HERE / "playground.css"

    name = t.Unicode("").tag(sync=True)
    pattern = t.Unicode("").tag(sync=True)
    graph = t.Dict().tag(sync=True)
    """Laid-out nodes and edges (see ``_graph_layout.layout``)."""
    params = t.Dict().tag(sync=True)
    """Node key → editable fields ``[{name, type, value}]``."""
    input_text = t.Unicode("").tag(sync=True)
    approve_tools = t.Bool(False).tag(sync=True)
    busy = t.Bool(False).tag(sync=True)
    """A control is in flight (the run is going, not paused)."""
    live = t.Dict().tag(sync=True)
    """The current run: status, per-node state, waiting calls, totals (``RunTracker.snapshot``)."""
    selected = t.Unicode("").tag(sync=True)
    detail = t.Dict().tag(sync=True)
    """The selected node's calls, input/output and waiting calls."""
    history = t.List().tag(sync=True)
    comparison = t.Dict().tag(sync=True)
    edits = t.Dict().tag(sync=True)
    """Applied edits not yet written back: key → {field: value}."""
    yaml = t.Unicode("").tag(sync=True)
    fork_edits = t.Dict().tag(sync=True)
    """The last fork's edits (for it only): ``_edits.fork_note``."""
    message = t.Dict().tag(sync=True)
    """The last notice for the user: ``{"level": "info" | "error", "text": ...}``."""
    refresh_hz = t.Float(10.0).tag(sync=True)
    follow = t.Bool(True).tag(sync=True)
    """When a run pauses, select the node whose call is waiting (the detail pane follows)."""

    def __init__(self, pipe: Pipeline, *, input: Any = "", approve_tools: bool = False,
                 **kwargs: Any):
        if not isinstance(pipe, Pipeline):
            raise TypeError(f"Playground needs a pipeline (orchnb.Chain, Router, ...), got "
                            f"{type(pipe).__name__}")
        self._pipe = pipe
        self._work: Pipeline = pipe
        self._lock = threading.RLock()
        self._run: Run | None = None
        self._tracker: RunTracker | None = None
        self._future: Future[Run] | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._runs: dict[str, Run] = {}
        self._count = 0
        self._interrupt_installed = False
        hz = float(kwargs.pop("refresh_hz", 10.0))
        self._throttle = Throttle(self._push, 1.0 / max(1.0, hz))
        super().__init__(name=pipe.name, pattern=pipe.pattern, approve_tools=approve_tools,
                         input_text=input if isinstance(input, str) else json.dumps(input),
                         refresh_hz=hz, **kwargs)
        self._describe()
        self.yaml = pipe.source or ""
        self.on_msg(self._on_msg)

    # -- graph and parameters -----------------------------------------------------------------
    def _describe(self) -> None:
        desc = self._work.describe()
        self._desc = desc
        self._index, self._aliases = _edits.index_paths(self._work, desc)
        self.graph = layout(desc)
        self.params = {k: f for k, obj in self._index.items() if (f := _edits.editable(obj))}

    # -- controls (all return at once) --------------------------------------------------------
    def step(self) -> Future[Run] | None:
        """One call boundary: start a paused run if none is going, else let the next call
        happen. While a run is going (after Run), pause it at its next boundary."""
        with self._lock:
            run = self._run
            if self.busy and run is not None and not run.done:
                run.pause()
                return self._future
            if run is None or run.done:
                return self._start(stepping=True)
            return self._control(run.step_nowait())

    def run(self) -> Future[Run] | None:
        """Run to the end (or to the next tool call awaiting approval); resumes a paused run."""
        with self._lock:
            run = self._run
            if self.busy:
                return self._future
            if run is None or run.done:
                return self._start(stepping=False)
            return self._control(run.resume_nowait())

    def stop(self) -> None:
        """Cancel the run; its partial trace is kept."""
        run = self._run
        if run is not None and not run.done:
            run.cancel()

    def reset(self) -> None:
        """Cancel any run and clear the graph's colours (history and edits stay)."""
        self.stop()
        with self._lock:
            self._run, self._tracker = None, None
            self.live, self.detail = {}, self._empty_detail(self.selected)

    def approve(self, arguments: dict[str, Any] | None = None) -> Future[Run] | None:
        """Let the waiting tool call run, with ``arguments`` replacing the model's if given."""
        with self._lock:
            run = self._waiting_tool()
            return self._control(run.approve_nowait(arguments))

    def reject(self, reason: str = "") -> Future[Run] | None:
        """Refuse the waiting tool call; the agent gets the refusal as its observation."""
        with self._lock:
            run = self._waiting_tool()
            return self._control(run.reject_nowait(reason))

    def _waiting_tool(self) -> Run:
        run = self._run
        if run is None or run.done or self.busy or not run.pending or (
                run.pending[0].kind != "tool"):
            raise OrchnbError("no tool call is waiting for approval; turn on 'approve tools' "
                              "and Run (or Step) until the agent calls a tool")
        return run

    def wait(self, timeout: float | None = None) -> Run | None:
        """Block until the run pauses or ends (for scripts and tests; the buttons never block).
        A KeyboardInterrupt (kernel interrupt) stops the run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._idle.wait(0.1):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the playground's run is still going after {timeout}s")
        except KeyboardInterrupt:
            self.stop()
            self._idle.wait(30)
        return self._run

    @property
    def current_run(self) -> Run | None:
        """The run the playground shows (paused, going or finished)."""
        return self._run

    @property
    def runs(self) -> list[Run]:
        """The runs in the history, oldest first."""
        return list(self._runs.values())

    def _start(self, *, stepping: bool) -> Future[Run]:
        text = self.input_text
        value: Any = text
        if text.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        self._install_interrupt()
        keys = [n["key"] for n in self.graph["nodes"]]
        tracker = RunTracker(None, keys, self.graph["root"], self._throttle.poke,
                             self._aliases)
        self._work.check_models()  # fail before paying, as a cell run would
        run = self._work.new_run(value, hooks=[tracker, _HistoryHook(self)])
        tracker.run = run
        self._run, self._tracker = run, tracker
        self.live = tracker.snapshot()
        return self._control(run.start_nowait(stepping=stepping,
                                               approve_tools=self.approve_tools))

    def _control(self, fut: Future[Run]) -> Future[Run]:
        self._idle.clear()
        self.busy = True
        self.message = {}
        self._future = fut
        fut.add_done_callback(self._settled)
        return fut

    def _settled(self, fut: Future[Run]) -> None:
        # On the engine's loop thread: the run paused or ended; the user is waiting for it.
        if fut is self._future:
            with self._lock:
                self.busy = False
                self._throttle.now()
                current = (self.live or {}).get("current") or []
                if self.follow and current and current[0] != self.selected:
                    self.selected = current[0]  # stepping: the detail pane follows the step
            self._idle.set()

    # -- pushing state to the front end ---------------------------------------------------------
    def _push(self) -> None:
        with self._lock:
            tracker = self._tracker
            if tracker is None:
                return
            with self.hold_sync():
                self.live = tracker.snapshot()
                if self.selected:
                    self.detail = tracker.detail(self.selected)

    @t.observe("selected")
    def _on_select(self, change: dict[str, Any]) -> None:
        with self._lock:
            key = change["new"]
            self.detail = (self._tracker.detail(key) if self._tracker is not None
                           else self._empty_detail(key))

    def _empty_detail(self, key: str) -> dict[str, Any]:
        return {"key": key, "calls": [], "total_calls": 0, "waiting": []} if key else {}

    def _record(self, run: Run) -> None:
        # on_run_end, on the engine's loop thread.
        with self._lock:
            self._count += 1
            self._runs[run.id] = run
            for old in list(self._runs)[:-HISTORY]:
                del self._runs[old]
            entry = history_entry(run, self._count, sum(len(v) for v in self.edits.values()))
            if run.forked_from:
                entry["forked_from"] = run.forked_from
            self.history = [*self.history, entry][-HISTORY:]
        if run.forked_from in self._runs:  # a fork: side by side with its parent
            try:
                self.compare(run.forked_from, run.id)  # type: ignore[arg-type]
            except OrchnbError as e:
                self.message = {"level": "error", "text": str(e)}

    # -- fork ------------------------------------------------------------------------------------
    def fork(self, key: str, **fields: Any) -> Future[Run] | None:
        """Fork the current run at node ``key`` with ``fields`` edited (for the fork only):
        the calls before it are replayed from the run (no cost), the rest run to the end, and
        the parent and the fork show side by side (:meth:`compare`) once it ends.

        >>> pg.fork("brief/summarize", prompt="In one line: {{ input }}")  # doctest: +SKIP
        """
        from ..patterns import prepare_fork

        with self._lock:
            parent = self._run
            if parent is None or self.busy:
                raise OrchnbError("fork needs a run that has paused or finished: Step or Run "
                                  "first, then fork at one of its finished steps")
            obj = self._index.get(key)
            if obj is None:
                raise OrchnbError(f"playground '{self.name}': no node {key!r}; nodes: "
                                  f"{', '.join(sorted(self.params))}")
            if not parent.done:  # a paused parent: what it finished is what the fork replays
                parent.cancel()
                parent.wait(30)
            self._runs.setdefault(parent.id, parent)
            keys = [n["key"] for n in self.graph["nodes"]]
            tracker = RunTracker(None, keys, self.graph["root"], self._throttle.poke,
                                 self._aliases)
            run = prepare_fork(parent, str(getattr(obj, "name", key.rsplit("/", 1)[-1])),
                               fields, hooks=[tracker, _HistoryHook(self)], pause=False)
            tracker.run = run
            self._run, self._tracker = run, tracker
            self.live = tracker.snapshot()
            fut = self._control(run.start_nowait(stepping=False))
            self.fork_edits = _edits.fork_note(parent.id, key, fields, self._pipe.source,
                                               self._desc, self.edits)
            self.message = {"level": "info", "text": f"fork of run {parent.id} at "
                            f"{key.split('/', 1)[-1]}: earlier calls replayed"
                            + (f", edited {', '.join(fields)}" if fields else "")}
            return fut

    # -- edits ----------------------------------------------------------------------------------
    def edit(self, key: str, **fields: Any) -> None:
        """Change a node's fields (prompt, system, model, temperature, max_iterations,
        concurrency, chunk_tokens, ...) in the playground's working copy; the next run uses
        them. :meth:`write_back` applies them to the pipeline itself.

        >>> pg.edit("triage/classify", prompt="Route: {{ input }}", temperature=0)  # doctest: +SKIP
        """
        with self._lock:
            if self._run is not None and not self._run.done:
                raise OrchnbError("a run is going; Stop or Reset it before editing")
            if self._work is self._pipe:
                self._work = _edits.clone(self._pipe)
                self._index = _edits.index(self._work, self._work.describe())
            obj = self._index.get(key)
            if obj is None:
                raise OrchnbError(f"playground '{self.name}': no node {key!r}; nodes: "
                                  f"{', '.join(sorted(self.params))}")
            stored = {}
            for field, value in fields.items():
                stored[field] = _edits.apply_edit(obj, field, value)
            edits = {k: dict(v) for k, v in self.edits.items()}
            edits.setdefault(key, {}).update(stored)
            self.edits = edits
            self._describe()
            self.yaml = _edits.yaml_with_edits(self._pipe.source, self._desc, self.edits)
            self.message = {"level": "info", "text": f"edited {key.split('/', 1)[-1]}: "
                            f"{', '.join(stored)}; Run to try it, Write back to keep it"}

    def write_back(self) -> None:
        """Apply the edits to the pipeline itself (and its ``source`` YAML)."""
        with self._lock:
            target = _edits.index(self._pipe, self._pipe.describe())
            for key, fields in self.edits.items():
                for field, value in fields.items():
                    _edits.apply_edit(target[key], field, value)
            if self._pipe.source and self.yaml and not self.yaml.startswith("# no %%orch"):
                self._pipe.source = self.yaml
            n = sum(len(v) for v in self.edits.values())
            self._work, self.edits = self._pipe, {}
            self._describe()
            self.message = {"level": "info", "text": f"wrote {plural(n, 'edit')} back to "
                            f"'{self._pipe.name}'; paste the YAML into its %%orch cell to keep "
                            f"them after a restart"}

    def discard_edits(self) -> None:
        """Forget the edits; the playground runs the pipeline as it is again."""
        with self._lock:
            self._work, self.edits = self._pipe, {}
            self._describe()
            self.yaml = self._pipe.source or ""

    # -- history ---------------------------------------------------------------------------------
    def compare(self, a: str, b: str) -> Any:
        """Two runs from the history side by side (``orchnb.viz.compare_runs``)."""
        import pandas as pd

        from ..viz import compare_runs

        runs = [self._runs.get(a), self._runs.get(b)]
        if any(r is None for r in runs):
            raise OrchnbError(f"compare: run ids must be in the history: "
                              f"{', '.join(self._runs)}")
        df = pd.concat([r.trace.df for r in runs], ignore_index=True)  # type: ignore[union-attr]
        table = compare_runs(df, [a, b])
        rows = []
        for step, row in table.iterrows():
            cells = {f"{f}:{rid}": _jsonable(row[(f, rid)])
                     for f in ("output", "route", "cost_usd", "latency_ms", "status")
                     for rid in (a, b)}
            rows.append({"step": step, "diverges": bool(row[("diverges", "")]), **cells})
        self.comparison = {"a": a, "b": b, "rows": rows,
                           "first_divergence": table.attrs.get("first_divergence"),
                           "reason": table.attrs.get("divergence_reason")}
        return table

    # -- messages from the front end -------------------------------------------------------------
    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        action = content.get("action")
        try:
            if action in ("step", "run", "stop", "reset", "write_back", "discard_edits"):
                getattr(self, action)()
            elif action == "approve":
                self.approve(content.get("arguments"))
            elif action == "reject":
                self.reject(str(content.get("reason") or ""))
            elif action == "edit":
                self.edit(str(content["key"]), **dict(content.get("fields") or {}))
            elif action == "fork":
                self.fork(str(content["key"]), **dict(content.get("fields") or {}))
            elif action == "compare":
                a, b = content["ids"]
                self.compare(str(a), str(b))
        except (OrchnbError, ValueError, KeyError) as e:
            self.message = {"level": "error", "text": str(e)}

    # -- interrupts ---------------------------------------------------------------------------
    def _install_interrupt(self) -> None:
        """Make a kernel interrupt (■) stop this playground's run while the kernel is idle.

        ipykernel ignores SIGINT between cells and restores ``kernel.saved_sigint_handler``
        after each message; putting a handler there (chained to earlier playgrounds') lets the
        interrupt reach runs that go on in the background.
        """
        if self._interrupt_installed or threading.current_thread() is not threading.main_thread():
            return
        self._interrupt_installed = True
        try:
            from IPython import get_ipython

            kernel = getattr(get_ipython(), "kernel", None)
        except ImportError:
            return
        if kernel is None or not hasattr(kernel, "saved_sigint_handler"):
            return
        ref = weakref.ref(self)
        previous = kernel.saved_sigint_handler

        def on_interrupt(signum: int, frame: Any) -> None:
            widget = ref()
            if widget is not None:
                widget.stop()
            if getattr(previous, "orchnb", False):  # only chain to our own, never raise here
                previous(signum, frame)

        on_interrupt.orchnb = True  # type: ignore[attr-defined]
        kernel.saved_sigint_handler = on_interrupt

    # -- representations ---------------------------------------------------------------------
    def __repr__(self) -> str:
        status = self._run.status if self._run is not None else "idle"
        return (f"<Playground {self.name!r} ({self.pattern}, {len(self.params)} editable "
                f"nodes): {status}, {plural(len(self._runs), 'run')}>")


    def static_html(self) -> str:
        """A static picture of the playground: the graph (coloured by the last run) and that
        run's summary, for places where widgets do not render (nbconvert HTML, GitHub)."""
        live = self.live or {}
        states = {k: v.get("s", "") for k, v in (live.get("nodes") or {}).items()}
        run = self._run or (self.runs[-1] if self.runs else None)
        summary = run._repr_html_() if run is not None else "<i>no run yet</i>"
        return (f"<div class='orchnb-playground-static {NO_MATH}'><b>Playground: "
                f"{_esc(self.name)}</b> "
                f"({_esc(self.pattern)})<div>{to_svg(self.graph, states)}</div>{summary}</div>")


class _HistoryHook:
    """Records finished runs in the playground's history (a weak reference: no cycles)."""

    def __init__(self, pg: Playground):
        self._pg = weakref.ref(pg)

    def on_run_end(self, *, run: Run) -> None:
        pg = self._pg()
        if pg is not None:
            pg._record(run)


def _jsonable(v: Any) -> Any:
    try:
        import pandas as pd

        if v is None or pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return v.item()
    return v if isinstance(v, (int, float, str, bool)) else str(v)


def _esc(s: str) -> str:
    import html

    return html.escape(s)
