"""``executor="ray"``: a map step (or an eval's rows) on a Ray cluster, in batches, traced live.

The driver (the kernel) splits the items into batches and submits one Ray task per batch. Each
task runs its items through this same engine in the worker (:func:`orchnb.engine.run_items`:
retries, timeouts, cache), with the driver's model strings, and pushes every finished item with
its spans (and, when the driver streams, each text chunk of its streaming calls) to a
collector actor; the driver drains the collector while the tasks run and publishes the spans
and chunks into its own run (:class:`orchnb.engine.Intake`), so the recorder, the
store, the progress bar and the playground follow the run as if it were local. A worker that
dies is retried by Ray; the retried task skips the items already in, and the collector accepts
each item once, so nothing is lost or counted twice. One governor actor holds the run's budget
and a token bucket per provider/model for every worker. Keys travel in Ray's runtime
environment (``env_vars``), never in a trace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from ..engine import (
    Budget,
    Intake,
    LedgerServer,
    RunContext,
    RunOptions,
    SharedLedger,
    run_items,
    worker_name,
)
from ..exceptions import OrchnbError, RunError, SpecError
from ..models import Model, get_sim_model

ENV_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
            "ANTHROPIC_AUTH_TOKEN", "ORCHNB_HOME")
"""Environment variables forwarded to workers (through Ray's runtime environment) when set."""


class RayExecutor:
    """Run map items / eval rows on Ray: ``executor="ray"`` is ``RayExecutor()``.

    Connects to ``RAY_ADDRESS`` (or ``address``) when set, else starts a local cluster of
    ``local_cpus`` CPUs. ``workers`` batches run at once (one CPU each), each with up to the
    pattern's ``concurrency`` calls in flight; ``batch_size`` items per task (default: about four
    batches per worker, at most 500 items). ``rate_limits`` caps calls per second for all
    workers together, by ``"provider:model"`` or ``"provider"``. ``max_retries``: how often Ray
    re-runs a batch whose worker died. Every orchnb on the cluster must be this version.

    >>> ray4 = RayExecutor(workers=4, rate_limits={"openai": 50})
    >>> mr = MapReduce("m", map=str.upper, executor=ray4)  # doctest: +SKIP
    """

    def __init__(self, *, workers: int = 2, batch_size: int | None = None,
                 rate_limits: dict[str, float] | None = None, max_retries: int = 3,
                 address: str | None = None, local_cpus: int = 2,
                 env: Sequence[str] = ENV_VARS):
        if not isinstance(workers, int) or workers < 1:
            raise SpecError(f"RayExecutor: workers must be 1 or more, got {workers!r}",
                            key="executor")
        if batch_size is not None and batch_size < 1:
            raise SpecError(f"RayExecutor: batch_size must be 1 or more, got {batch_size!r}",
                            key="executor")
        bad = {k: v for k, v in (rate_limits or {}).items() if not (v > 0)}
        if bad:
            raise SpecError(f"RayExecutor: rate limits must be positive calls/s, got {bad}",
                            key="executor")
        self.workers, self.batch_size, self.max_retries = workers, batch_size, max_retries
        self.rate_limits = dict(rate_limits or {})
        self.address, self.local_cpus, self.env = address, local_cpus, tuple(env)

    def batches(self, n: int) -> list[range]:
        size = self.batch_size or max(1, min(500, -(-n // (4 * self.workers))))
        return [range(a, min(a + size, n)) for a in range(0, n, size)]

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers})"


def as_executor(executor: Any, owner: str) -> RayExecutor | None:
    """``None``/``"local"`` → None (in the kernel); ``"ray"`` → :class:`RayExecutor`."""
    if executor is None or executor == "local":
        return None
    if executor == "ray":
        return RayExecutor()
    if isinstance(executor, RayExecutor):
        return executor
    raise SpecError(f"{owner}: executor must be 'local', 'ray' or a RayExecutor, got "
                    f"{executor!r}", key="executor")


def refuse_stepping(ctx: RunContext, owner: str) -> None:
    """Stepping and tool approval happen in the kernel: a stepped run cannot go to Ray."""
    gate = ctx.gate
    if gate is not None and gate.enabled:
        raise SpecError(f"{owner} runs on Ray (executor='ray'): stepping, breakpoints and tool "
                        f"approval stay in the kernel. Run it whole (pipe(x)), or step it with "
                        f"executor='local'", key="executor")


def ray_module(executor: RayExecutor) -> Any:
    """Ray, connected: to ``RAY_ADDRESS`` when set, else a quiet local cluster."""
    try:
        import ray
    except ImportError:
        raise OrchnbError("executor='ray' needs Ray: pip install 'orchnb[ray]'") from None
    if not ray.is_initialized():
        address = executor.address or os.environ.get("RAY_ADDRESS") or None
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "logging_level": logging.ERROR, "ignore_reinit_error": True}
        for attempt in (1, 2):  # a busy machine can miss Ray's startup deadline once
            try:
                if address:
                    ray.init(address=address, **quiet)
                else:
                    try:
                        ray.init(num_cpus=executor.local_cpus, **quiet)
                    except ValueError:  # a cluster started by `ray start` runs here: join it
                        ray.init(**quiet)
                break
            except Exception as e:
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(e):
                    raise OrchnbError(f"executor='ray': Ray did not start ({e}); set "
                                      f"RAY_ADDRESS to a running cluster or retry") from e
    return ray


# -- actors (created per fan-out; their classes are importable on every worker) ------------------
class _Collector:
    """Finished items from every worker, each accepted once; drained by the driver."""

    def __init__(self) -> None:
        self.out: list[tuple[Any, ...]] = []
        self.done: set[int] = set()
        self.starts: dict[int, list[str]] = {}

    def begin(self, batch: int, worker: str, items: list[int]) -> tuple[int, list[int]]:
        """A task starts a batch: its attempt number, and the items already in."""
        workers = self.starts.setdefault(batch, [])
        workers.append(worker)
        if len(workers) > 1:
            self.out.append(("retry", batch, len(workers), workers[-2], worker))
        return len(workers), [i for i in items if i in self.done]

    def push(self, records: list[tuple[int, Any, bool, Any]]) -> int:
        for r in records:
            if r[0] not in self.done:
                self.done.add(r[0])
                self.out.append(("item", *r))
        return len(self.done)

    def push_deltas(self, records: list[tuple[int, str, str, str, int | None]]) -> None:
        """Text chunks of streaming calls (sent before their item, by the same worker)."""
        self.out.extend(("delta", *r) for r in records if r[0] not in self.done)

    def drain(self) -> list[tuple[Any, ...]]:
        out, self.out = self.out, []
        return out


class _Governor:
    """One budget and one token bucket per key (``provider:model`` or provider) for all."""

    def __init__(self, budget: Budget, rates: dict[str, float], spent: Any = None):
        self.ledger = LedgerServer(budget)
        if spent is not None:  # what the run spent before this fan-out counts against the cap
            self.ledger.ledger.spent = spent
        self.rates = rates
        self.tat: dict[str, float] = {}  # theoretical arrival time of the next call, per key

    def acquire(self, key: str) -> float:
        """Take a call slot: seconds to wait before calling (GCRA; bursts up to 1 s of rate)."""
        interval = 1.0 / self.rates[key]
        now = time.monotonic()
        tat = max(self.tat.get(key, now), now)
        self.tat[key] = tat + interval
        return max(0.0, tat - max(0.0, 1.0 - interval) - now)

    def try_reserve(self, step: str, need: Any) -> tuple[str, Any]:
        return self.ledger.try_reserve(step, need)

    def settle(self, held: Any, actual: Any) -> Any:
        return self.ledger.settle(held, actual)


def _rate_key(model: Model, rates: dict[str, float]) -> str | None:
    if model.id in rates:
        return model.id
    return model.provider_name if model.provider_name in rates else None


# -- the task a worker runs -------------------------------------------------------------------
def _run_batch(batch: int, pairs: list[tuple[int, Any]], work: Any, vars: dict[str, Any],
               options: RunOptions, names: tuple[str, str], concurrency: int, sims: list[Any],
               collector: Any, governor: Any, rates: dict[str, float], live: bool) -> str:
    import ray

    for sim in sims:  # sim models defined in the driver's session
        sim.register()
    worker = worker_name()
    _, done = ray.get(collector.begin.remote(batch, worker, [i for i, _ in pairs]))
    todo = [p for p in pairs if p[0] not in set(done)]
    buffer: list[tuple[int, Any, bool, Any]] = []
    deltas: list[tuple[int, str, str, str, int | None]] = []
    last = [time.monotonic()]
    pushed: list[Any] = []

    def flush() -> None:
        # Chunks first: an item's chunks reach the driver before the item itself (one caller's
        # calls to an actor run in order).
        if deltas:
            pushed.append(collector.push_deltas.remote(deltas[:]))
            deltas.clear()
        if buffer:
            pushed.append(collector.push.remote(buffer[:]))
            buffer.clear()
        last[0] = time.monotonic()

    def due() -> bool:  # stream, but not one actor call per item or chunk
        return len(buffer) + len(deltas) >= 64 or time.monotonic() - last[0] > 0.2

    def commit(i: int, spans: list[Any], ok: bool, out: Any) -> None:
        buffer.append((i, spans, ok, out))
        if due():
            flush()

    def chunk(i: int, span_id: str, step: str, text: str, attempt: int | None) -> None:
        deltas.append((i, span_id, step, text, attempt))
        if due():
            flush()

    ledger, limiter = _governed(governor, options, rates)
    asyncio.run(run_items(todo, work, vars, options=options, pipeline=names[0],
                          pattern=names[1], concurrency=concurrency, commit=commit,
                          ledger=ledger, limiter=limiter, live=chunk if live else None))
    flush()
    ray.get(pushed)  # every item is in before the task reports done
    return worker


def _wait(ref: Any) -> Any:
    return asyncio.wrap_future(ref.future())


def _governed(governor: Any, options: RunOptions, rates: dict[str, float]) -> tuple[Any, Any]:
    """The worker's shared ledger (when the budget is capped) and rate limiter, or Nones."""
    ledger = limiter = None
    if governor is not None:
        if options.budget.max_calls is not None or options.budget.max_tokens is not None or \
                options.budget.max_usd is not None:
            ledger = SharedLedger(options.budget,
                                  lambda step, need: _wait(governor.try_reserve.remote(step, need)),
                                  lambda held, actual: governor.settle.remote(held, actual))
        if rates:
            async def limiter(op: Any) -> None:
                key = _rate_key(op.model, rates)
                if key is not None:
                    delay = await _wait(governor.acquire.remote(key))
                    if delay > 0:
                        await asyncio.sleep(delay)
    return ledger, limiter


# -- the driver ---------------------------------------------------------------------------------
async def map_on_ray(ctx: RunContext, work: Any, items: list[Any], vars: dict[str, Any], *,
                     executor: RayExecutor, concurrency: int, label: str | None,
                     models: Sequence[Model], owner: str) -> list[Any]:
    """``work(ctx, item, vars)`` for every item on Ray; results (or exceptions) in item order.

    Spans arrive in ``ctx``'s run as items finish, under the current span, tagged with their
    ``item`` and ``worker``.
    """
    refuse_stepping(ctx, owner)
    n = len(items)
    if n == 0:
        return []
    ray = await asyncio.to_thread(ray_module, executor)
    intake = Intake(ctx, ctx.current_span(), total=n, label=label)
    if label is not None:
        ctx.progress(label, 0, n)
    options: RunOptions = ctx.options
    budget = options.budget
    capped = any(v is not None for v in (budget.max_calls, budget.max_tokens, budget.max_usd))
    rates = {k: float(v) for k, v in executor.rate_limits.items()}
    collector = ray.remote(num_cpus=0)(_Collector).remote()
    governor = (ray.remote(num_cpus=0)(_Governor).remote(budget, rates, ctx.ledger.spent)
                if capped or rates else None)
    sims = [s for m in models if m.provider_name == "sim"
            if (s := get_sim_model(m.name)) is not None]
    env = {k: os.environ[k] for k in executor.env if os.environ.get(k)}
    task = ray.remote(_run_batch).options(
        num_cpus=1, max_retries=executor.max_retries, retry_exceptions=False,
        runtime_env={"env_vars": env} if env else None)
    # Once in the object store, not once per batch.
    work_ref, vars_ref, sims_ref = ray.put(work), ray.put(vars), ray.put(sims)
    run = ctx.run
    batches = executor.batches(n)
    refs: dict[Any, range] = {}
    try:
        for b, rng in enumerate(batches):
            ref = task.remote(b, [(i, items[i]) for i in rng], work_ref, vars_ref, options,
                              (run.pipeline, ctx.current_span().pattern), concurrency,
                              sims_ref, collector, governor, rates, ctx.bus.streaming)
            refs[ref] = rng
        failed = await _drain(ray, refs, collector, intake, owner, executor.max_retries)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=False)
        raise
    finally:
        for actor in (collector, governor):
            if actor is not None:
                ray.kill(actor)
    return _in_order(intake, n, failed, owner)


async def _drain(ray: Any, refs: dict[Any, range], collector: Any, intake: Intake, owner: str,
                 max_retries: int) -> dict[int, BaseException]:
    """Publish what the collector holds until every task is done; the items of failed tasks."""
    failed: dict[int, BaseException] = {}
    pending = list(refs)
    while True:
        records = await asyncio.wrap_future(collector.drain.remote().future())
        _publish(intake, records)
        if not pending:
            break
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
        for ref in ready:
            try:
                ray.get(ref)
            except Exception as e:  # retries spent: its items not in yet are failed
                err = RunError(f"{owner}: a Ray task failed after {max_retries} "
                               f"retries: {type(e).__name__}: {str(e)[:500]}")
                for i in refs[ref]:
                    failed[i] = err
        if pending:
            await asyncio.sleep(0.05)
    return failed


def _in_order(intake: Intake, n: int, failed: dict[int, BaseException], owner: str) -> list[Any]:
    """Each item's result, or its task's error, or an error saying it never came back."""
    out: list[Any] = []
    for i in range(n):
        hit = intake.results.get(i)
        if hit is None:
            out.append(failed.get(i) or RunError(f"{owner}: item {i} never came back from Ray"))
        else:
            out.append(hit[1])
    return out


def _publish(intake: Intake, records: list[tuple[Any, ...]]) -> None:
    for rec in records:
        if rec[0] == "item":
            _, i, spans, _ok, out = rec
            intake.accept(i, spans, _ok, out)
        elif rec[0] == "delta":
            intake.delta(*rec[1:])
        else:
            _, batch, attempt, lost, worker = rec
            intake.note(f"ray: batch {batch} retried",
                        f"WorkerLost: the worker running batch {batch} ({lost}) died; Ray "
                        f"re-ran the batch on {worker} (attempt {attempt}), keeping the items "
                        f"already done", batch=batch, attempt=attempt, lost=lost, worker=worker)
