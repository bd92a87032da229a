"""``EvalOptions``: the knobs every eval shares, checked once, where they are made.

The public entry points (``evaluate``, ``compare``, ``compare_routers``) take these as keyword
arguments and build one ``EvalOptions``; everything below them (one router's eval, one
pipeline's, the candidates, the repeats) receives that object instead of a copy of the
signature. A bad knob fails here, before any data is read or any call is made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..engine import MAX_CONCURRENCY, Budget, check_number
from ..exceptions import SpecError, UnknownModelError
from ..models import resolve_model
from ._costs import DEFAULT_OUTPUT_TOKENS
from ._remote import as_executor


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    """How an eval runs, whatever it evaluates. Every field is checked when the object is made
    (and again by :meth:`but`), with a message naming ``entry``, the knob and its range.

    >>> EvalOptions(entry="evaluate", concurrency=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchnb.exceptions.SpecError: evaluate: concurrency must be a whole number >= 1 and ...
    """

    entry: str = "evaluate"
    """The public function these came through, named in error messages."""
    text: str = "text"
    """Column of the inputs."""
    label: str | None = None
    """Column of the true routes (router evals); None when outputs are scored instead."""
    expected: str | None = None
    """Column of the expected answers (any-pipeline evals)."""
    concurrency: int = 16
    progress: bool = True
    cache: bool | None = None
    """None: the pipeline's own ``cache=``, then the session's."""
    budget: Budget | None = None
    max_usd: float | None = None
    """Refuse to start above this estimate (router evals), and cap the spend."""
    baseline: str | None = None
    """A model to price "send everything to it" against (router evals)."""
    sample: int | None = None
    seed: int = 0
    n_boot: int = 1000
    level: float = 0.95
    output_tokens: float = DEFAULT_OUTPUT_TOKENS
    full_pipeline: bool = False
    oos_label: str | None = None
    """The route that means "out of scope" (router evals): rows labelled with it are out of
    scope, rows sent to it abstained. None: no out-of-scope metrics (a default route is just a
    route)."""
    cache_salt: str | None = None
    """Keys this eval's cached answers apart (repeat k of a repeated eval: ``"repeat:k"``)."""
    executor: Any = None
    """None (in the kernel) or a RayExecutor; ``"ray"`` / ``"local"`` are turned into those."""
    batch: bool | str = False
    """Batch mode: the rows' model calls through the providers' batch APIs at the batch price
    (``compare`` also takes ``"both"``: each candidate live and in batch mode)."""

    def __post_init__(self) -> None:
        what = self.entry
        self._check_columns()
        check_number(self.concurrency, f"{what}: concurrency", minimum=1, integer=True,
                     optional=False, maximum=MAX_CONCURRENCY)
        check_number(self.sample, f"{what}: sample", minimum=1, integer=True,
                     hint="the number of rows to evaluate")
        check_number(self.seed, f"{what}: seed", integer=True, optional=False)
        check_number(self.n_boot, f"{what}: n_boot", minimum=0, integer=True, optional=False,
                     hint="bootstrap resamples for the confidence interval, e.g. 1000 (0: none)")
        check_number(self.level, f"{what}: level", above=True, optional=False)
        if not self.level < 1:
            raise SpecError(f"{what}: level must be between 0 and 1 (exclusive), e.g. 0.95, "
                            f"not {self.level!r}")
        check_number(self.output_tokens, f"{what}: output_tokens", above=True, optional=False)
        check_number(self.max_usd, f"{what}: max_usd", hint="a dollar amount such as 1.50")
        if self.budget is not None and not isinstance(self.budget, Budget):
            raise SpecError(f"{what}: budget must be an orchnb.Budget(...), not {self.budget!r}")
        for name in ("cache", "progress", "full_pipeline"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise SpecError(f"{what}: {name} must be True or False, not {value!r}")
        if self.baseline is not None:
            try:
                resolve_model(self.baseline)
            except UnknownModelError as e:
                raise UnknownModelError(f"{what}: baseline={self.baseline!r}: {e.message}"
                                        ) from None
        # Made once here (frozen: the one sanctioned write), so a bad executor fails first.
        object.__setattr__(self, "executor", as_executor(self.executor, what))
        self._check_batch()

    def _check_batch(self) -> None:
        what, batch = self.entry, self.batch
        allowed = (True, False, "both") if self.entry == "compare" else (True, False)
        if not any(batch is a or (isinstance(a, str) and batch == a) for a in allowed):
            raise SpecError(f"{what}: batch must be True or False"
                            + (" or 'both' (each candidate live and in batch mode)"
                               if self.entry == "compare" else "") + f", not {batch!r}")
        if batch and self.executor is not None:
            raise SpecError(f"{what}: batch=True sends the rows through the providers' batch "
                            f"APIs from this kernel; it cannot run on Ray as well (drop "
                            f"executor=)")

    def _check_columns(self) -> None:
        what = self.entry
        named = [("text", self.text)] + [(k, v) for k, v in (("label", self.label),
                                                             ("expected", self.expected))
                                         if v is not None]
        for name, value in named:
            if not isinstance(value, str) or not value:
                raise SpecError(f"{what}: {name}= must name a column (a string), not {value!r}")
        if self.oos_label is not None and (not isinstance(self.oos_label, str)
                                           or not self.oos_label):
            raise SpecError(f"{what}: oos_label= must name the out-of-scope route (a string), "
                            f"not {self.oos_label!r}")
        if self.text == self.label:
            raise SpecError(f"{what}: text= and label= both name column {self.text!r}; the "
                            "label needs a column of its own")

    def but(self, **changes: Any) -> EvalOptions:
        """A copy with some knobs changed (checked again)."""
        return replace(self, **changes)

    def capped_budget(self) -> Budget | None:
        """The run's budget: ``budget`` with ``max_usd`` as its dollar cap (the lower wins)."""
        if self.max_usd is None:
            return self.budget
        b = self.budget
        cap = self.max_usd if b is None or b.max_usd is None else min(b.max_usd, self.max_usd)
        return replace(b or Budget(), max_usd=cap)
