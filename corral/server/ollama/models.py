"""``/``, ``/api/version``, ``/api/tags``, ``/api/show``, ``/api/ps``."""

from __future__ import annotations

import datetime
import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from corral.api.models import (
    ListModelResponse,
    ListResponse,
    ModelDetails,
    ProcessModelResponse,
    ProcessResponse,
    ShowRequest,
    ShowResponse,
    VersionResponse,
)
from corral.server.core.generation import resolve
from corral.server.core.stream import json_response
from corral.server.reqlog import read_body
from corral.server.showfmt import format_parameters, render_modelfile
from corral.server.state import state_of
from corral.store.models import LocalModel
from corral.version import OLLAMA_VERSION

# Ollama keeps a model "forever" (keep_alive < 0) for the longest Go duration, 2^63-1 ns (about 292 years),
# and reports now plus that as its expiry.
FOREVER_SECONDS = (2**63 - 1) / 1e9



async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


async def version(request: Request) -> Response:
    return json_response(VersionResponse(version=OLLAMA_VERSION).to_wire())


def _details(model: LocalModel) -> ModelDetails:
    return ModelDetails(**model.details())


def _template_text(model: LocalModel) -> str:
    if model.template is not None:
        return model.template
    meta = model.gguf()
    return (meta.chat_template if meta is not None else None) or ""


async def tags(request: Request) -> Response:
    state = state_of(request)
    models = [
        ListModelResponse(name=m.short_name, model=m.short_name, modified_at=m.modified_at, size=m.size,
                          digest=m.digest, details=ModelDetails(**m.details(lengths=True)),
                          capabilities=m.capabilities())
        for m in state.store.list()
    ]
    return json_response(ListResponse(models=models).to_wire())


async def show(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, ShowRequest)
    model = resolve(state, req.model)
    info: dict[str, Any] = {
        "license": "\n".join(model.license),
        "modelfile": render_modelfile(model),
        "parameters": format_parameters(model.params),
        "template": _template_text(model),
        "system": req.system or model.system or "",
        "details": _details(model),
        "messages": model.messages or None,
        "model_info": model.model_info(verbose=req.verbose),
        "tensors": model.tensors() if req.verbose else None,
        "capabilities": model.capabilities(),
        "modified_at": model.modified_at,
        "renderer": str(model.config.get("renderer") or ""),
        "parser": str(model.config.get("parser") or ""),
        "requires": str(model.config.get("requires") or ""),
    }
    return json_response(ShowResponse(**info).to_wire())


async def ps(request: Request) -> Response:
    state = state_of(request)
    rows: dict[tuple[str, str, str], ProcessModelResponse] = {}
    clustered = state.scheduler.backend.clustered
    for entry in state.scheduler.ps():
        expires = entry.expires_at if math.isfinite(entry.expires_at) else time.time() + FOREVER_SECONDS
        if entry.refs and math.isfinite(entry.keep_alive):
            expires = time.time() + entry.keep_alive  # busy: counts from when it will go idle, at the soonest
        expires_at = datetime.datetime.fromtimestamp(expires, tz=datetime.timezone.utc).astimezone()
        row = ProcessModelResponse(
            name=entry.model.name, model=entry.model.name, size=entry.size, digest=entry.model.digest,
            details=ModelDetails(**entry.model.details), expires_at=expires_at, size_vram=0,
            context_length=entry.spec.num_ctx, node=entry.node.label if clustered else None)
        # on a cluster, a row per node: replicas of one model are runners on different nodes
        key = (entry.model.name, entry.model.digest, entry.node.id if clustered else "")
        other = rows.get(key)
        if other is None:
            rows[key] = row
            continue
        # A model's embedding runner beside its generating one: one row, as Ollama serves both from one
        # runner. The memory is both runners'; the context and expiry are the generating runner's.
        chat = other if entry.spec.embedding else row
        rows[key] = chat.model_copy(update={"size": row.size + other.size})
    return json_response(ProcessResponse(models=list(rows.values())).to_wire())  # the scheduler's order


def routes() -> list[Route]:
    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/api/version", version, methods=["GET", "HEAD"]),
        Route("/api/tags", tags, methods=["GET", "HEAD"]),
        Route("/api/show", show, methods=["POST"]),
        Route("/api/ps", ps, methods=["GET"]),
    ]
