"""How both clients talk HTTP: one request, or one streamed response, with the SDK's errors.

``SyncTransport`` and ``AsyncTransport`` are twins; the method families (``_*_inference``, ``_*_models``)
build on them, and ``Client``/``AsyncClient`` put the families together. Every method goes through
``_request`` (or ``_request_raw`` where the status is the answer), which ollama-python's tests replace
with a fake, so its signature is kept: ``_request(cls, method, url, *, stream=False, **httpx_kwargs)``.

Errors, the same on every path, streamed or not:

- the server cannot be reached: builtin ``ConnectionError`` with ``CONNECTION_ERROR_MESSAGE``;
- an HTTP error status: ``ResponseError(body, status)``;
- an ``{"error": ...}`` line inside a stream: ``ResponseError(message, -1)``;
- the client's ``timeout`` passed: httpx's own ``httpx.TimeoutException`` (there is none by default).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import httpx

from corral.client._base import CONNECTION_ERROR_MESSAGE, BaseClient
from corral.client._stream import AsyncStream, Stream, decode_part, response_error

T = TypeVar("T")
SyncSelf = TypeVar("SyncSelf", bound="SyncTransport")
AsyncSelf = TypeVar("AsyncSelf", bound="AsyncTransport")


class SyncTransport(BaseClient[httpx.Client]):
    """Blocking requests over ``httpx.Client``; closes with ``close()`` or a ``with`` block."""

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self: SyncSelf) -> SyncSelf:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request_raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if not response.is_success:
            raise response_error(response)
        return response

    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[False] = False, **kwargs: Any
    ) -> T: ...
    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[True], **kwargs: Any
    ) -> Stream[T]: ...
    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | Stream[T]: ...
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | Stream[T]:
        if stream:
            return Stream(self._stream_parts(cls, method, url, **kwargs))
        return cls(**self._request_raw(method, url, **kwargs).json())

    def _stream_parts(self, cls: type[T], method: str, url: str, **kwargs: Any) -> Generator[T, None, None]:
        # Leaving this generator early (close(), or garbage collection after a ``break``) leaves the
        # ``with`` block, which closes the half-read response and with it the connection: the server
        # sees the client go and stops generating.
        try:
            with self._client.stream(method, url, **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise response_error(response)
                for line in response.iter_lines():
                    if (part := decode_part(cls, line)) is not None:
                        yield part
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None


class AsyncTransport(BaseClient[httpx.AsyncClient]):
    """Asyncio requests over ``httpx.AsyncClient``; closes with ``await close()`` or ``async with``."""

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self: AsyncSelf) -> AsyncSelf:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _request_raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if not response.is_success:
            raise response_error(response)
        return response

    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[False] = False, **kwargs: Any
    ) -> T: ...
    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[True], **kwargs: Any
    ) -> AsyncStream[T]: ...
    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | AsyncStream[T]: ...
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | AsyncStream[T]:
        if stream:
            return AsyncStream(self._stream_parts(cls, method, url, **kwargs))
        return cls(**(await self._request_raw(method, url, **kwargs)).json())

    async def _stream_parts(
        self, cls: type[T], method: str, url: str, **kwargs: Any
    ) -> AsyncGenerator[T, None]:
        # As in the sync twin: closing the generator closes the response and the connection.
        try:
            async with self._client.stream(method, url, **kwargs) as response:
                if not response.is_success:
                    await response.aread()
                    raise response_error(response)
                async for line in response.aiter_lines():
                    if (part := decode_part(cls, line)) is not None:
                        yield part
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
