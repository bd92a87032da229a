"""What every eval does with its rows: read them, say what they will cost, refuse above a cap,
and run them all in one traced engine run.

All rows run in one run (``eval:NAME`` in the traces) through ``ctx.gather`` with bounded
concurrency, or on Ray workers with ``executor="ray"``: each row is a span tagged with its row,
so the eval is traced, budgeted, cached and cancellable like any run. The row's work is the same
small object in the kernel and on a worker (``RouterRow``, ``PipelineRow``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..engine import Run, RunContext
from ..exceptions import BudgetExceeded, RunCancelled, SpecError
from ..trace import plural
from ._costs import is_router
from ._data import load_data
from ._remote import PipelineRow, RouterRow, rows_on_ray

if TYPE_CHECKING:
    import pandas as pd

    from ._options import EvalOptions

log = logging.getLogger("orchnb.evals")


def load_rows(data: Any, opts: EvalOptions, column: str | None) -> pd.DataFrame:
    """The eval's rows: ``data`` read as a table with ``opts.text`` and ``column`` (the labels
    or expected answers), sampled (``opts.sample`` rows, seeded) when asked."""
    df = load_data(data, text=opts.text, label=column)
    if opts.sample is not None and opts.sample < len(df):
        df = df.sample(n=opts.sample, random_state=opts.seed)
    return df


def check_router(router: Any, what: str = "evaluate") -> None:
    if not is_router(router):
        kind = type(router).__name__
        raise SpecError(f"{what}: {kind} {getattr(router, 'name', router)!r} is not a router; "
                        f"evaluate needs an orchnb.Router (a classifier and routes)")


def routes_of(router: Any, labels: Sequence[str]) -> list[str]:
    """The route each true label should take (labels that are no route: the default)."""
    fallback = router.default or next(iter(router.routes))
    return [x if x in router.routes else fallback for x in map(str, labels)]


def announce(name: str, estimate: Any, show: bool) -> None:
    log.info("eval of %s: %s", name, estimate)
    if show:
        print(f"{name}: {estimate}")


def refuse_over(name: str, usd: float, max_usd: float | None) -> None:
    if max_usd is not None and usd > max_usd:  # NaN (unknown price) compares False: not refused
        raise BudgetExceeded(
            f"evaluate '{name}': the estimated cost ${usd:,.4f} is over max_usd=${max_usd:,.4f}; "
            f"nothing was run. Raise max_usd, evaluate a sample (sample=200) or use a cheaper "
            f"classifier", limit="usd")


Warm = Callable[[RunContext, list[str]], Awaitable[Any]]


def rows_run(owner: Any, row: RouterRow | PipelineRow, texts: list[str], opts: EvalOptions,
             *, name: str, meta: dict[str, Any], warm: Warm | None = None,
             cool: Callable[[], Any] | None = None) -> Run:
    """One run of ``owner`` (a pipeline) whose body runs ``row`` on every text. ``warm`` runs
    first (an embedding classifier embeds its examples and every query in batches), ``cool``
    last, whatever happens. A row that fails leaves its error in its spans; budget and cancel
    errors stop the run. The run's output is the rows' outputs, in order."""
    outputs: list[Any] = [None] * len(texts)

    async def one(ctx: RunContext, i: int) -> None:
        try:
            outputs[i] = await row(ctx, texts[i], {})
        except (BudgetExceeded, RunCancelled):
            raise
        except Exception:
            pass  # the row's error is in its spans; the report lists it

    async def body(ctx: RunContext, _: Any) -> list[Any]:
        ctx.current_scope().note(eval=meta)
        if opts.executor is not None:  # executor="ray": the rows on Ray workers (see _remote)
            return await rows_on_ray(ctx, row, owner, texts, executor=opts.executor,
                                     concurrency=opts.concurrency, label=f"eval {name}")
        try:
            if warm is not None:
                await warm(ctx, texts)
            await ctx.gather([lambda i=i: one(ctx, i) for i in range(len(texts))],
                             concurrency=opts.concurrency, progress=f"eval {name}",
                             batch=opts.batch is True)
        finally:
            if cool is not None:
                cool()
        return outputs

    owner.check_models()  # every model of the pipeline callable: before paying for anything
    return owner.new_run(plural(len(texts), "row"), body=body, name=f"eval:{name}",
                         pattern="eval", cache=opts.cache, budget=opts.capped_budget(),
                         progress=opts.progress, cache_salt=opts.cache_salt)


def run_each(named: Mapping[str, Any], opts: EvalOptions,
             run: Callable[[str, Any, EvalOptions], Any],
             paid: Callable[[Any], float]) -> dict[str, Any]:
    """``run(name, candidate, opts)`` for each candidate in turn; a ``max_usd`` is shared, each
    candidate getting what the earlier ones left (an unknown amount counts as nothing spent)."""
    out: dict[str, Any] = {}
    spent = 0.0
    for name, candidate in named.items():
        left = None if opts.max_usd is None else max(opts.max_usd - spent, 0.0)
        out[name] = run(name, candidate, opts.but(max_usd=left))
        usd = paid(out[name])
        spent += 0.0 if math.isnan(usd) else usd
    return out
