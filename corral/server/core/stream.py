"""Writing a family's answer: one event-stream writer with NDJSON and SSE framings, whole JSON answers,
and error bodies in each family's envelope.

The writer is a pure ASGI response so that a client disconnect reaches the generator as cancellation at
once (the generator's ``finally`` then cancels the runner's work and frees its slot). An error before the
first frame gets its status and the family's error body; after it, the status is already 200 and the error
becomes the stream's last frame.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from corral.api.errors import APIError
from corral.api.wire import dumps

log = logging.getLogger("corral.server")

NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"
EVENT_STREAM = "text/event-stream"

Envelope = Callable[[int, str], Any]
"""An API family's error body for a status and a message."""


def ollama_envelope(status: int, message: str) -> dict[str, str]:
    return {"error": message}


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """A server-sent event with a name (``event: NAME``); a bare dict is sent as an unnamed ``data:``."""

    name: str
    data: Any


@dataclass(frozen=True)
class Framing:
    """How one family frames a stream: the media type, one frame per item, its error body, the end."""

    media_type: str
    envelope: Envelope
    sse: bool = False
    end: bytes = b""  # after the last frame of a stream that did not fail (OpenAI's ``data: [DONE]``)
    error_event: str = ""  # the SSE event name an error frame carries, if the family names one

    def frame(self, item: Any) -> bytes:
        if not self.sse:
            return dumps(item) + b"\n"
        if isinstance(item, SSEEvent):
            return b"event: " + item.name.encode() + b"\ndata: " + dumps(item.data) + b"\n\n"
        return b"data: " + dumps(item) + b"\n\n"

    def error_frame(self, status: int, message: str) -> bytes:
        body = self.envelope(status, message)
        return self.frame(SSEEvent(self.error_event, body) if self.error_event else body)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", self.media_type.encode())]
        if self.sse:
            headers.append((b"cache-control", b"no-cache"))
        return headers


NDJSON_FRAMING = Framing(NDJSON, ollama_envelope)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON)


def error_response(status: int, message: str, envelope: Envelope = ollama_envelope) -> Response:
    return Response(dumps(envelope(status, message)), status_code=status, media_type=JSON)


def _failure(exc: Exception, what: str) -> tuple[int, str]:
    if isinstance(exc, APIError):
        return exc.status, exc.message
    log.exception("error while %s", what)
    return 500, str(exc) or type(exc).__name__


class EventStream:
    """Writes each item as a frame of ``framing``; an exception after the first frame becomes a last frame."""

    def __init__(self, items: AsyncIterator[Any], framing: Framing = NDJSON_FRAMING) -> None:
        self.items = items
        self.framing = framing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        framing = self.framing
        started = failed = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                async for item in self.items:
                    if not started:
                        await send({"type": "http.response.start", "status": 200, "headers": framing.headers})
                        started = True
                    await send({"type": "http.response.body", "body": framing.frame(item), "more_body": True})
            except Exception as exc:
                failed = True
                status, message = _failure(exc, "streaming")
                if not started:
                    await _send_whole(send, status, dumps(framing.envelope(status, message)))
                    started = True
                else:
                    await send({"type": "http.response.body", "body": framing.error_frame(status, message),
                                "more_body": True})
            finally:
                await _aclose(self.items)
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": framing.headers})
            tail = framing.end if not failed else b""
            await send({"type": "http.response.body", "body": tail, "more_body": False})
            tg.cancel_scope.cancel()


# The native API's name for its writer, kept for the routes that stream progress
NDJSONStream = EventStream


class WholeResponse:
    """A non-streamed answer: every item collected and merged into one object. The client can still leave
    while the model works; then the work stops, as a streamed request's does (the generator's ``finally``
    cancels it on the runner), instead of generating to the end for nobody."""

    def __init__(self, items: AsyncIterator[Any], merge: Callable[[list[Any]], Any],
                 envelope: Envelope = ollama_envelope) -> None:
        self.items = items
        self.merge = merge
        self.envelope = envelope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                response = json_response(self.merge([item async for item in self.items]))
            except Exception as exc:
                response = error_response(*_failure(exc, "generating"), envelope=self.envelope)
            finally:
                await _aclose(self.items)
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
        return EventStream(chunks)  # type: ignore[return-value]
    last: dict[str, Any] = {}
    async for item in chunks:
        last = item
    return json_response(last)
