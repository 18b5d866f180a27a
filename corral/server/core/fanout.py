"""Several event streams as one: ``n`` choices of one request, each its own generation on the runner's slots."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TypeVar

from corral.server.core.events import Delta, Done, Event, Rendered

__all__ = ["interleave", "pieces"]

T = TypeVar("T")


async def interleave(streams: Sequence[AsyncIterator[T]]) -> AsyncGenerator[tuple[int, T], None]:
    """Items of every stream as they come, tagged with the stream's index. An error in one ends them all;
    leaving early closes them all (each stream's ``finally`` then cancels its work)."""
    if len(streams) == 1:  # the common case: no tasks
        async for item in streams[0]:
            yield 0, item
        return
    pending: dict[asyncio.Task[T], int] = {}

    def next_of(i: int) -> None:
        pending[asyncio.ensure_future(streams[i].__anext__())] = i

    for i in range(len(streams)):
        next_of(i)
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: pending[t]):
                i = pending.pop(task)
                try:
                    item = task.result()
                except StopAsyncIteration:
                    continue
                yield i, item
                next_of(i)
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                await task
        for stream in streams:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(BaseException):
                    await close()


async def pieces(events: AsyncGenerator[tuple[int, Event], None],
                 ) -> AsyncGenerator[tuple[int, Delta, Done | None], None]:
    """Each choice's pieces of reply, in order: a final event comes as its remainder with itself, a debug
    render is skipped. Closing this closes ``events``."""
    async with contextlib.aclosing(events):
        async for i, event in events:
            if isinstance(event, Done):
                yield i, event.last, event
            elif isinstance(event, Delta):
                yield i, event, None
            else:
                assert isinstance(event, Rendered)
