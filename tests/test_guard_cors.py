"""The host guard and CORS middlewares, driven directly with a tiny inner ASGI app."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from corral.server.cors import ALLOW_HEADERS, DEFAULT_ORIGINS, CORSMiddleware, parse_origins_env
from corral.server.guard import HostGuardMiddleware, classify_host, is_loopback_address, split_host_port

HOSTNAME = "mybox"


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def options(request: Request) -> Response:
    return PlainTextResponse("inner options", status_code=200)


async def stream(request: Request) -> Response:
    async def chunks() -> Any:
        for i in range(3):
            yield f'{{"n":{i}}}\n'.encode()

    return StreamingResponse(chunks(), media_type="application/x-ndjson")


INNER = Starlette(
    routes=[
        Route("/", hello, methods=["GET", "POST"]),
        Route("/", options, methods=["OPTIONS"]),
        Route("/stream", stream),
    ]
)


class Client:
    """A synchronous face on httpx's ASGI transport (the whole body is read before returning)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost:11434") as http:
                return await http.request(method, path, headers=headers)

        return asyncio.run(go())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("POST", path, headers)

    def options(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("OPTIONS", path, headers)


def client(app: Any) -> Client:
    return Client(app)


# --- host guard: the pure functions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("hostport", "host"),
    [
        ("localhost:11434", "localhost"),
        ("localhost", "localhost"),
        ("localhost:", "localhost"),
        ("127.0.0.1:11434", "127.0.0.1"),
        ("[::1]:11434", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[fe80::1%eth0]:80", "fe80::1%eth0"),
        ("a:b:c", "a:b:c"),
        ("", ""),
    ],
)
def test_split_host_port(hostport: str, host: str) -> None:
    assert split_host_port(hostport) == host


@pytest.mark.parametrize(
    ("host", "verdict"),
    [
        ("", "name"),
        ("localhost", "name"),
        ("LOCALHOST:11434", "name"),
        ("MyBox:11434", "name"),
        ("app.localhost", "name"),
        ("printer.local:631", "name"),
        ("svc.internal", "name"),
        ("127.0.0.1:11434", "ip"),
        ("127.9.9.9", "ip"),
        ("[::1]:11434", "ip"),
        ("0.0.0.0:11434", "ip"),
        ("[::]:11434", "ip"),
        ("10.1.2.3", "ip"),
        ("172.16.0.1", "ip"),
        ("172.31.255.255", "ip"),
        ("192.168.1.20:11434", "ip"),
        ("[fd00::1]:11434", "ip"),
        ("169.254.1.1", "ip"),
        ("[fe80::1%25eth0]:11434", "ip"),
        ("[::ffff:127.0.0.1]:11434", "ip"),
        ("evil.example", None),
        ("evil.example:11434", None),
        ("localhost.evil.example", None),
        ("evil-localhost", None),
        ("local", None),
        ("172.32.0.1", None),
        ("8.8.8.8:11434", None),
        ("[2001:4860:4860::8888]:11434", None),
        ("mybox.example", None),
    ],
)
def test_classify_host(host: str, verdict: str | None) -> None:
    assert classify_host(host, HOSTNAME) == verdict


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("", False),
        ("no-such-host.invalid", True),  # cannot tell: stay guarded
    ],
)
def test_is_loopback_address(bind: str, loopback: bool) -> None:
    assert is_loopback_address(bind) is loopback


# --- host guard: over HTTP ------------------------------------------------------------------


@pytest.fixture
def guarded() -> Client:
    return client(HostGuardMiddleware(INNER, bind_host="127.0.0.1", hostname=HOSTNAME))


@pytest.mark.parametrize("host", ["localhost:11434", "127.0.0.1:11434", "[::1]:11434", "mybox", "x.localhost"])
def test_guard_allows_local_hosts(guarded: Client, host: str) -> None:
    response = guarded.get("/", headers={"host": host})
    assert response.status_code == 200 and response.text == "hello"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:11434", "localhost.evil.example", "8.8.8.8"])
def test_guard_refuses_other_hosts_with_empty_403(guarded: Client, host: str) -> None:
    for method in ("GET", "POST", "OPTIONS"):
        response = guarded.request(method, "/", headers={"host": host})
        assert response.status_code == 403
        assert response.content == b""


def test_guard_answers_options_for_local_names_only(guarded: Client) -> None:
    named = guarded.options("/", headers={"host": "localhost:11434"})
    assert named.status_code == 204 and named.content == b""
    # an IP literal goes on to the app, as in Ollama
    literal = guarded.options("/", headers={"host": "127.0.0.1:11434"})
    assert literal.status_code == 200 and literal.text == "inner options"


def test_guard_is_off_for_non_loopback_listeners() -> None:
    for bind in ("0.0.0.0", "192.168.1.5", "::"):
        c = client(HostGuardMiddleware(INNER, bind_host=bind, hostname=HOSTNAME))
        assert c.get("/", headers={"host": "evil.example"}).status_code == 200


def test_guard_passes_streams_through(guarded: Client) -> None:
    response = guarded.get("/stream", headers={"host": "localhost"})
    assert response.status_code == 200 and response.text.splitlines() == ['{"n":0}', '{"n":1}', '{"n":2}']


async def _run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(host: str, server: tuple[str, int] | None, method: str = "GET", kind: str = "http") -> dict[str, Any]:
    scope: dict[str, Any] = {"type": kind, "method": method, "path": "/", "headers": [(b"host", host.encode())]}
    if server is not None:
        scope["server"] = server
    return scope


def test_guard_without_bind_host_judges_each_connection() -> None:
    guard = HostGuardMiddleware(_inner, hostname=HOSTNAME)
    over_loopback = asyncio.run(_run(guard, _scope("evil.example", ("127.0.0.1", 11434))))
    assert over_loopback[0]["status"] == 403
    over_lan = asyncio.run(_run(guard, _scope("evil.example", ("192.168.1.5", 11434))))
    assert over_lan[0]["status"] == 200
    unknown_listener = asyncio.run(_run(guard, _scope("evil.example", None)))
    assert unknown_listener[0]["status"] == 403


def test_guard_closes_foreign_websockets_and_ignores_lifespan() -> None:
    guard = HostGuardMiddleware(_inner, bind_host="127.0.0.1", hostname=HOSTNAME)
    sent = asyncio.run(_run(guard, _scope("evil.example", None, kind="websocket")))
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert asyncio.run(_run(guard, {"type": "lifespan"})) == []


def test_guard_uses_the_machine_hostname_by_default() -> None:
    guard = HostGuardMiddleware(_inner, bind_host="127.0.0.1")
    sent = asyncio.run(_run(guard, _scope(socket.gethostname().upper() + ":11434", None)))
    assert sent[0]["status"] == 200


# --- CORS -----------------------------------------------------------------------------------


def _headers(response: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        out.setdefault(name.lower(), []).append(value)
    return out


@pytest.fixture
def cors() -> Client:
    return client(CORSMiddleware(INNER, extra_origins=["https://example.com", "https://*.example.org"]))


def test_no_origin_is_not_cors(cors: Client) -> None:
    response = cors.get("/")
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    assert "vary" not in response.headers


def test_same_origin_fetch_is_not_cors(cors: Client) -> None:
    response = cors.get("/", headers={"origin": "http://localhost:11434", "host": "localhost:11434"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost",
        "https://localhost",
        "http://localhost:3000",
        "https://127.0.0.1:8443",
        "http://0.0.0.0:8080",
        "app://obsidian.md",
        "file://",
        "tauri://localhost",
        "vscode-webview://abc123",
        "vscode-file://vscode-app",
        "https://example.com",
        "https://a.example.org",
    ],
)
def test_allowed_origin_gets_headers(cors: Client, origin: str) -> None:
    response = cors.post("/", headers={"origin": origin})
    assert response.status_code == 200 and response.text == "hello"
    headers = _headers(response)
    assert headers["access-control-allow-origin"] == [origin]
    assert headers["vary"] == ["Origin"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "https://example.com.evil",
        "https://example.org",
        "null",
        "chrome-extension://abcdef",
    ],
)
def test_disallowed_origin_is_403(cors: Client, origin: str) -> None:
    for method in ("GET", "POST", "OPTIONS"):
        response = cors.request(method, "/", headers={"origin": origin})
        assert response.status_code == 403 and response.content == b""
        assert "access-control-allow-origin" not in response.headers


def test_preflight_is_answered_with_204(cors: Client) -> None:
    response = cors.options(
        "/",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204 and response.content == b""
    headers = _headers(response)
    assert headers["access-control-allow-origin"] == ["http://localhost:5173"]
    assert headers["access-control-allow-methods"] == ["GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"]
    allowed = headers["access-control-allow-headers"][0].split(",")
    assert allowed == list(ALLOW_HEADERS)
    assert {"Authorization", "Content-Type", "Openai-Beta", "X-Stainless-Timeout"} <= set(allowed)
    assert headers["access-control-max-age"] == ["43200"]
    assert headers["vary"] == ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]


def test_streams_keep_flowing_with_cors(cors: Client) -> None:
    response = cors.get("/stream", headers={"origin": "http://localhost:3000"})
    assert response.text.splitlines() == ['{"n":0}', '{"n":1}', '{"n":2}']
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert response.headers["content-type"].startswith("application/x-ndjson")


def test_star_allows_every_origin() -> None:
    c = client(CORSMiddleware(INNER, extra_origins=["*"]))
    response = c.get("/", headers={"origin": "https://anything.example"})
    assert response.status_code == 200
    assert _headers(response)["access-control-allow-origin"] == ["*"]
    assert "vary" not in response.headers
    preflight = c.options("/", headers={"origin": "https://anything.example"})
    assert preflight.status_code == 204
    assert _headers(preflight)["access-control-allow-origin"] == ["*"]


@pytest.mark.parametrize(
    ("pattern", "origin", "allowed"),
    [
        ("chrome-extension://*", "chrome-extension://abcdef", True),
        ("moz-extension://*", "moz-extension://1234", True),
        ("*.example.net", "https://a.b.example.net", True),
        ("*.example.net", "https://example.net", False),
        ("https://*.example.net", "https://x.example.net", True),
        ("https://*.example.net", "http://x.example.net", False),
        ("http://192.168.1.*", "http://192.168.1.20", True),
        ("http://192.168.1.*", "http://192.168.10.20", False),
        ("https://ab*ba", "https://aba", False),
        ("https://Example.NET", "https://example.net", True),
    ],
)
def test_extra_origins_with_wildcards(pattern: str, origin: str, allowed: bool) -> None:
    assert CORSMiddleware(INNER, extra_origins=[pattern]).is_allowed(origin) is allowed


@pytest.mark.parametrize("bad", ["https://*.*.example", "example.com", "ftp://files.example", "HTTPS://a.example"])
def test_bad_origins_fail_at_construction(bad: str) -> None:
    with pytest.raises(ValueError):
        CORSMiddleware(INNER, extra_origins=[bad])


def test_defaults_and_env_parsing() -> None:
    assert "http://localhost:*" in DEFAULT_ORIGINS and "vscode-file://*" in DEFAULT_ORIGINS
    assert len(DEFAULT_ORIGINS) == 17
    assert parse_origins_env(None) == [] and parse_origins_env("  ") == []
    assert parse_origins_env(' "https://a.example, chrome-extension://*,,moz-extension://*" ') == [
        "https://a.example",
        "chrome-extension://*",
        "moz-extension://*",
    ]


def test_cors_outside_guard_answers_browser_preflights() -> None:
    # Ollama's order: CORS first, so a preflight to a local name gets CORS headers, not a bare 204
    app = CORSMiddleware(HostGuardMiddleware(INNER, bind_host="127.0.0.1", hostname=HOSTNAME), extra_origins=[])
    c = client(app)
    preflight = c.options("/", headers={"origin": "http://localhost:3000", "host": "localhost:11434"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    foreign = c.get("/", headers={"origin": "http://localhost:3000", "host": "evil.example"})
    assert foreign.status_code == 403
    assert foreign.headers["access-control-allow-origin"] == "http://localhost:3000"
