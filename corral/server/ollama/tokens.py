"""``POST /api/tokenize`` and ``POST /api/detokenize`` (the work is in :mod:`corral.server.core.tokens`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.tokens import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from corral.server.core import tokens as core
from corral.server.core.stream import json_response
from corral.server.reqlog import read_body
from corral.server.state import state_of


async def tokenize(request: Request) -> Response:
    req = await read_body(request, TokenizeRequest)
    out = await core.tokenize(state_of(request), req, request.is_disconnected)
    return json_response(TokenizeResponse(model=req.model, tokens=out.tokens, total_duration=out.total_duration,
                                          load_duration=out.load_duration).to_wire())


async def detokenize(request: Request) -> Response:
    req = await read_body(request, DetokenizeRequest)
    out = await core.detokenize(state_of(request), req, request.is_disconnected)
    return json_response(DetokenizeResponse(model=req.model, content=out.content, total_duration=out.total_duration,
                                            load_duration=out.load_duration).to_wire())


def routes() -> list[Route]:
    return [Route("/api/tokenize", tokenize, methods=["POST"]), Route("/api/detokenize", detokenize, methods=["POST"])]
