"""``POST /v1/embeddings``: OpenAI's embeddings translated onto the native embed path."""

from __future__ import annotations

import base64
import struct
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.embed import EmbedRequest
from corral.api.errors import BadRequest
from corral.api.openai.common import openai_envelope
from corral.api.openai.completions import EmbeddingRequest
from corral.api.wire import Float32Array
from corral.server.core import embed as core
from corral.server.core.stream import json_response
from corral.server.family import family_route
from corral.server.reqlog import read_body
from corral.server.state import state_of

__all__ = ["routes"]


def native_embed_request(req: EmbeddingRequest) -> EmbedRequest:
    fmt = req.encoding_format
    if fmt and fmt.lower() not in ("float", "base64"):
        raise BadRequest(f"Invalid value for 'encoding_format' = {fmt}. Supported values: ['float', 'base64'].")
    inputs: Any = req.input
    if inputs == "":
        inputs = [""]
    if inputs is None or inputs == []:
        raise BadRequest("invalid input")
    if isinstance(inputs, list) and inputs and not all(isinstance(i, str) for i in inputs):
        if all(isinstance(i, int) or (isinstance(i, list) and all(isinstance(t, int) for t in i)) for i in inputs):
            raise BadRequest("token ids as input are not supported: send the text")
        raise BadRequest("invalid input type")
    if not isinstance(inputs, str | list):
        raise BadRequest("invalid input type")
    native = EmbedRequest(model=req.model, input=inputs, dimensions=req.dimensions, options=req.options)
    native.keep_alive = req.keep_alive
    return native


def _base64(vector: list[float]) -> str:
    """Little-endian float32s, base64-encoded: what the ``openai`` SDK decodes by default."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def embeddings(request: Request) -> Response:
    req = await read_body(request, EmbeddingRequest)
    native = native_embed_request(req)
    out = await core.embed(state_of(request), native, request.is_disconnected)
    as_base64 = req.encoding_format.lower() == "base64"
    data = [{"object": "embedding", "embedding": _base64(v) if as_base64 else Float32Array(v), "index": i}
            for i, v in enumerate(out.vectors)]
    return json_response({"object": "list", "data": data, "model": req.model,
                          "usage": {"prompt_tokens": out.prompt_tokens, "total_tokens": out.prompt_tokens}})


def routes() -> list[Route]:
    return [family_route("/v1/embeddings", embeddings, ["POST"], openai_envelope)]
