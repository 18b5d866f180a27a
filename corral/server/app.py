"""The ASGI application: routes, the host guard and CORS around them, and the server's lifetime."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.errors import APIError
from corral.config import Settings
from corral.scheduler.backend import Backend
from corral.scheduler.handle import RunnerError
from corral.scheduler.scheduler import Scheduler
from corral.server import anthropic, ollama, openai
from corral.server.auth import with_api_keys
from corral.server.core.generation import runner_error
from corral.server.core.stream import error_response
from corral.server.cors import CORSMiddleware
from corral.server.guard import HostGuardMiddleware, is_loopback_address
from corral.server.metrics import metrics_endpoint
from corral.server.reqlog import configure_logging, log_request
from corral.server.state import ServerState
from corral.store.models import Store

log = logging.getLogger("corral.server")


def build_state(settings: Settings) -> ServerState:
    store = Store(settings.models)
    backend: Backend | None = None
    if settings.cluster:
        from corral.scheduler.raybackend import RayBackend  # Ray is imported here and nowhere else

        headers = {}
        if settings.auth_enabled:  # the nodes fetch blobs with a key of their own, valid while this server runs
            token = secrets.token_urlsafe(32)
            settings.api_keys.append(token)
            headers["Authorization"] = f"Bearer {token}"
        backend = RayBackend(settings.cluster, settings.advertise_url or _own_url(settings), headers)
    scheduler = Scheduler(max_loaded=settings.max_loaded_models, max_queue=settings.max_queue,
                          default_keep_alive=settings.keep_alive, load_timeout=settings.load_timeout,
                          max_memory=settings.max_memory, backend=backend)
    return ServerState(settings=settings, store=store, scheduler=scheduler, started=time.time())


def _own_url(settings: Settings) -> str:
    """How cluster nodes reach this server: its address, or this machine's name where it listens on all."""
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = socket.gethostname()
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def _startup(state: ServerState) -> None:
    settings = state.settings
    log.info("server config env=%s", settings.as_env_map())
    if not settings.auth_enabled and not is_loopback_address(settings.host):
        log.warning("listening on %s without API keys: anyone who can reach this address can use every model "
                    "and change the store; set CORRAL_API_KEYS or CORRAL_API_KEYS_FILE", settings.host)
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

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

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
            seconds = time.perf_counter() - t0
            log_request(scope, status, seconds)
            self.state.metrics.request(scope, status, seconds)


def create_app(settings: Settings | None = None, *, state: ServerState | None = None) -> ASGIApp:
    settings = settings or Settings.from_env()
    state = state or build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        _startup(state)
        await state.scheduler.backend.start()
        app.state.corral = state
        try:
            yield
        finally:
            await state.scheduler.shutdown()

    # /v1/messages (Anthropic) is matched before OpenAI's /v1 routes; each family answers in its own envelope
    routes = [*ollama.routes(), *anthropic.routes(), *openai.routes(),
              Route("/metrics", metrics_endpoint, methods=["GET"])]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(_Unhandled, state=state), Middleware(with_api_keys, settings=settings)],
                    exception_handlers={APIError: _api_error, HTTPException: _http_error})
    app.state.corral = state
    # CORS outside the host guard, as Ollama orders them: a browser's preflight gets its Access-Control
    # headers before the guard looks at the Host. The key check is inside the request log, so a refusal is
    # logged (and counted) as any other answer.
    return CORSMiddleware(HostGuardMiddleware(app, bind_host=settings.host), extra_origins=settings.origins)


MAX_CONNECTIONS = 4096  # open connections and running requests together


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    """Run the server; on ``sock`` when given (already bound and listening, so a taken port was reported
    before anything here ran), else on the settings' address."""
    import uvicorn

    configure_logging(settings)
    state = build_state(settings)
    try:
        state.scheduler.backend.connect()
    except Exception as exc:
        print(f"Error: cannot join the Ray cluster at {settings.cluster}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    app = create_app(settings, state=state)
    from corral.server.conn import GuardedHttpProtocol, raise_descriptor_limit

    raise_descriptor_limit()
    # stalled connections are closed (corral.server.conn); past MAX_CONNECTIONS new requests get a 503
    # log_config None: uvicorn's few lines go through the server's own handler and format (JSON included)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", log_config=None,
                            access_log=settings.debug, timeout_graceful_shutdown=5, lifespan="on",
                            http=GuardedHttpProtocol, limit_concurrency=MAX_CONNECTIONS)
    server = uvicorn.Server(config)
    log.info("Listening on %s:%d (version corral, Ollama API)", settings.host, settings.port)
    server.run(sockets=[sock] if sock is not None else None)
