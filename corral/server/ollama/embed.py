"""``POST /api/embed`` and the legacy ``POST /api/embeddings`` (the work is in :mod:`corral.server.core.embed`)."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import errors
from corral.api.embed import EmbeddingsRequest, EmbeddingsResponse, EmbedRequest, EmbedResponse
from corral.server.core import embed as core
from corral.server.core.stream import json_response
from corral.server.reqlog import read_body
from corral.server.state import state_of


async def embed(request: Request) -> Response:
    req = await read_body(request, EmbedRequest)
    out = await core.embed(state_of(request), req, request.is_disconnected)
    return json_response(EmbedResponse(model=req.model, embeddings=out.vectors, total_duration=out.total_duration,
                                       load_duration=out.load_duration, prompt_eval_count=out.prompt_tokens).to_wire())


async def embeddings(request: Request) -> Response:
    state = state_of(request)
    req = await read_body(request, EmbeddingsRequest)
    model = core.resolve_embedding(state, req.model)
    out = await core.raw_vectors(state, model, [req.prompt] if req.prompt else [], options=req.options,
                                 keep_alive=req.keep_alive, disconnected=request.is_disconnected)
    vector = out.vectors[0] if out.vectors else []
    if not all(math.isfinite(v) for v in vector):
        raise errors.InternalError("the model produced a vector with NaN or infinite values")
    return json_response(EmbeddingsResponse(embedding=vector).to_wire())


def routes() -> list[Route]:
    return [Route("/api/embed", embed, methods=["POST"]), Route("/api/embeddings", embeddings, methods=["POST"])]
