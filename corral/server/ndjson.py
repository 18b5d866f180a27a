"""Responses in Ollama's framing: NDJSON streams, single JSON objects, and ``{"error": ...}``.

Streaming is a pure ASGI response so that a client disconnect reaches the generator as cancellation at once
(the generator's ``finally`` then cancels the runner's work and frees its slot).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from corral.api.errors import APIError
from corral.api.wire import dumps

log = logging.getLogger("corral.server")

NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON)


def error_response(status: int, message: str) -> Response:
    return Response(dumps({"error": message}), status_code=status, media_type=JSON)


class NDJSONStream:
    """Writes one JSON object per line; an exception after the first line becomes a final error line."""

    def __init__(self, chunks: AsyncIterator[dict[str, Any]]) -> None:
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                async for chunk in self.chunks:
                    if not started:
                        await send({"type": "http.response.start", "status": 200,
                                    "headers": [(b"content-type", NDJSON.encode())]})
                        started = True
                    await send({"type": "http.response.body", "body": dumps(chunk) + b"\n", "more_body": True})
            except APIError as exc:
                if not started:
                    await _send_whole(send, exc.status, dumps({"error": exc.message}))
                    started = True
                else:
                    await send({"type": "http.response.body", "body": dumps({"error": exc.message}) + b"\n",
                                "more_body": True})
            except Exception as exc:
                log.exception("error while streaming")
                line = dumps({"error": str(exc) or type(exc).__name__})
                if not started:
                    await _send_whole(send, 500, line)
                    started = True
                else:
                    await send({"type": "http.response.body", "body": line + b"\n", "more_body": True})
            finally:
                await _aclose(self.chunks)
            if not started:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", NDJSON.encode())]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()


class WholeResponse:
    """A non-streamed answer: every chunk collected and merged into one object. The client can still leave
    while the model works; then the work stops, as a streamed request's does (the generator's ``finally``
    cancels it on the runner), instead of generating to the end for nobody."""

    def __init__(self, chunks: AsyncIterator[dict[str, Any]],
                 merge: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.chunks = chunks
        self.merge = merge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                response = json_response(self.merge([chunk async for chunk in self.chunks]))
            except APIError as exc:
                response = error_response(exc.status, exc.message)
            except Exception as exc:
                log.exception("error while generating")
                response = error_response(500, str(exc) or type(exc).__name__)
            finally:
                await _aclose(self.chunks)
            tg.cancel_scope.cancel()
        if response is not None:  # None: the client left, and nobody reads an answer
            await response(scope, receive, send)


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """The body has been read by now, so the next message is the client leaving."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _aclose(it: AsyncIterator[Any]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()


async def _send_whole(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON.encode())]})
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def progress_response(chunks: AsyncIterator[dict[str, Any]], stream: bool) -> Response:
    """Progress (create, pull, push): every status line when streaming, else only the last one, as Ollama
    answers ``"stream": false`` with the final status (or the error)."""
    if stream:
        return NDJSONStream(chunks)  # type: ignore[return-value]
    last: dict[str, Any] = {}
    async for item in chunks:
        last = item
    return json_response(last)
