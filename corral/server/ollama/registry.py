"""``POST /api/pull`` and ``POST /api/push``: the registry client's progress as NDJSON, or its last line.

As in Ollama, a streamed transfer answers 200 at once with its first status, so a failure arrives as a
final ``{"error": ...}`` line; a non-streamed one answers 500 with the error (Ollama's
``waitForStream``), or its last progress object (``{"status": "success"}``).  A client that goes
away cancels its transfer; a pull keeps its partial data, and a download shared with another pull
goes on for that one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import errors
from corral.api.models import ProgressResponse, PullRequest, PushRequest
from corral.registry import Progress, RegistryError, RegistryOptions, pull_model, push_model
from corral.server.core.stream import progress_response
from corral.server.reqlog import read_body
from corral.server.state import ServerState, state_of
from corral.store.errors import InvalidModelName, StoreError
from corral.store.names import ModelName

log = logging.getLogger("corral.server")



def registry_options(state: ServerState) -> RegistryOptions:
    return RegistryOptions(default_registry=state.settings.registry, noprune=state.settings.noprune)


async def _transfer(stream: bool, work: Callable[[Callable[[Progress], None]], Awaitable[Any]]) -> Response:
    """Run ``work(progress)`` as a task; stream its progress, or answer with the last line."""
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def progress(event: Progress) -> None:
        queue.put_nowait(ProgressResponse(status=event.status, digest=event.digest, total=event.total,
                                          completed=event.completed).to_wire())

    async def run() -> None:
        try:
            await work(progress)
        finally:
            queue.put_nowait(None)

    task = asyncio.ensure_future(run())

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            while (item := await queue.get()) is not None:
                yield item
            await _result(task)
        finally:
            if not task.done():
                task.cancel()  # the client left: stop the transfer (partial downloads stay on disk)
                await asyncio.gather(task, return_exceptions=True)

    return await progress_response(chunks(), stream)


async def _result(task: asyncio.Future[None]) -> None:
    try:
        await task
    except RegistryError as e:
        raise errors.InternalError(str(e)) from None
    except (StoreError, OSError) as e:
        log.exception("transfer failed")
        raise errors.InternalError(str(e)) from None


async def pull(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, PullRequest)
    try:
        name = ModelName.parse(req.model)
    except InvalidModelName:
        raise errors.invalid_model_name() from None
    options = registry_options(state)

    async def work(progress: Callable[[Progress], None]) -> None:
        await pull_model(state.store, name, options=options, progress=progress, insecure=req.insecure,
                         username=req.username, password=req.password)

    return await _transfer(req.stream, work)


async def push(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, PushRequest)
    if not req.model:
        raise errors.model_required()
    try:
        model = state.store.resolve(req.model)
    except InvalidModelName:
        raise errors.name_invalid(req.model) from None
    if model is None:
        raise errors.model_not_found(req.model)
    options = registry_options(state)

    async def work(progress: Callable[[Progress], None]) -> None:
        await push_model(state.store, model, options=options, progress=progress, insecure=req.insecure,
                         username=req.username, password=req.password)

    return await _transfer(req.stream, work)


def routes() -> list[Route]:
    return [
        Route("/api/pull", pull, methods=["POST"]),
        Route("/api/push", push, methods=["POST"]),
    ]
