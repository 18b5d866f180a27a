"""CORS as Ollama configures gin-contrib/cors (``server/routes.go``, ``envconfig.AllowedOrigins``).

Allowed origins are ``OLLAMA_ORIGINS`` (passed in as ``extra_origins``) followed by the defaults:
``http(s)://localhost``, ``127.0.0.1`` and ``0.0.0.0`` with or without any port, then ``app://*``,
``file://*``, ``tauri://*``, ``vscode-webview://*`` and ``vscode-file://*``. The middleware then
behaves as gin-contrib/cors (v1.7) with ``AllowWildcard`` and ``AllowBrowserExtensions``:

- No ``Origin`` header, or an ``Origin`` equal to ``http://`` / ``https://`` + ``Host``
  (same-origin ``fetch``): not a CORS request, passed through untouched.
- Origin allowed when: some configured origin is ``*`` (then ``Access-Control-Allow-Origin: *``);
  it equals a configured origin (compared lower-cased, trimmed); or it matches a wildcard origin.
  A wildcard origin holds exactly one ``*`` anywhere: ``*.example.com`` is a suffix match,
  ``https://app.*`` a prefix match, ``http://localhost:*`` both around the star.
- Origin not allowed: 403 with an empty body, whatever the method.
- ``OPTIONS`` with an allowed origin is a preflight, answered here with 204 and
  ``Access-Control-Allow-Methods``/``-Headers``/``-Max-Age`` (12 h), ``Vary`` and
  ``Access-Control-Allow-Origin``. gin does not look at ``Access-Control-Request-*``; neither do we.
- Other methods go to the app, and its response gets ``Vary: Origin`` and
  ``Access-Control-Allow-Origin: <origin>``.

Configuration errors fail at construction, as Ollama refuses to start (gin panics): an origin
with two ``*``, or one without ``*`` whose scheme is not http(s) or a browser extension's.

One difference: gin-contrib up to v1.7.2 cut the character before a trailing ``*`` (so
``http://localhost:*`` also matched ``http://localhost.evil.example``); corral matches the
prefix as written (``http://localhost:``), as gin-contrib does since the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.server.guard import ASGIApp, ASGIMessage, Receive, Scope, Send

__all__ = ["ALLOW_HEADERS", "ALLOW_METHODS", "DEFAULT_ORIGINS", "CORSMiddleware", "parse_origins_env"]

DEFAULT_ORIGINS: tuple[str, ...] = (
    *(
        origin
        for host in ("localhost", "127.0.0.1", "0.0.0.0")
        for origin in (f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*")
    ),
    "app://*",
    "file://*",
    "tauri://*",
    "vscode-webview://*",
    "vscode-file://*",
)

ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# Ollama's list, as gin writes it: http.CanonicalHeaderKey of each, joined by ","
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "User-Agent",
    "Accept",
    "X-Requested-With",
    "Openai-Beta",
    "X-Stainless-Arch",
    "X-Stainless-Async",
    "X-Stainless-Custom-Poll-Interval",
    "X-Stainless-Helper-Method",
    "X-Stainless-Lang",
    "X-Stainless-Os",
    "X-Stainless-Package-Version",
    "X-Stainless-Poll-Helper",
    "X-Stainless-Retry-Count",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Timeout",
)

MAX_AGE_SECONDS = 12 * 3600

_SCHEMES = (
    "http://",
    "https://",
    "chrome-extension://",
    "safari-extension://",
    "moz-extension://",
    "ms-browser-extension://",
)


def parse_origins_env(value: str | None) -> list[str]:
    """``OLLAMA_ORIGINS`` to a list: trimmed of spaces and quotes (Ollama's ``envconfig.Var``),
    split on commas, each item trimmed, empty items dropped.
    """
    if not value:
        return []
    value = value.strip().strip("\"'")
    return [item.strip() for item in value.split(",") if item.strip()]


class CORSMiddleware:
    """CORS for browsers (module docstring). ``extra_origins`` is ``OLLAMA_ORIGINS``, already split."""

    def __init__(self, app: ASGIApp, extra_origins: Iterable[str] = ()) -> None:
        self.app = app
        origins = [o.strip() for o in extra_origins if o.strip()] + list(DEFAULT_ORIGINS)
        for origin in origins:
            if origin.count("*") > 1:
                raise ValueError(f"invalid CORS origin {origin!r}: only one * is allowed")
            if "*" not in origin and not origin.startswith(_SCHEMES):
                raise ValueError(
                    f"invalid CORS origin {origin!r}: origins must contain '*' or include " + ",".join(_SCHEMES)
                )
        self.origins = origins
        self.allow_all = "*" in origins
        self.exact = {o.lower() for o in origins if "*" not in o}
        self.wildcards = [tuple(o.split("*", 1)) for o in origins if "*" in o]
        self.preflight_headers = [
            (b"access-control-allow-methods", ",".join(ALLOW_METHODS).encode()),
            (b"access-control-allow-headers", ",".join(ALLOW_HEADERS).encode()),
            (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
        ]
        if self.allow_all:
            self.preflight_headers.append((b"access-control-allow-origin", b"*"))
            self.normal_headers = [(b"access-control-allow-origin", b"*")]
        else:
            self.preflight_headers += [
                (b"vary", b"Origin"),
                (b"vary", b"Access-Control-Request-Method"),
                (b"vary", b"Access-Control-Request-Headers"),
            ]
            self.normal_headers = [(b"vary", b"Origin")]

    def is_allowed(self, origin: str) -> bool:
        if self.allow_all or origin in self.exact:
            return True
        for prefix, suffix in self.wildcards:
            if (not prefix and origin.endswith(suffix)) or (not suffix and origin.startswith(prefix)):
                return True
            if origin.startswith(prefix) and origin.endswith(suffix) and len(origin) >= len(prefix) + len(suffix):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = host = ""
        for name, value in scope.get("headers") or ():
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        if not origin or origin in (f"http://{host}", f"https://{host}"):
            await self.app(scope, receive, send)
            return
        if not self.is_allowed(origin):
            await _empty(send, 403, [(b"content-length", b"0")])
            return
        allow_origin = [] if self.allow_all else [(b"access-control-allow-origin", origin.encode("latin-1"))]
        if scope["method"] == "OPTIONS":
            await _empty(send, 204, self.preflight_headers + allow_origin)
            return
        extra = self.normal_headers + allow_origin

        async def send_with_cors(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": b""})
