"""Embeddings, from a validated native request to vectors: ``/api/embed``, the legacy ``/api/embeddings``
and every family's embeddings endpoint come here.

They run on a runner started in embedding mode (pooled vectors; a model without a pooling type of its own
is mean-pooled, so any model embeds). The runner packs as many inputs into one decode as its batch holds and
returns raw vectors; :func:`embed` L2-normalises them (after cutting to ``dimensions``), :func:`raw_vectors`
returns them as they are (the legacy endpoint), as Ollama does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from corral.api import errors
from corral.api.embed import EmbedRequest
from corral.scheduler.handle import RunnerError
from corral.server.core.generation import Disconnected, Generation, build_options, resolve, runner_error
from corral.server.state import ServerState
from corral.store.models import LocalModel

__all__ = ["Embedded", "embed", "normalize", "raw_vectors", "resolve_embedding"]


@dataclass
class Embedded:
    vectors: list[list[float]]
    prompt_tokens: int
    total_duration: int
    load_duration: int


def resolve_embedding(state: ServerState, name: str) -> LocalModel:
    model = resolve(state, name, errors.model_not_found_pull)
    if model.model_path is None:
        raise errors.model_not_found_pull(name)
    return model


def normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in vector))
    if not math.isfinite(norm):
        raise errors.InternalError("the model produced a vector with NaN or infinite values")
    return [v / norm for v in vector] if norm > 0 else vector


async def raw_vectors(state: ServerState, model: LocalModel, texts: list[str], *, options: dict[str, object] | None,
                      keep_alive: float | None, truncate: bool = True,
                      disconnected: Disconnected | None = None) -> Embedded:
    """The runner's vectors for ``texts`` as they are, and the number of tokens evaluated."""
    gen = Generation(state=state, model=model, options=build_options(model, options), keep_alive=keep_alive,
                     embedding=True)
    entry = await gen.acquire(disconnected)
    try:
        if not texts:
            reply: dict[str, Any] = {"embeddings": [], "counts": []}
        else:
            try:
                reply = await entry.handle.call("embed", inputs=texts, truncate=truncate)
            except RunnerError as exc:
                raise runner_error(exc) from None
    finally:
        gen.release()
    vectors = [[float(v) for v in vec] for vec in reply["embeddings"]]
    count = sum(int(c) for c in reply.get("counts", []))
    state.metrics.embedded(model.short_name, prompt_tokens=count, queue_s=gen.load_duration / 1e9)
    return Embedded(vectors, count, int((time.perf_counter() - gen.t_start) * 1e9), gen.load_duration)


async def embed(state: ServerState, req: EmbedRequest, disconnected: Disconnected | None = None) -> Embedded:
    """``/api/embed``'s vectors: cut to ``dimensions``, then L2-normalised."""
    model = resolve_embedding(state, req.model)  # an unknown model is a 404 before anything else
    if req.dimensions < 0:
        raise errors.BadRequest("dimensions must be a positive number")
    out = await raw_vectors(state, model, req.inputs(), options=req.options, keep_alive=req.keep_alive,
                            truncate=req.truncate, disconnected=disconnected)
    vectors = []
    for vec in out.vectors:
        if req.dimensions and req.dimensions < len(vec):
            vec = vec[: req.dimensions]
        vectors.append(normalize(vec))
    out.vectors = vectors
    return out
