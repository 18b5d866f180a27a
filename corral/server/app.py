"""The ASGI application: routes, the host guard and CORS around them, and the server's lifetime."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.errors import APIError
from corral.config import Settings
from corral.scheduler.handle import RunnerError
from corral.scheduler.scheduler import Scheduler
from corral.server import anthropic, ollama, openai
from corral.server.core.generation import runner_error
from corral.server.core.stream import error_response
from corral.server.cors import CORSMiddleware
from corral.server.guard import HostGuardMiddleware
from corral.server.state import ServerState
from corral.store.models import Store

log = logging.getLogger("corral.server")
access_log = logging.getLogger("corral.access")


def build_state(settings: Settings) -> ServerState:
    store = Store(settings.models)
    scheduler = Scheduler(max_loaded=settings.max_loaded_models, max_queue=settings.max_queue,
                          default_keep_alive=settings.keep_alive, load_timeout=settings.load_timeout,
                          max_memory=settings.max_memory)
    return ServerState(settings=settings, store=store, scheduler=scheduler, started=time.time())


def _startup(state: ServerState) -> None:
    settings = state.settings
    log.info("server config env=%s", settings.as_env_map())
    if not settings.noprune:
        from corral.store.prune import prune_unreferenced

        try:
            prune_unreferenced(state.store)
        except OSError as exc:
            log.warning("prune failed: %s", exc)
    if settings.bundled:
        from corral.store.bundled import ensure_bundled

        try:
            imported = ensure_bundled(state.store)
            if imported:
                log.info("imported bundled models: %s", ", ".join(imported))
        except Exception as exc:  # a broken optional package must not stop the server
            log.warning("bundled models not imported: %s", exc)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found", status_code=404)
    if exc.status_code == 405:
        return PlainTextResponse("405 method not allowed", status_code=405)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


class _Unhandled:
    """Any other exception becomes Ollama's ``{"error": ...}`` here, inside Starlette's outermost
    middleware, which would answer too but then re-raise, and the server would drop the connection
    under a client that keeps it alive. A runner's refusal of bad input is the client's mistake: 400.

    Every request, a 404 for an unknown path included, leaves one log line here, as Ollama's request log:
    status, duration, client, method and path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        status = 0
        t0 = time.perf_counter()

        async def watch(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            log.info("client left during %s %s", scope.get("method"), scope.get("path"))
        except Exception as exc:
            if started:
                raise  # a response is under way: nothing sound can follow it
            if isinstance(exc, RunnerError):
                error = runner_error(exc)
                response = error_response(error.status, error.message)
            else:
                log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
                response = error_response(500, str(exc) or type(exc).__name__)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            _log_request(scope, status, time.perf_counter() - t0)


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    client = scope.get("client") or ("", 0)
    access_log.info('%3d | %12s | %15s | %-7s "%s"', status, _duration(seconds), client[0], scope.get("method"),
                    scope.get("path"))


def _duration(seconds: float) -> str:
    """A duration as Go prints one: 1.234ms, 56.7µs, 2.5s."""
    if seconds >= 1:
        return f"{seconds:.6g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6g}ms"
    return f"{seconds * 1e6:.6g}µs"



def create_app(settings: Settings | None = None, *, state: ServerState | None = None) -> ASGIApp:
    settings = settings or Settings.from_env()
    state = state or build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        _startup(state)
        app.state.corral = state
        try:
            yield
        finally:
            await state.scheduler.shutdown()

    # /v1/messages (Anthropic) is matched before OpenAI's /v1 routes; each family answers in its own envelope
    routes = [*ollama.routes(), *anthropic.routes(), *openai.routes()]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_Unhandled)],
                    exception_handlers={APIError: _api_error, HTTPException: _http_error})
    app.state.corral = state
    # CORS outside the host guard, as Ollama orders them: a browser's preflight gets its Access-Control
    # headers before the guard looks at the Host.
    return CORSMiddleware(HostGuardMiddleware(app, bind_host=settings.host), extra_origins=settings.origins)


MAX_CONNECTIONS = 4096  # open connections and running requests together


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """Run the server; on ``sock`` when given (already bound and listening, so a taken port was reported
    before anything here ran), else on the settings' address."""
    import uvicorn

    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO,
                        format="time=%(asctime)s level=%(levelname)s source=%(name)s msg=%(message)s")
    app = create_app(settings)
    from corral.server.conn import GuardedHttpProtocol, raise_descriptor_limit

    raise_descriptor_limit()
    # stalled connections are closed (corral.server.conn); past MAX_CONNECTIONS new requests get a 503
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=settings.debug, timeout_graceful_shutdown=5, lifespan="on",
                            http=GuardedHttpProtocol, limit_concurrency=MAX_CONNECTIONS)
    server = uvicorn.Server(config)
    log.info("Listening on %s:%d (version corral, Ollama API)", settings.host, settings.port)
    server.run(sockets=[sock] if sock is not None else None)
