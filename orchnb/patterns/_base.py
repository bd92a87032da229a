"""The ``Pipeline`` base that every pattern extends: it runs, starts, streams and steps its
nodes through the engine, and hands tooling (preview, YAML, fork) to the pattern itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from itertools import pairwise
from typing import Any, ClassVar

from ..engine import (
    MATHJAX_OFF,
    Budget,
    ChunkStream,
    RetryPolicy,
    Run,
    RunContext,
    RunOptions,
    StreamChunk,
    defaults,
)
from ..exceptions import SpecError
from ..memory import ChatThread, Policy
from ..models import Model, preflight
from ._fork import rebuild_run
from ._preview import preview
from ._step import (  # the leaves, re-exported for the patterns
    Body,
    Edits,
    FunctionStep,
    Node,
    Step,
    Tracked,
    Vars,
    _check_memory_use,
    as_node,
    check_name,
    model_of,
)
from ._to_yaml import to_yaml

__all__ = ["Body", "FunctionStep", "Node", "Pipeline", "Step", "Vars", "_check_memory_use",
           "as_node", "check_name", "model_of"]


class Pipeline(Tracked):
    """The base of the six patterns. Call it to run, ``start`` it to step through it.

    >>> chain = Chain("hello", [Step("greet", "sim:echo", "Hello {{ input }}")])  # doctest: +SKIP
    >>> chain("world").output                                                      # doctest: +SKIP
    'Hello world'
    """

    pattern: ClassVar[str] = "pipeline"
    kind = "pattern"

    def __init__(self, name: str, *, budget: Budget | None = None, cache: bool | None = None,
                 timeout: float | None = None, retry: RetryPolicy | None = None,
                 persist: bool | None = None, stream: bool | None = None,
                 service_tier: str | None = None):
        check_name(name, type(self).__name__)
        self.name = name
        self._overrides = {"budget": budget, "cache": cache, "timeout": timeout,
                           "retry": retry, "persist": persist, "stream": stream,
                           "service_tier": service_tier}
        try:  # bad options fail here, where they are written, not at the first run
            defaults().merged(**self._overrides)
        except SpecError as e:
            raise SpecError(f"{type(self).__name__.lower()} '{name}': {e}") from None
        self.runs: list[Run] = []
        self.source: str | None = None
        """The ``%%orch`` YAML this pipeline was built from, if any."""

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to Ray workers without its past runs (they hold threads and loops).
        state = {**self.__dict__, "runs": []}
        state.pop("_resolution", None)  # ids and counts of this process
        return state

    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        """The pattern's control flow. Subclasses implement this and nothing else."""
        raise NotImplementedError

    async def invoke(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        """Run as a node inside another pattern (its own span, its own pattern name)."""
        with ctx.span("pattern", self.name, pattern=self.pattern, input=input) as span:
            out = await self._run(ctx, input, vars)
            span.set_output(out)
            return out

    def children(self) -> list[Node]:
        """The nodes this pattern holds, for graphs and validation."""
        return []

    def edges(self) -> list[tuple[str, str, str]]:
        """Control flow between children as ``(from, to, label)``; ``"__in__"``/``"__out__"``
        stand for the pattern's input and output. Patterns override this."""
        names = [c.name for c in self.children()]
        path = ["__in__", *names, "__out__"]
        return [(a, b, "") for a, b in pairwise(path)]

    def describe(self) -> dict[str, Any]:
        """The pattern as a nested graph: ``{id, kind: "pattern", pattern, children, edges}``.

        >>> Chain("c", [Step("a", "sim:echo", "x")]).describe()["edges"]  # doctest: +SKIP
        [('__in__', 'a', ''), ('a', '__out__', '')]
        """
        return {"id": self.name, "kind": "pattern", "pattern": self.pattern,
                "children": [c.describe() for c in self.children()],  # type: ignore[attr-defined]
                "edges": self.edges()}

    # -- running ----------------------------------------------------------------------------
    @property
    def options(self) -> RunOptions:
        """The run options this pipeline's runs get (session defaults + its own settings)."""
        return self._resolved()[1]

    def _resolved(self) -> tuple[Any, RunOptions, list[Model], RunOptions]:
        """``(key, options, models, defaults)``, resolved once and reused until the session defaults
        change, an attribute of a pipeline or step is assigned (:class:`Edits`), or this
        pipeline's children change (``pipe.steps.append(...)``)."""
        base = defaults()
        key = (Edits.count, id(base), *map(id, self.children()))
        hit = self.__dict__.get("_resolution")
        if hit is not None and hit[0] == key:
            return hit
        found: dict[tuple[int, str], Model] = {}
        _collect_models(self, found, set())
        # (base is kept so that its id is not reused while the key holds it)
        hit = (key, base.merged(**self._overrides), list(found.values()), base)
        self.__dict__["_resolution"] = hit  # not an edit
        return hit

    def new_run(self, input: Any, *, body: Body | None = None, name: str | None = None,
                pattern: str | None = None, hooks: Sequence[Any] = (), **options: Any) -> Run:
        """A :class:`~orchnb.Run` of this pipeline, not started yet: the one way runs are made
        (pipelines, router classification, evals and the playground use it).

        ``body(ctx, input)`` replaces the pattern's own control flow; ``options`` (``budget``,
        ``cache``, ``timeout``, ``stream``...) override the pipeline's for this run.

        >>> run = chain.new_run("hi")    # doctest: +SKIP
        >>> run.run_sync().output         # doctest: +SKIP
        """
        return self._make_run(input, self.options.merged(**options), body, name, pattern, hooks)

    def _make_run(self, input: Any, opts: RunOptions, body: Body | None = None,
                  name: str | None = None, pattern: str | None = None,
                  hooks: Sequence[Any] = ()) -> Run:
        run = Run(name or self.name, pattern or self.pattern, input, body or self._body, opts,
                  hooks, rebuild=self._rebuild)
        run.owner, run.source = self, self.source
        runs = self.runs
        runs.append(run)
        if len(runs) > 50:
            del runs[:-50]
        return run

    def _body(self, ctx: RunContext, x: Any) -> Awaitable[Any]:
        """A run's body when none is given: the pattern's own control flow (its coroutine,
        awaited by the engine: no frame of its own)."""
        return self._run(ctx, x, {"run_input": x, "history": ""})

    def _rebuild(self, parent: Run, step: str | None, edits: Mapping[str, Any], *,
                 hooks: Sequence[Any], **options: Any) -> Run:
        """This pipeline's runs' ``rebuild`` (``run.fork`` / ``run.replay``)."""
        return rebuild_run(self, parent, step, edits, hooks=hooks, **options)

    def models(self) -> list[Model]:
        """Every model this pipeline may call, nested patterns included (no duplicates).

        >>> [m.id for m in Chain("c", [Step("a", "sim:echo", "x")]).models()]  # doctest: +SKIP
        ['sim:echo']
        """
        return list(self._resolved()[2])

    def check_models(self) -> None:
        """Fail before paying: every model of the pipeline must be callable (known name, key
        set). Runs call this as they start; it makes no call."""
        preflight(self._resolved()[2])

    def _new_run(self, input: Any, options: dict[str, Any], hooks: Sequence[Any] = ()) -> Run:
        # check_models() and new_run() in one: the pipeline's resolution is looked up once.
        _, base, models, _ = self._resolved()
        preflight(models)
        for value in options.values():  # (usually none is given: no merge to look up)
            if value is not None:
                base = base.merged(**options)
                break
        return self._make_run(input, base, hooks=hooks)

    def __call__(self, input: Any, *, budget: Budget | None = None, cache: bool | None = None,
                 timeout: float | None = None, hooks: Sequence[Any] = ()) -> Run:
        """Run to the end and return the :class:`~orchnb.Run` (errors raise, with ``.run``)."""
        return self._new_run(input, {"budget": budget, "cache": cache, "timeout": timeout},
                             hooks).run_sync()

    def stream(self, input: Any, *, budget: Budget | None = None, cache: bool | None = None,
               timeout: float | None = None) -> ChunkStream:
        """Run and yield the text of every model call as it arrives (a sync iterator; fine in a
        notebook cell). Each chunk has ``.step`` and ``.text``; ``.run`` is the run.

        >>> for chunk in pipe.stream("a long document"):   # doctest: +SKIP
        ...     print(chunk.text, end="")
        """
        run = self._new_run(input, {"budget": budget, "cache": cache, "timeout": timeout,
                                    "stream": True})
        return run.iter_stream()

    def astream(self, input: Any, *, budget: Budget | None = None, cache: bool | None = None,
                timeout: float | None = None) -> AsyncIterator[StreamChunk]:
        """``stream`` for async code: ``async for chunk in pipe.astream(x): ...``."""
        run = self._new_run(input, {"budget": budget, "cache": cache, "timeout": timeout,
                                    "stream": True})
        return run.aiter_stream()

    def chat(self, message: str, *, thread: str = "default", max_tokens: int = 2000,
             policy: Policy = "trim", summarizer: str | Model | None = None,
             remember: Any = None, extractor: str | Model | None = None,
             budget: Budget | None = None, cache: bool | None = None,
             timeout: float | None = None) -> Run:
        """One turn of a conversation: the thread's earlier turns (kept in ``memory.sqlite``,
        across runs and kernels) are ``{{ history }}`` in the steps' templates, within
        ``max_tokens`` (history + message). Over it, ``policy="trim"`` leaves out the oldest
        turns and ``"summarize"`` has ``summarizer`` (a model) replace them by a summary. With
        ``remember`` (a Memory), ``extractor`` (a model) writes facts from the turn to it.

        >>> pipe.chat("My name is Ada", thread="t1")           # doctest: +SKIP
        >>> pipe.chat("What is my name?", thread="t1").output  # doctest: +SKIP
        """
        chat = ChatThread(self.name, thread, max_tokens=max_tokens, policy=policy,
                          summarizer=summarizer, remember=remember, extractor=extractor)
        self.check_models()
        preflight(chat.models())

        async def body(ctx: RunContext, x: Any) -> Any:
            return await chat.turn(ctx, x, lambda history: self._run(
                ctx, x, {"run_input": x, "history": history}))

        return self.new_run(message, body=body, budget=budget, cache=cache,
                            timeout=timeout).run_sync()

    async def arun(self, input: Any, *, budget: Budget | None = None, cache: bool | None = None,
                   timeout: float | None = None, hooks: Sequence[Any] = ()) -> Run:
        """Run to the end on the caller's event loop: ``run = await pipe.arun(x)``."""
        run = self._new_run(input, {"budget": budget, "cache": cache, "timeout": timeout}, hooks)
        await run._execute()  # Run.arun, without its coroutine
        return run._result()

    def start(self, input: Any, *, breakpoints: Sequence[str] = (), approve_tools: bool = False,
              stepping: bool = True, budget: Budget | None = None, cache: bool | None = None,
              hooks: Sequence[Any] = ()) -> Run:
        """Start a run paused at its first call boundary; drive it with ``run.step()``."""
        self._refuse_remote(stepping or bool(breakpoints) or approve_tools)
        run = self._new_run(input, {"budget": budget, "cache": cache}, hooks)
        return run.start(stepping=stepping, breakpoints=breakpoints, approve_tools=approve_tools)

    def background(self, input: Any, *, breakpoints: Sequence[str] = (),
                   approve_tools: bool = False, stepping: bool = False,
                   budget: Budget | None = None, cache: bool | None = None,
                   hooks: Sequence[Any] = ()) -> Run:
        """Start a run on the engine's loop and return at once (widgets use this);
        ``run.wait()`` blocks until it ends, ``run.done`` says whether it has."""
        self._refuse_remote(stepping or bool(breakpoints) or approve_tools)
        run = self._new_run(input, {"budget": budget, "cache": cache}, hooks)
        run.start_nowait(stepping=stepping, breakpoints=breakpoints, approve_tools=approve_tools)
        return run

    def preview(self, input: Any, *, observation_tokens: int = 50) -> Any:
        """The messages every model call of ``self(input)`` would send, with token counts and
        input cost, making no call (a :class:`~orchnb.patterns.Preview`: ``.df``, HTML, text,
        ``.context_chart()`` for agents). Calls that take earlier outputs show them as
        ``⟪output of NAME⟫`` and are marked ``depends``.

        >>> pipe.preview("a text").df[["step", "status", "input_tokens"]]   # doctest: +SKIP
        """
        return preview(self, input, observation_tokens=observation_tokens)

    def to_yaml(self, path: str | None = None) -> str:
        """This pipeline as the YAML ``from_yaml`` reads back (Python functions are named by
        their ``__name__``, to be found in the namespace given to ``from_yaml``); also written
        to ``path`` if given. Raises :class:`~orchnb.SpecError` for what YAML cannot say
        (a lambda, a step's ``parse=`` function, a retry policy).

        >>> print(Chain("c", [Step("a", "sim:echo", "{{ input }}")]).to_yaml())  # doctest: +SKIP
        """
        return to_yaml(self, path)

    def _refuse_remote(self, stepped: bool) -> None:
        """Stepping and tool approval stay in the kernel: refused, before anything runs, for a
        pipeline with a part on Ray (``executor="ray"``)."""
        if not stepped:
            return
        todo: list[Any] = [self]
        seen: set[int] = set()
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if getattr(node, "runs_remotely", False):
                raise SpecError(
                    f"'{self.name}': {node.pattern} '{node.name}' runs on Ray (executor='ray'); "
                    f"stepping, breakpoints and tool approval stay in the kernel. Run it whole "
                    f"(pipe(x)), or step it with executor='local'", key="executor")
            if isinstance(node, Pipeline):
                todo += node.children()

    @property
    def last_run(self) -> Run | None:
        """The most recent run (also after an error or an interrupt)."""
        return self.runs[-1] if self.runs else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self.children())} nodes>"

    def _repr_html_(self) -> str:
        import html

        def rows(d: dict[str, Any], depth: int) -> list[str]:
            out = []
            for c in d.get("children", []):
                what = c.get("model") or c.get("pattern") or c.get("function") or c["kind"]
                sim = " <i>(simulated)</i>" if str(what).startswith("sim:") else ""
                out.append(f"<tr><td style='padding-left:{depth * 1.5 + 0.3}em'>"
                           f"{html.escape(str(c['id']))}</td><td>{html.escape(c['kind'])}</td>"
                           f"<td>{html.escape(str(what))}{sim}</td></tr>")
                out += rows(c, depth + 1)
            return out

        return (f"<div class='{MATHJAX_OFF}'><b>{html.escape(self.name)}</b>: {self.pattern} · use "
                f"<code>{html.escape(self.name)}(input)</code> or "
                f"<code>{html.escape(self.name)}.start(input)</code><table>"
                "<tr><th>node</th><th>kind</th><th>model / pattern</th></tr>"
                + "".join(rows(self.describe(), 0)) + "</table></div>")


_LEAVES = (str, int, float)


def _collect_models(node: Any, found: dict[tuple[int, str], Model], seen: set[int]) -> None:
    # Runs before every run (preflight): one __dict__ lookup per node, then plain dict reads.
    if id(node) in seen:
        return
    seen.add(id(node))
    for backup in getattr(node, "fallback", None) or ():
        if isinstance(backup, Model):  # a step's fallback models are checked as well
            found.setdefault((id(backup.provider), backup.name), backup)
    attrs = getattr(node, "__dict__", None)
    if attrs is not None:
        # Each node class names the attributes that hold its models or model-holding parts.
        for attr in getattr(type(node), "model_attrs", ("model",)):
            value = attrs.get(attr)
            if value is None:
                continue
            if isinstance(value, Model):
                found.setdefault((id(value.provider), value.name), value)
            elif not isinstance(value, _LEAVES):
                _collect_models(value, found, seen)
    if isinstance(node, Pipeline):
        for child in node.children():
            _collect_models(child, found, seen)
