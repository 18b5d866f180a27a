"""``HEAD/POST /api/blobs/{digest}``, ``POST /api/create``, ``POST /api/copy``, ``DELETE /api/delete``.

A create whose ``from`` names a model missing from the store pulls it first, as Ollama's
``parseFromModel`` does: the pull's own progress lines (``pulling manifest`` ... ``success``) stream
ahead of the create's, and a pull that fails ends the create with the pull's error (500).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from corral.api import errors
from corral.api.models import CopyRequest, CreateRequest, DeleteRequest, ProgressResponse
from corral.api.options import validate_options
from corral.api.wire import go_quote
from corral.prompt.gotemplate import TemplateError
from corral.prompt.gotemplate import parse as parse_template
from corral.registry import Progress, RegistryError, pull_model
from corral.server.core.stream import progress_response
from corral.server.ollama.registry import registry_options
from corral.server.reqlog import read_body
from corral.server.state import state_of
from corral.store.blobs import normalize_digest
from corral.store.build import CreateError, apply_info, build_model, validate_quantize
from corral.store.errors import (
    DigestMismatch,
    InvalidDigest,
    InvalidModelName,
    MissingBlob,
    ModelNotFound,
    StoreError,
)
from corral.store.manifest import ConfigV2
from corral.store.models import LocalModel
from corral.store.names import ModelName

log = logging.getLogger("corral.server")



# --- blobs ------------------------------------------------------------------------------------


def _digest_param(request: Request) -> str:
    raw = str(request.path_params["digest"])
    try:
        return normalize_digest(raw)
    except InvalidDigest:
        raise errors.invalid_digest() from None


async def head_blob(request: Request) -> Response:
    digest = _digest_param(request)
    if not state_of(request).store.blobs.exists(digest):
        raise errors.NotFound(f"blob {go_quote(str(request.path_params['digest']))} not found")
    return Response(status_code=200)


async def get_blob(request: Request) -> Response:
    """A blob's bytes, for the nodes of a cluster (corral; Ollama has no such route). The node checks the
    digest of what arrives, so a blob damaged on disk is refused there, not here."""
    state = state_of(request)
    if not state.scheduler.backend.clustered:
        raise HTTPException(405)
    digest = _digest_param(request)
    if not state.store.blobs.exists(digest):
        raise errors.NotFound(f"blob {go_quote(str(request.path_params['digest']))} not found")
    return FileResponse(state.store.blobs.path(digest), media_type="application/octet-stream")


async def post_blob(request: Request) -> Response:
    """Stream the body to a temporary file in ``blobs/``, hashing it; rename only on a digest match."""
    digest = _digest_param(request)
    blobs = state_of(request).store.blobs
    if blobs.exists(digest):
        return Response(status_code=200)
    writer = await anyio.to_thread.run_sync(blobs.writer, digest)
    try:
        async for chunk in request.stream():
            if chunk:
                writer.write(chunk)
        await anyio.to_thread.run_sync(writer.commit)
    except DigestMismatch as e:
        raise errors.digest_mismatch(str(request.path_params["digest"]), e.got) from None
    finally:
        writer.abort()  # no-op after a commit; removes the temporary file otherwise
    return Response(status_code=201)


# --- create -----------------------------------------------------------------------------------


def _valid_path(key: str) -> bool:
    """Go's ``fs.ValidPath``, stricter: relative, ``/``-separated, no empty, ``.`` or ``..`` element,
    and no backslash, drive letter or NUL (so a key can never name a file outside the store)."""
    if key == ".":
        return True
    if not key or "\\" in key or "\x00" in key or (len(key) > 1 and key[1] == ":"):
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def _check_file_keys(files: dict[str, str] | None) -> None:
    for key, digest in (files or {}).items():
        if not _valid_path(key):
            raise errors.file_path_not_relative()
        try:
            normalize_digest(digest)
        except InvalidDigest:
            raise errors.invalid_digest() from None


def _parse_name(raw: str) -> ModelName:
    try:
        return ModelName.parse(raw)
    except InvalidModelName:
        raise errors.invalid_model_name() from None


async def create(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, CreateRequest)
    name = _parse_name(req.model)
    for files in (req.files, req.adapters, req.draft_files):
        _check_file_keys(files)
    base: LocalModel | None = None
    missing_base: ModelName | None = None
    if req.from_:
        from_name = _parse_name(req.from_)
        base = state.store.resolve(from_name)
        if base is None:
            missing_base = from_name  # pulled inside the stream below, before anything is built
    elif not req.files:
        raise errors.create_missing_source()
    if req.template:
        try:
            parse_template(req.template)
        except TemplateError as e:
            raise errors.template_error(str(e)) from None
    params, ignored = validate_options(req.parameters)
    if ignored:
        log.info("create %s: ignoring unknown parameters %s", req.model, ignored)
    messages = [m.to_wire() for m in req.messages or []]
    files = None if req.from_ else req.files
    try:
        apply_info(ConfigV2(), req.info)  # refuse a malformed info before anything is written
        if missing_base is None:
            # Quantize types and sources are checked up front (GGUF headers only), so that a refusal is
            # a plain 400 rather than an error line in the middle of a stream.  A base still to be pulled
            # is checked once it is here.
            await anyio.to_thread.run_sync(functools.partial(
                validate_quantize, state.store, quantize=req.quantize, draft_quantize=req.draft_quantize,
                base=base, files=files, drafts=req.draft_files))
    except CreateError as e:
        raise errors.BadRequest(str(e)) from None
    except InvalidDigest:
        raise errors.invalid_digest() from None

    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    pulling = False

    def progress(status: str, *, digest: str = "", total: int = 0, completed: int = 0) -> None:
        line = ProgressResponse(status=status, digest=digest, total=total, completed=completed).to_wire()
        loop.call_soon_threadsafe(queue.put_nowait, line)

    def pull_progress(event: Progress) -> None:
        # Called on the event loop by the registry client, not from a worker thread.
        queue.put_nowait(ProgressResponse(status=event.status, digest=event.digest, total=event.total,
                                          completed=event.completed).to_wire())

    def work(base: LocalModel | None) -> LocalModel:
        # Runs in a worker thread; a quantization inside runs llama.cpp in its own child process.
        return build_model(
            state.store, name, base=base, files=files, adapters=req.adapters, drafts=req.draft_files,
            template=req.template, system=req.system, licenses=req.licenses(), params=params, messages=messages,
            renderer=req.renderer, parser=req.parser, requires=req.requires, quantize=req.quantize,
            draft_quantize=req.draft_quantize, info=req.info, progress=progress, prune=not state.settings.noprune)

    async def run() -> None:
        nonlocal pulling
        try:
            found = base
            if missing_base is not None:
                # Ollama pulls with default registry options: no ``insecure``, no credentials but the
                # server's own (its auth file, or a CORRAL_REGISTRY written with http://).
                pulling = True
                found = await pull_model(state.store, missing_base, options=registry_options(state),
                                         progress=pull_progress)
                pulling = False
                await anyio.to_thread.run_sync(functools.partial(
                    validate_quantize, state.store, quantize=req.quantize, draft_quantize=req.draft_quantize,
                    base=found, files=None, drafts=req.draft_files))
            await anyio.to_thread.run_sync(work, found)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.ensure_future(run())

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            while (item := await queue.get()) is not None:
                yield item
            await _result(task)
        finally:
            if not task.done():
                if pulling:
                    # The client left during the pull: stop it (its partial data stays), as /api/pull does.
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                else:
                    await asyncio.shield(task)  # a build already under way finishes

    return await progress_response(chunks(), req.stream)


async def _result(task: asyncio.Future[None]) -> None:
    try:
        await task
    except CreateError as e:
        raise errors.BadRequest(str(e)) from None
    except InvalidDigest:
        raise errors.invalid_digest() from None
    except RegistryError as e:
        raise errors.InternalError(str(e)) from None  # the pull of a missing base; Ollama answers 500
    except (MissingBlob, ModelNotFound) as e:
        raise errors.NotFound(str(e)) from None  # what it is made from was deleted meanwhile
    except StoreError as e:
        raise errors.InternalError(str(e)) from None


# --- copy, delete -----------------------------------------------------------------------------


async def copy(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, CopyRequest)
    try:
        ModelName.parse(req.source)
    except InvalidModelName:
        raise errors.source_invalid(req.source) from None
    try:
        destination = ModelName.parse(req.destination)
    except InvalidModelName:
        raise errors.BadRequest(f"destination {go_quote(req.destination)} is invalid") from None
    source = state.store.resolve(req.source)
    if source is None:
        raise errors.model_not_found_copy(req.source)
    try:
        await anyio.to_thread.run_sync(state.store.copy, source.name, destination)
    except (ModelNotFound, MissingBlob):
        raise errors.model_not_found_copy(req.source) from None  # deleted while it was copied
    return Response(status_code=200)


async def delete(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, DeleteRequest)
    try:
        ModelName.parse(req.model)
    except InvalidModelName:
        raise errors.name_invalid(req.model) from None
    model = state.store.resolve(req.model)
    if model is None:
        raise errors.model_not_found(req.model)
    if model.model_path is not None and model.model_layer is not None:
        # Unload first, unless another model still uses these weights (its runner stays useful).
        referenced_elsewhere = any(
            other.manifest_path != model.manifest_path and model.model_layer.digest in other.manifest.digests()
            for other in state.store.list())
        if not referenced_elsewhere:
            await state.scheduler.expire(str(model.model_path))
    try:
        await anyio.to_thread.run_sync(state.store.delete, model.name)
    except ModelNotFound:
        raise errors.model_not_found(req.model) from None  # another delete was first
    return Response(status_code=200)


def routes() -> list[Route]:
    return [
        Route("/api/blobs/{digest}", head_blob, methods=["HEAD"]),
        Route("/api/blobs/{digest}", get_blob, methods=["GET"]),
        Route("/api/blobs/{digest}", post_blob, methods=["POST"]),
        Route("/api/create", create, methods=["POST"]),
        Route("/api/copy", copy, methods=["POST"]),
        Route("/api/delete", delete, methods=["DELETE"]),
    ]
