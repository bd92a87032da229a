"""Budgets that hold under concurrency: reserve a call's worst case first, settle to the actual.

Before a call the engine reserves what it may cost against ``max_calls`` / ``max_tokens`` /
``max_usd``. A call whose reservation does not fit waits while other reservations are open (they
usually settle lower); with none open, it either stops the run (its worst case is known and over
the cap) or, when its size is only an estimate, goes ahead as the one call that may overshoot.
So spend never exceeds a cap by more than one call, at any concurrency, and never at all when
every step sets ``max_tokens``.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from ..exceptions import BudgetExceeded
from ..trace import plural
from ._config import Budget


@dataclass(slots=True)
class Charge:
    """What one call costs (or may cost): model calls, tokens and dollars."""

    calls: int = 0
    tokens: int = 0
    usd: float = 0.0
    exact: bool = True
    """For a reservation: whether it is a true upper bound (output capped by ``max_tokens``).
    For what was spent: False once a call of unknown price was booked."""
    settled: bool = False
    """For a reservation: given back already (settling twice is a no-op)."""


_FREE = Charge()


class Ledger:
    """Spent and reserved amounts of one run, against its :class:`Budget`.

    >>> ledger = Ledger(Budget(max_calls=2))
    >>> ledger.spent.calls
    0
    """

    __slots__ = ("_changed", "budget", "capped", "open", "reserved", "spent")

    def __init__(self, budget: Budget):
        self.budget = budget
        self.capped = (budget.max_calls is not None or budget.max_tokens is not None
                       or budget.max_usd is not None)
        """Whether any cap is set (a budget is immutable: read on every call, worked out once)."""
        self.spent = Charge()
        self.reserved = Charge()
        self.open = 0
        self._changed: asyncio.Event | None = None

    def _over(self, extra: Charge, with_reserved: bool) -> str | None:
        """The first cap that ``spent (+ reserved) + extra`` goes over, or None."""
        b, s, r = self.budget, self.spent, self.reserved
        k = 1 if with_reserved else 0
        if b.max_calls is not None and s.calls + k * r.calls + extra.calls > b.max_calls:
            return "calls"
        if b.max_tokens is not None and s.tokens + k * r.tokens + extra.tokens > b.max_tokens:
            return "tokens"
        if b.max_usd is not None and s.usd + k * r.usd + extra.usd > b.max_usd:
            return "usd"
        return None

    async def reserve(self, step: str, need: Charge) -> Charge:
        """Hold ``need`` for a call of ``step``; waits or raises :class:`BudgetExceeded`."""
        if not self.capped or not (need.calls or need.tokens or need.usd):
            # A free op (a tool, a memory read, a local embedder) holds nothing, so nothing
            # ever waits on it: a tool whose work makes a budgeted call cannot wait on itself.
            return _FREE
        while True:
            limit = self._over(need, with_reserved=True)
            if limit is None:
                break
            if self.open:
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
                continue
            # Nothing else in flight. A known worst case over the cap cannot be paid; an
            # estimate may go ahead while the cap is not reached yet (the one overshooting call).
            if need.exact or self._reached() is not None:
                raise self.error(step, limit, need)
            break
        r = self.reserved
        r.calls += need.calls
        r.tokens += need.tokens
        r.usd += need.usd
        self.open += 1
        return need

    def hold(self, need: Charge) -> str | None:
        """Reserve ``need`` now, never waiting (a provider batch is priced whole before it is
        submitted): the cap it would go over (then nothing is held), or None once held."""
        if not self.capped:
            return None
        limit = self._over(need, with_reserved=True)
        if limit is None:
            r = self.reserved
            r.calls += need.calls
            r.tokens += need.tokens
            r.usd += need.usd
            self.open += 1
        return limit

    def _reached(self) -> str | None:
        b, s = self.budget, self.spent
        if b.max_calls is not None and s.calls >= b.max_calls:
            return "calls"
        if b.max_tokens is not None and s.tokens >= b.max_tokens:
            return "tokens"
        if b.max_usd is not None and s.usd >= b.max_usd:
            return "usd"
        return None

    def book(self, actual: Charge) -> None:
        """Add what a call actually cost to what was spent."""
        s = self.spent
        s.calls += actual.calls
        s.tokens += actual.tokens
        if math.isnan(actual.usd):  # unknown: counted apart, never as $0
            s.exact = False
        else:
            s.usd += actual.usd

    def settle(self, held: Charge, actual: Charge | None) -> None:
        """Release ``held`` and book ``actual`` (None: the call was not made or not paid)."""
        if actual is not None:
            self.book(actual)
        if held is _FREE or held.settled:
            return
        held.settled = True
        r = self.reserved
        r.calls -= held.calls
        r.tokens -= held.tokens
        r.usd -= held.usd
        self.open -= 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def check_after(self, step: str) -> None:
        """After a response: a run that went over a cap stops here (the answer is recorded)."""
        if self.capped and (limit := self._over(_FREE, with_reserved=False)) is not None:
            raise self.error(step, limit, None)

    def error(self, step: str, limit: str, need: Charge | None) -> BudgetExceeded:
        b, s = self.budget, self.spent
        if s.exact:
            money = f"${s.usd:.6f}"
        elif s.usd:  # some calls have no known price: their cost is not $0, it is unknown
            money = f"${s.usd:.6f} on priced calls plus unpriced ones"
        else:
            money = "an unknown amount (no call is priced)"
        spent = (f"{plural(s.calls, 'model call')}, {plural(s.tokens, 'token')}, "
                 f"{money} spent so far")
        if limit == "calls":
            what = f"the call budget of {plural(b.max_calls, 'model call')}"
            ask = "raise Budget(max_calls=...) or simplify the pipeline"
        elif limit == "tokens":
            what = f"the token budget of {b.max_tokens:,} tokens"
            ask = "raise Budget(max_tokens=...) or set max_tokens on the steps"
        else:
            what = f"the cost budget of ${b.max_usd:.4f}"
            ask = "raise Budget(max_usd=...)"
        if need is not None:
            size = (f"{need.tokens:,} tokens" if limit == "tokens" else
                    f"${need.usd:.6f}" if limit == "usd" else "1 call")
            head = (f"step '{step}': the next call (up to {size}) would exceed {what}"
                    if need.exact else f"step '{step}': {what} is used up")
        else:
            head = f"step '{step}': {what} was exceeded by the last call"
        return BudgetExceeded(f"{head} ({spent}); {ask}", limit=limit)
