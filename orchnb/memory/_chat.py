"""Conversation memory: a pipeline's chat threads, persisted turn by turn in ``memory.sqlite``,
given to the steps' templates as ``{{ history }}`` within a token budget.

Over the budget, ``policy="trim"`` leaves out the oldest turns (they stay stored) and
``policy="summarize"`` replaces them, in the store, by a summary written by a model (one traced
call). Loads and writes are ``memory`` spans of the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..engine import RunContext, as_text
from ..exceptions import BudgetExceeded, SpecError
from ..models import Message, Model, estimate_tokens, resolve_model
from ._memory import Memory, as_memory
from ._store import connect

if TYPE_CHECKING:
    import pandas as pd

Policy = Literal["trim", "summarize"]

SUMMARY_PROMPT = (
    "Summarize this conversation so far in at most {words} words, keeping names, facts, "
    "decisions and open questions. Reply with the summary only.\n\n{turns}")
EXTRACT_PROMPT = (
    "From this exchange, list the facts about the user or their situation worth remembering "
    "later, one per line. Reply NONE if there are none.\n\nuser: {message}\nassistant: {answer}")


@dataclass(frozen=True, slots=True)
class Turn:
    """One stored turn: ``role`` is ``user``, ``assistant`` or ``summary``."""

    id: int
    role: str
    text: str
    tokens: int

    def __str__(self) -> str:
        return self.line()

    def line(self) -> str:
        """The turn as a line of ``{{ history }}``."""
        if self.role == "summary":
            return f"(summary of earlier turns) {self.text}"
        return f"{self.role}: {self.text}"


class ChatThread:
    """The turns of one chat thread of one pipeline (``pipe.chat(msg, thread=...)`` uses it).

    >>> t = ChatThread("support", "t1")   # doctest: +SKIP
    >>> [turn.role for turn in t.turns()]  # doctest: +SKIP
    ['user', 'assistant']
    """

    def __init__(self, pipeline: str, thread: str, *, max_tokens: int = 2000,
                 policy: Policy = "trim", summarizer: str | Model | None = None,
                 remember: Memory | str | None = None, extractor: str | Model | None = None):
        if not isinstance(thread, str) or not thread:
            raise SpecError(f"chat: thread must be a non-empty name, got {thread!r}",
                            key="thread")
        if policy not in ("trim", "summarize"):
            raise SpecError(f"chat: policy must be 'trim' or 'summarize', got {policy!r}",
                            key="policy")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise SpecError(f"chat: max_tokens must be a whole number ≥ 1, got {max_tokens!r}",
                            key="max_tokens")
        if policy == "summarize" and summarizer is None:
            raise SpecError("chat: policy='summarize' needs a summarizer model "
                            "(e.g. summarizer='openai:gpt-4o-mini')", key="summarizer")
        self.pipeline, self.thread = pipeline, thread
        self.max_tokens, self.policy = max_tokens, policy
        self.summarizer = None if summarizer is None else resolve_model(summarizer)
        self.remember = None if remember is None else as_memory(remember)
        if self.remember is not None and extractor is None:
            raise SpecError("chat: remember= needs an extractor model that writes the facts",
                            key="extractor")
        self.extractor = None if extractor is None else resolve_model(extractor)

    def models(self) -> list[Model]:
        """The models this thread may call (summaries, fact extraction)."""
        return [m for m in (self.summarizer, self.extractor) if m is not None]

    # -- the store -----------------------------------------------------------------------------
    def turns(self) -> list[Turn]:
        """Every stored turn, oldest first."""
        with connect() as conn:
            rows = conn.execute("SELECT id, role, text, tokens FROM chat_turns WHERE pipeline = ? "
                                "AND thread = ? ORDER BY id", (self.pipeline, self.thread))
            return [Turn(*r) for r in rows.fetchall()]

    @property
    def df(self) -> pd.DataFrame:
        """The thread's turns as a DataFrame (id, role, text, tokens)."""
        import pandas as pd

        return pd.DataFrame([(t.id, t.role, t.text, t.tokens) for t in self.turns()],
                            columns=["id", "role", "text", "tokens"])

    def clear(self) -> int:
        """Forget the thread; returns how many turns were removed."""
        with connect() as conn:
            return conn.execute("DELETE FROM chat_turns WHERE pipeline = ? AND thread = ?",
                                (self.pipeline, self.thread)).rowcount

    def _append(self, pairs: list[tuple[str, str]]) -> None:
        with connect() as conn:
            conn.executemany(
                "INSERT INTO chat_turns(pipeline, thread, role, text, tokens, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(self.pipeline, self.thread, role, text, estimate_tokens(text), time.time())
                 for role, text in pairs])

    def _replace(self, old: list[Turn], summary: str) -> Turn:
        # The summary takes the oldest replaced id, so it stays first in the thread's order.
        first = old[0].id
        with connect() as conn:
            conn.executemany("DELETE FROM chat_turns WHERE id = ?", [(t.id,) for t in old])
            conn.execute("INSERT INTO chat_turns(id, pipeline, thread, role, text, tokens, "
                         "created) VALUES (?, ?, ?, 'summary', ?, ?, ?)",
                         (first, self.pipeline, self.thread, summary, estimate_tokens(summary),
                          time.time()))
        return Turn(first, "summary", summary, estimate_tokens(summary))

    # -- one turn of a run -----------------------------------------------------------------------
    async def turn(self, ctx: RunContext, message: Any,
                   run: Callable[[str], Awaitable[Any]]) -> Any:
        """Load the history within budget, run the pipeline with it, store both turns (and
        extract facts to ``remember``)."""
        text = as_text(message)
        history = await self.history(ctx, text)
        answer = await run(history)
        reply = as_text(answer)
        await ctx.memory("append", lambda: asyncio.to_thread(
            self._append, [("user", text), ("assistant", reply)]), step="chat",
            input=f"user: {text}\nassistant: {reply}")
        if self.remember is not None:
            await self._extract(ctx, text, reply)
        return answer

    async def history(self, ctx: RunContext, message: str) -> str:
        """The thread's history as text for ``{{ history }}``, within the budget."""
        budget = self.max_tokens - estimate_tokens(message)
        if budget < 0:
            raise BudgetExceeded(
                f"chat thread '{self.thread}': the message alone is about "
                f"{estimate_tokens(message)} tokens, over max_tokens={self.max_tokens}; raise "
                f"max_tokens or send a shorter message", limit="chat_tokens")
        turns = await ctx.memory("history", lambda: asyncio.to_thread(self.turns), step="chat",
                                 input=message)
        total = sum(t.tokens for t in turns)
        if total > budget and self.policy == "summarize" and len(turns) > 1:
            turns = await self._summarize(ctx, turns, budget)
        kept = _newest_within(turns, budget)
        if turns and not kept and self.policy == "summarize":
            raise BudgetExceeded(
                f"chat thread '{self.thread}': even the summary of earlier turns "
                f"({turns[0].tokens} tokens) does not fit max_tokens={self.max_tokens} with "
                f"this message; raise max_tokens", limit="chat_tokens")
        return "\n".join(t.line() for t in kept)

    async def _summarize(self, ctx: RunContext, turns: list[Turn], budget: int) -> list[Turn]:
        keep = _newest_within(turns, budget // 2)
        old = turns[:len(turns) - len(keep)] or turns[:1]
        keep = turns[len(old):]
        words = max(10, int(budget / 2 * 0.75))
        prompt = SUMMARY_PROMPT.format(words=words, turns="\n".join(t.line() for t in old))
        assert self.summarizer is not None
        response = await ctx.call(self.summarizer, [Message("user", prompt)], step="summarize",
                                  max_tokens=max(16, budget // 2))
        summary = response.text.strip() or "(empty summary)"
        new = await ctx.memory("summarize", lambda: asyncio.to_thread(self._replace, old, summary),
                               step="chat", input=summary)
        return [new, *keep]

    async def _extract(self, ctx: RunContext, message: str, answer: str) -> None:
        assert self.extractor is not None and self.remember is not None
        prompt = EXTRACT_PROMPT.format(message=message, answer=answer)
        response = await ctx.call(self.extractor, [Message("user", prompt)], step="remember")
        facts = [line.strip().lstrip("-*• ").strip() for line in response.text.splitlines()]
        facts = [f for f in facts if f and f.upper() != "NONE"]
        memory = self.remember
        for fact in facts:
            await ctx.memory("add", lambda f=fact: memory.aadd(  # type: ignore[misc]
                f, source="chat", thread=self.thread, pipeline=self.pipeline),
                step="remember", input=fact)


def _newest_within(turns: list[Turn], budget: int) -> list[Turn]:
    kept: list[Turn] = []
    used = 0
    for t in reversed(turns):
        if used + t.tokens > budget:
            break
        kept.append(t)
        used += t.tokens
    return kept[::-1]
