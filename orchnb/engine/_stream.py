"""Streaming a run: its text chunks as they arrive (``pipe.stream(x)`` / ``pipe.astream(x)``)."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import concurrent.futures

    from ._loop import DoneFlag
    from ._run import Run


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a model call's text as it arrives (``pipe.stream(x)`` yields these).

    ``attempt`` tells a retried call's restart apart: a new attempt starts its text over.
    """

    step: str
    """The step making the call."""
    text: str
    """The new text."""
    span_id: str
    run_id: str
    item: int | None = None
    """Map item (fan-outs stream several calls at once)."""
    attempt: int | None = None


class ChunkStream:
    """The chunks of a streaming run, as they arrive (iterate it once); ``.run`` is the run.
    Breaking out of the loop leaves the run going; ``close()`` (or a ``with`` block) stops it.

    >>> stream = pipe.stream("x")                 # doctest: +SKIP
    >>> text = "".join(c.text for c in stream)    # doctest: +SKIP
    >>> stream.run.status                          # doctest: +SKIP
    'ok'
    """

    def __init__(self, run: Run, chunks: Iterator[StreamChunk]):
        self.run = run
        self._chunks = chunks

    def __iter__(self) -> Iterator[StreamChunk]:
        return self._chunks

    def __next__(self) -> StreamChunk:
        return next(self._chunks)

    def close(self) -> None:
        """Stop early: cancels the run if it is still going (its partial trace is kept)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if not self.run.done:
            self.run.cancel()
            self.run.wait(30)

    def __enter__(self) -> ChunkStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChunkStream of run {self.run.id} ({self.run.status})>"


class _ChunkQueue:
    """Collects a run's stream deltas for an iterator (thread-safe or loop-local)."""

    def __init__(self, put: Callable[[Any], None]):
        self.put = put

    def on_stream_delta(self, *, span: Any, text: str, run: Run, attempt: int | None = None
                        ) -> None:
        self.put(StreamChunk(span.step, text, span.span_id, run.id, span.item, attempt))

    def on_run_end(self, *, run: Run) -> None:
        self.put(None)


class Streaming:
    """The streaming side of ``Run`` (a base class of it: these are its methods)."""

    _hooks: list[Any]
    _done: DoneFlag
    cancel_requested: bool

    if TYPE_CHECKING:  # Run's, used here
        def start_nowait(self, *, stepping: bool = True
                         ) -> concurrent.futures.Future[Run]: ...

        def cancel(self) -> None: ...

        def _result(self) -> Run: ...

        async def _execute(self) -> None: ...

    def iter_stream(self) -> ChunkStream:
        """Start this run and iterate its text chunks as they arrive (a sync iterator, fine in a
        notebook cell); at the end, the run's error (if any) is raised. Leaving the loop early
        cancels the run."""
        chunks: queue.SimpleQueue[StreamChunk | None] = queue.SimpleQueue()
        self._hooks.append(_ChunkQueue(chunks.put))
        self.start_nowait(stepping=False)
        return ChunkStream(self, self._drain(chunks))  # type: ignore[arg-type]

    def _drain(self, chunks: queue.SimpleQueue[StreamChunk | None]) -> Iterator[StreamChunk]:
        finished = False
        try:
            while True:
                try:
                    chunk = chunks.get(timeout=0.25)
                except queue.Empty:
                    continue
                if chunk is None:
                    break
                yield chunk
            finished = True
        finally:
            if not finished:
                self.cancel()
            self._done.wait(30)
        self._result()

    async def aiter_stream(self) -> AsyncIterator[StreamChunk]:
        """``iter_stream`` on the caller's event loop (``async for chunk in ...``)."""
        chunks: asyncio.Queue[StreamChunk | None] = asyncio.Queue()
        self._hooks.append(_ChunkQueue(chunks.put_nowait))
        task = asyncio.ensure_future(self._execute())
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
            await task
        finally:
            if not task.done():
                self.cancel_requested = True
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._result()
