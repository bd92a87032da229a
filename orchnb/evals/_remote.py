"""The evals' hook onto ``executor="ray"``: their rows run on Ray workers, traced in their run.

Kept apart from the evals on purpose: each wires in with one branch in its run body
(``rows_on_ray`` in place of ``ctx.gather``), and a row's work is a small picklable class:
a router's classification (or its whole routed pipeline), or any pipeline's whole run.
"""

from __future__ import annotations

from typing import Any

from ..engine import RunContext
from ..exceptions import BudgetExceeded, RunCancelled
from ..patterns import RayExecutor, as_executor, map_on_ray

__all__ = ["PipelineRow", "RayExecutor", "RouterRow", "as_executor", "rows_on_ray"]


class RouterRow:
    """One row of a router eval on a worker: the classifier only, or the whole routed pipeline."""

    __slots__ = ("full", "router")

    def __init__(self, router: Any, full: bool):
        self.router, self.full = router, full

    def __getstate__(self) -> tuple[Any, bool]:
        return self.router, self.full

    def __setstate__(self, state: tuple[Any, bool]) -> None:
        self.router, self.full = state

    async def __call__(self, ctx: RunContext, text: str, vars: dict[str, Any]) -> Any:
        row_vars = {"run_input": text}  # as in the kernel: the row's item comes from its scope
        if self.full:
            return await self.router.invoke(ctx, text, row_vars)
        await self.router.classify(ctx, text, row_vars)
        return None


class PipelineRow:
    """One row of an any-pipeline eval on a worker: the pipeline's whole run of the row."""

    __slots__ = ("pipe",)

    def __init__(self, pipe: Any):
        self.pipe = pipe

    def __getstate__(self) -> Any:
        return self.pipe

    def __setstate__(self, state: Any) -> None:
        self.pipe = state

    async def __call__(self, ctx: RunContext, text: str, vars: dict[str, Any]) -> Any:
        return await self.pipe.invoke(ctx, text, {"run_input": text})


async def rows_on_ray(ctx: RunContext, row: RouterRow | PipelineRow, pipe: Any,
                      texts: list[str], *, executor: RayExecutor, concurrency: int,
                      label: str) -> list[Any]:
    """Every row on Ray; the outputs in row order (None for a failed row, whose error is in
    its spans, as in the kernel). Budget and cancellation errors stop the eval."""
    results = await map_on_ray(ctx, row, texts, {}, executor=executor,
                               concurrency=concurrency, label=label, models=pipe.models(),
                               owner=f"evaluate '{pipe.name}'")
    for r in results:
        if isinstance(r, (BudgetExceeded, RunCancelled)):
            raise r
    return [None if isinstance(r, BaseException) else r for r in results]
