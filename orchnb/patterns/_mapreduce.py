"""MapReduce: split the input, map every piece in parallel, reduce the outputs to one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from ..engine import RunContext, as_text
from ..exceptions import BudgetExceeded, MaxIterationsExceeded, RunCancelled, RunError
from ..models import estimate_tokens
from ._base import Node, Pipeline, Vars, as_node
from ._chunking import split_text
from ._mapreduce_parts import check_knobs, group_outputs, joined, name_of, reducer_node
from ._ray_executor import as_executor, map_on_ray
from ._to_yaml import fn_name, node_spec, without_defaults

OnError = Literal["fail", "skip", "retry"]
_FATAL = (BudgetExceeded, RunCancelled, MaxIterationsExceeded)  # never retried or skipped


class MapReduce(Pipeline):
    """``input → split → map (each item, in parallel) → reduce → output``.

    A list is mapped item by item; a text is split into chunks of at most ``chunk_tokens``
    (estimated) with ``overlap_tokens`` of overlap, or by your ``chunker(text) -> list``. At most
    ``concurrency`` items run at once. ``reduce`` is an LLM step (``{{ outputs }}`` is the list
    of mapped outputs), a pattern, or a Python function ``fn(outputs)``; without one the output
    is the list. With ``reduce_tokens``, outputs too long for one reduce are reduced in groups,
    then the reductions reduced, until they fit.

    A failed item never loses the others' work: all items finish first; then ``on_error="fail"``
    raises :class:`~orchnb.RunError` naming the failed items, ``"skip"`` drops them (listed in
    the pattern span's ``meta``), and ``"retry"`` re-runs each up to ``retries`` times before
    failing. Budget, cancellation and iteration-cap errors always stop the run.

    ``executor="ray"`` (or a :class:`RayExecutor`) maps the items on a Ray cluster, in
    batches, with the same engine in every worker; spans stream back into this run's trace
    (``worker`` column). Stepping such a run is refused: it stays in the kernel.

    >>> from orchnb import Step
    >>> shout = MapReduce("shout", map=Step("up", "sim:echo", "{{ input | upper }}"),
    ...                   reduce=" / ".join)
    >>> shout(["a", "b", "c"]).output
    'A / B / C'
    """

    pattern = "mapreduce"

    model_attrs: ClassVar[tuple[str, ...]] = ("map", "reduce")
    """Attributes holding this pattern's models or model-holding parts (preflight)."""
    fork_knobs: ClassVar[Mapping[str, int]] = {
        "concurrency": 1, "chunk_tokens": 1, "overlap_tokens": 0, "reduce_tokens": 1,
        "retries": 0}
    """Whole-number knobs ``run.fork`` may edit, with their minimum."""
    internal_steps: ClassVar[frozenset[str]] = frozenset({"split", "reduce groups"})
    """Names of the bookkeeping spans this pattern writes (not nodes)."""

    def __init__(self, name: str, map: Any, reduce: Any = None, *, concurrency: int = 8,
                 chunk_tokens: int = 3000, overlap_tokens: int = 200,
                 reduce_tokens: int | None = None, on_error: OnError = "fail", retries: int = 2,
                 chunker: Callable[[str], Sequence[Any]] | None = None,
                 executor: Any = None, batch: bool = False, **options: Any):
        super().__init__(name, **options)
        self.map: Node = as_node(map, name_of(map, "map"))
        self.reduce: Node | None = None if reduce is None else reducer_node(reduce)
        self.concurrency, self.on_error, self.retries = concurrency, on_error, retries
        self.chunk_tokens, self.overlap_tokens = chunk_tokens, overlap_tokens
        self.reduce_tokens, self.chunker = reduce_tokens, chunker
        self.executor = as_executor(executor, f"mapreduce '{name}'")
        self.batch = batch
        """Map through the providers' batch APIs (batch mode)."""
        """Where the map runs: None (this kernel) or a :class:`RayExecutor`."""
        """How many items the latest run mapped (shown on the graph's split → map edge)."""
        check_knobs(self)

    # -- the pattern ------------------------------------------------------------------------
    async def _run(self, ctx: RunContext, input: Any, vars: Vars) -> Any:
        items = self._split(ctx, input)
        outputs, failed = await self._map_all(ctx, items, vars)
        meta = {"items": len(items), "mapped": len(outputs), "failed": failed}
        ctx.current_scope().note(**meta)
        if self.reduce is None:
            return outputs
        level = 0
        while (self.reduce_tokens and len(outputs) > 1
               and estimate_tokens(joined(outputs)) > self.reduce_tokens):
            level += 1
            outputs = await self._reduce_groups(ctx, outputs, vars, level)
        return await self._reduce(ctx, outputs, vars)

    def _split(self, ctx: RunContext, input: Any) -> list[Any]:
        text = as_text(input)  # a whole book would bloat the trace: keep its head
        head = text if len(text) <= 2000 else f"{text[:2000]}… [{len(text)} chars]"
        with ctx.span("step", "split", input=head) as span:
            items = self.items(input)
            span.set_output(f"{len(items)} items")
            span.note(items=len(items), chunk_tokens=self.chunk_tokens,
                      overlap_tokens=self.overlap_tokens)
            return items

    @property
    def runs_remotely(self) -> bool:
        """Whether the map runs off this kernel (then the run cannot be stepped)."""
        return self.executor is not None

    async def _map_all(self, ctx: RunContext, items: list[Any], vars: Vars
                       ) -> tuple[list[Any], dict[int, str]]:
        attempts = 1 + (self.retries if self.on_error == "retry" else 0)
        if self.executor is not None:
            results = await map_on_ray(
                ctx, _MapItem(self.map, attempts), items, vars, executor=self.executor,
                concurrency=self.concurrency, label=f"{self.name}: map", models=self.models(),
                owner=f"mapreduce '{self.name}'")
        else:
            one = _MapItem(self.map, attempts)
            results = await ctx.gather(
                [lambda i=i, x=x: one(ctx, x, {**vars, "item": i}) for i, x in enumerate(items)],
                concurrency=self.concurrency, return_exceptions=True,
                progress=f"{self.name}: map", batch=self.batch)
        errors = {i: r for i, r in enumerate(results) if isinstance(r, BaseException)}
        for e in errors.values():
            if not isinstance(e, Exception) or isinstance(e, _FATAL):
                raise e
        if errors and self.on_error != "skip":
            first = next(iter(errors.values()))
            raise RunError(f"mapreduce '{self.name}': {len(errors)} of {len(items)} items "
                           f"failed (items {', '.join(map(str, errors))}); first error: {first}"
                           f". Use on_error='skip' to drop failed items or 'retry' to re-run "
                           f"them") from first
        failed = {i: f"{type(e).__name__}: {e}" for i, e in errors.items()}
        return [r for i, r in enumerate(results) if i not in errors], failed

    async def _reduce_groups(self, ctx: RunContext, outputs: list[Any], vars: Vars,
                             level: int) -> list[Any]:
        groups = group_outputs(outputs, self.reduce_tokens or 0)
        with ctx.span("step", "reduce groups", iteration=level) as span:
            span.set_input(f"{len(outputs)} outputs in {len(groups)} groups")
            span.note(level=level, groups=[len(g) for g in groups])
            reduced = await ctx.gather([lambda g=g: self._reduce(ctx, g, vars) for g in groups],
                                       concurrency=self.concurrency, batch=self.batch)
            span.set_output(f"{len(reduced)} partial reductions")
            return reduced

    async def _reduce(self, ctx: RunContext, outputs: list[Any], vars: Vars) -> Any:
        assert self.reduce is not None
        return await self.reduce.invoke(ctx, outputs, {**vars, "outputs": outputs})

    # -- pieces ---------------------------------------------------------------------------------
    def items(self, input: Any) -> list[Any]:
        """What the map step runs over: the list itself, or the text's chunks."""
        if isinstance(input, str):
            if self.chunker is not None:
                return list(self.chunker(input))
            return split_text(input, self.chunk_tokens, self.overlap_tokens)
        if isinstance(input, Iterable) and not isinstance(input, (Mapping, bytes)):
            return list(input)
        raise RunError(f"mapreduce '{self.name}': the input must be a list or a text to split, "
                       f"got {type(input).__name__}")

    def children(self) -> list[Node]:
        return [self.map] + ([self.reduce] if self.reduce is not None else [])

    def edges(self) -> list[tuple[str, str, str]]:
        n = self.last_item_count
        out = [("__in__", "split", ""), ("split", self.map.name, "items" if n is None else
                                          f"{n} items")]
        end = self.map.name
        if self.reduce is not None:
            out.append((self.map.name, self.reduce.name, "outputs"))
            end = self.reduce.name
        return [*out, (end, "__out__", "")]

    @property
    def last_item_count(self) -> int | None:
        """How many items this pipeline's last run split its input into (read from that run's
        trace: the pipeline object keeps no state of a run). None before a run."""
        run = self.runs[-1] if self.runs else None
        for span in reversed(run.trace.spans if run is not None else ()):
            if span.step == "split" and span.kind == "step" and span.meta:
                return span.meta.get("items")
        return None

    def describe(self) -> dict[str, Any]:
        """The graph, with a ``split`` pseudo-node and the map's ``concurrency``."""
        d = super().describe()
        split = {"id": "split", "kind": "split", "chunk_tokens": self.chunk_tokens,
                 "overlap_tokens": self.overlap_tokens, "items": self.last_item_count,
                 "chunker": getattr(self.chunker, "__name__", None)}
        d["children"] = [split, *d["children"]]
        return {**d, "concurrency": self.concurrency, "on_error": self.on_error}

    # -- what tooling asks the pattern (preview, YAML) ------------------------------------
    def walk_preview(self, w: Any, input: Any, vars: Vars, at: Any) -> Any:
        """Preview: one map call per item (the chunker runs: it decides how many), the reduce."""
        here = w.within(at, self.name)
        items: list[Any] | None = None
        if not w.is_pending(input):
            try:
                items = self.items(input)
            except Exception as e:  # shown in the preview; the run itself would raise it
                w.notes.append(f"{here.path}: cannot split the input yet: {e}")
        if items is None:
            w.walk(self.map, w.pending("an item"), {**vars, "item": 0},
                   w.under(here, "each item (how many: known at run time)"))
            outputs: list[Any] = [w.pending(f"outputs of {self.map.name}")]
        else:
            w.notes.append(f"{here.path}: the input splits into {len(items)} item"
                           f"{'s' if len(items) != 1 else ''}")
            for i, item in enumerate(items):
                w.walk(self.map, item, {**vars, "item": i},
                       w.under(here, f"item {i + 1} of {len(items)}"))
            outputs = [w.pending(f"output of {self.map.name} for item {i + 1}")
                       for i in range(len(items))]
        if self.reduce_tokens:
            w.notes.append(f"{here.path}: long outputs are reduced in groups first "
                           f"(reduce_tokens={self.reduce_tokens}), which may add reduce calls")
        if self.reduce is None:
            return outputs
        return w.walk(self.reduce, outputs, {**vars, "outputs": outputs}, here)

    def to_spec(self) -> dict[str, Any]:
        """The YAML keys of this map-reduce (``pipe.to_yaml()``)."""
        out: dict[str, Any] = {"map": node_spec(self.map)}
        if self.reduce is not None:
            out["reduce"] = node_spec(self.reduce)
        out.update(without_defaults(
            {"concurrency": self.concurrency, "chunk_tokens": self.chunk_tokens,
             "overlap_tokens": self.overlap_tokens, "reduce_tokens": self.reduce_tokens,
             "on_error": self.on_error, "retries": self.retries, "batch": self.batch},
            concurrency=8, chunk_tokens=3000, overlap_tokens=200, reduce_tokens=None,
            on_error="fail", retries=2, batch=False))
        if self.chunker is not None:
            out["chunker"] = fn_name(self.chunker, f"mapreduce '{self.name}': chunker")
        return out


class _MapItem:
    """One item through the map step, re-run up to ``attempts`` times (picklable for Ray)."""

    __slots__ = ("attempts", "node")

    def __init__(self, node: Node, attempts: int):
        self.node, self.attempts = node, attempts

    def __getstate__(self) -> tuple[Node, int]:
        return self.node, self.attempts

    def __setstate__(self, state: tuple[Node, int]) -> None:
        self.node, self.attempts = state

    async def __call__(self, ctx: RunContext, item: Any, vars: Vars) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return await self.node.invoke(ctx, item, vars)
            except _FATAL:
                raise
            except Exception:
                if attempt == self.attempts:
                    raise
        return None
