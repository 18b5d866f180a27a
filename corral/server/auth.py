"""API keys: with ``CORRAL_API_KEYS`` or ``CORRAL_API_KEYS_FILE`` set, every request needs one.

Ollama has no authentication and tells its users to put a proxy in front (its issues #1053, #849, #12476).
corral checks a key itself, as the clients already send one:

- ``Authorization: Bearer <key>``: the ``openai`` SDK (``api_key``), ollama-python and corral's SDK (from
  ``OLLAMA_API_KEY``, or ``headers``), corral's CLI;
- ``x-api-key: <key>``: the ``anthropic`` SDK.

``GET``/``HEAD /`` (the liveness probe, "Ollama is running") and ``OPTIONS`` (a browser's preflight, answered
by the CORS layer outside this one) need no key. A refusal is a 401 in the family's envelope with the message
``unauthorized``. Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`, every key every time,
so neither a key's content nor its length shows in the time an answer takes. No key is ever logged.

A keys file is read again when its size, mtime or inode changes (a ``stat`` a request, no restart needed); a
file that cannot be read refuses every request (it fails closed) and says so in the log once a change.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.anthropic.messages import anthropic_envelope
from corral.api.openai.common import openai_envelope
from corral.config import Settings, parse_api_keys
from corral.server.core.stream import error_response, ollama_envelope

__all__ = ["APIKeyMiddleware", "KeyRing", "envelope_for"]

log = logging.getLogger("corral.auth")

UNAUTHORIZED = "unauthorized"


def _digest(key: str | bytes) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key).digest()


class KeyRing:
    """The accepted keys (as digests): the environment's, plus the file's as it is now."""

    def __init__(self, keys: list[str], path: Path | None = None) -> None:
        self.fixed = [_digest(k) for k in keys]
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._from_file: list[bytes] = []
        self._file_ok = path is None

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp == self._stamp:
                return
            keys = parse_api_keys(self.path.read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            if self._file_ok or self._stamp is not None:
                log.warning("cannot read the API keys file %s (%s): every request is refused until it can",
                            self.path, exc.strerror or exc)
            self._stamp, self._from_file, self._file_ok = None, [], False
            return
        self._stamp, self._from_file, self._file_ok = stamp, [_digest(k) for k in keys], True
        log.info("read %d API key(s) from %s", len(keys), self.path)

    def accepts(self, key: bytes | None) -> bool:
        self._refresh()
        if key is None:
            return False
        offered = _digest(key)
        ok = False
        for known in (*self.fixed, *self._from_file):
            ok |= hmac.compare_digest(offered, known)  # no early exit: every key is compared
        return ok


def offered_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries: a bearer token, else Anthropic's ``x-api-key``."""
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key" and value.strip():
            api_key = value.strip()
    return bearer if bearer is not None else api_key


def envelope_for(path: str) -> Callable[[int, str], Any]:
    """The error envelope of the API family a path belongs to."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic_envelope
    if path.startswith("/v1/"):
        return openai_envelope
    return ollama_envelope


class APIKeyMiddleware:
    """Refuses requests without an accepted key (pure ASGI: streams pass through untouched)."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._exempt(scope) or self.keys.accepts(offered_key(scope["headers"])):
            await self.app(scope, receive, send)
            return
        response = error_response(401, UNAUTHORIZED, envelope_for(scope["path"]))
        response.headers["WWW-Authenticate"] = 'Bearer realm="corral"'
        await response(scope, receive, send)

    @staticmethod
    def _exempt(scope: Scope) -> bool:
        method = scope["method"]
        return method == "OPTIONS" or (scope["path"] == "/" and method in ("GET", "HEAD"))


def with_api_keys(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the key check when keys are configured; else ``app`` itself."""
    if not settings.auth_enabled:
        return app
    return APIKeyMiddleware(app, KeyRing(settings.api_keys, settings.api_keys_file))
