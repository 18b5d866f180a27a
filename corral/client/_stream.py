"""Streamed responses: newline-delimited JSON parts, read lazily, closable early."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from corral.client._errors import ResponseError

T = TypeVar("T")


class Stream(Generator[T, None, None], Generic[T]):
    """The parts of a streamed response, in order.

    Nothing is sent until the first part is asked for. ``close()``, or leaving a ``with`` block,
    closes the HTTP response, so the server sees the disconnect and stops generating; breaking
    out of a ``for`` loop over an unnamed stream does the same as soon as it is garbage-collected.
    It is a ``collections.abc.Generator``, as ollama-python's streams (plain generators) are.
    """

    def __init__(self, parts: Generator[T, None, None]) -> None:
        self._parts = parts

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        return next(self._parts)

    def send(self, value: None) -> T:
        return self._parts.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> T:
        return self._parts.throw(typ, val, tb)

    def close(self) -> None:
        """Stop reading and close the response (a no-op when finished or never started)."""
        self._parts.close()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStream(AsyncGenerator[T, None], Generic[T]):
    """The parts of a streamed response, for ``async for``; ``aclose()`` or ``async with`` ends it early.

    It is a ``collections.abc.AsyncGenerator``, as ollama-python's async streams are.
    """

    def __init__(self, parts: AsyncGenerator[T, None]) -> None:
        self._parts = parts

    def __aiter__(self) -> AsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        return await self._parts.__anext__()

    async def asend(self, value: None) -> T:
        return await self._parts.asend(value)

    async def athrow(self, typ: Any, val: Any = None, tb: Any = None) -> T:
        return await self._parts.athrow(typ, val, tb)

    async def aclose(self) -> None:
        """Stop reading and close the response (a no-op when finished or never started)."""
        await self._parts.aclose()

    async def __aenter__(self) -> AsyncStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def response_error(response: httpx.Response) -> ResponseError:
    """The ``ResponseError`` for a failed (and already read) response."""
    return ResponseError(response.text or response.reason_phrase, response.status_code)


def decode_part(cls: type[T], line: str) -> T | None:
    """One NDJSON line as a ``cls``; ``None`` for a blank line; an ``error`` line raises."""
    if not line.strip():
        return None
    part: Any = json.loads(line)
    if isinstance(part, dict):
        if error := part.get("error"):
            raise ResponseError(error if isinstance(error, str) else json.dumps(error))
        return cls(**part)
    raise ResponseError(f"unexpected stream line: {line[:200]}")
