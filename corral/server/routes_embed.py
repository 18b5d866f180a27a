"""``POST /api/embed`` and the legacy ``POST /api/embeddings``.

Both run on a runner started in embedding mode (pooled vectors; a model without a pooling type of its own is
mean-pooled, so any model embeds). The runner packs as many inputs into one decode as its batch holds and
returns raw vectors; ``/api/embed`` L2-normalises them (after cutting to ``dimensions``), the legacy endpoint
returns them as they are, as Ollama does.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import errors
from corral.api.embed import EmbeddingsRequest, EmbeddingsResponse, EmbedRequest, EmbedResponse
from corral.api.parse import parse_body
from corral.scheduler.handle import RunnerError
from corral.server.inference import Generation, build_options, resolve
from corral.server.ndjson import json_response
from corral.server.state import ServerState
from corral.store.models import LocalModel


def _state(request: Request) -> ServerState:
    s: ServerState = request.app.state.corral
    return s


def _resolve(state: ServerState, name: str) -> LocalModel:
    model = resolve(state, name, errors.model_not_found_pull)
    if model.model_path is None:
        raise errors.model_not_found_pull(name)
    return model


def normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in vector))
    if not math.isfinite(norm):
        raise errors.InternalError("the model produced a vector with NaN or infinite values")
    return [v / norm for v in vector] if norm > 0 else vector


async def _embed(request: Request, gen: Generation, texts: list[str], truncate: bool) -> tuple[list[list[float]], int]:
    """Raw vectors for ``texts`` and the number of tokens evaluated."""
    entry = await gen.acquire(request)
    try:
        if not texts:
            return [], 0
        try:
            reply = await entry.handle.call("embed", inputs=texts, truncate=truncate)
        except RunnerError as exc:
            if exc.code == "input_too_long":
                raise errors.input_too_long() from None
            raise errors.InternalError(str(exc)) from None
    finally:
        gen.release()
    vectors = [[float(v) for v in vec] for vec in reply["embeddings"]]
    return vectors, int(sum(reply.get("counts", [])))


async def embed(request: Request) -> Response:
    state = _state(request)
    req = parse_body(EmbedRequest, await request.body())
    model = _resolve(state, req.model)
    if req.dimensions < 0:
        raise errors.BadRequest("dimensions must be a positive number")
    gen = Generation(state=state, model=model, options=build_options(model, req.options),
                     keep_alive=req.keep_alive, embedding=True)
    vectors, count = await _embed(request, gen, req.inputs(), req.truncate)
    out: list[list[float]] = []
    for vec in vectors:
        if req.dimensions and req.dimensions < len(vec):
            vec = vec[: req.dimensions]
        out.append(normalize(vec))
    return json_response(EmbedResponse(
        model=req.model, embeddings=out, total_duration=int((time.perf_counter() - gen.t_start) * 1e9),
        load_duration=gen.load_duration, prompt_eval_count=count).to_wire())


async def embeddings(request: Request) -> Response:
    state = _state(request)
    req = parse_body(EmbeddingsRequest, await request.body())
    model = _resolve(state, req.model)
    gen = Generation(state=state, model=model, options=build_options(model, req.options),
                     keep_alive=req.keep_alive, embedding=True)
    vectors, _ = await _embed(request, gen, [req.prompt] if req.prompt else [], True)
    vector = vectors[0] if vectors else []
    if not all(math.isfinite(v) for v in vector):
        raise errors.InternalError("the model produced a vector with NaN or infinite values")
    body: dict[str, Any] = EmbeddingsResponse(embedding=vector).to_wire()
    return json_response(body)


def routes() -> list[Route]:
    return [Route("/api/embed", embed, methods=["POST"]), Route("/api/embeddings", embeddings, methods=["POST"])]
