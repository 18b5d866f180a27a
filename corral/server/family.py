"""What each API family mounts its routes with: endpoints that answer every error in the family's envelope.

Starlette's exception handlers are per application; the native API keeps them (``{"error": ...}``), and a
family's endpoints catch errors themselves, so an OpenAI client reads ``{"error": {"message", "type", ...}}``
and an Anthropic client ``{"type": "error", "error": {...}}``, with Ollama's statuses either way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.errors import APIError
from corral.scheduler.handle import RunnerError
from corral.server.core.generation import runner_error
from corral.server.core.stream import Envelope, error_response

__all__ = ["Endpoint", "family_route"]

log = logging.getLogger("corral.server")

Endpoint = Callable[[Request], Awaitable[Response]]


def family_route(path: str, endpoint: Endpoint, methods: list[str], envelope: Envelope) -> Route:
    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClientDisconnect:
            raise
        except APIError as exc:
            return error_response(exc.status, exc.message, envelope)
        except RunnerError as exc:
            error = runner_error(exc)
            return error_response(error.status, error.message, envelope)
        except Exception as exc:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_response(500, str(exc) or type(exc).__name__, envelope)

    return Route(path, answer, methods=methods, name=endpoint.__name__)
