"""Connections that stall: a socket that never sends a request, or sends half of one, is closed after a while.

uvicorn arms a timer only between two requests of a kept-alive connection; until a request has fully
arrived nothing bounds the wait, so ~1000 silent sockets held every descriptor and the server refused
everyone. Here a connection must finish its request's headers within ``CORRAL_HEADER_TIMEOUT`` seconds
(default 10) of opening or of starting the request, and may then go at most ``CORRAL_BODY_IDLE_TIMEOUT``
seconds (default 60) without sending any of its body. Once the request is in, the server takes as long as the
answer takes (a long generation is not a stall). While the server itself has paused reading (an upload
faster than the store takes it), the client is not blamed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GuardedHttpProtocol", "raise_descriptor_limit"]

log = logging.getLogger("corral.server")


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout = _seconds("CORRAL_HEADER_TIMEOUT", 10.0)
    body_idle_timeout = _seconds("CORRAL_BODY_IDLE_TIMEOUT", 60.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall_timer: asyncio.TimerHandle | None = None
        self._reading = False
        self._headers_in = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._begin()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading and self._headers_in:
            self._arm(self.body_idle_timeout)  # the body is arriving: wait for its next part from now

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begin()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._headers_in = True
        if self._reading:
            self._arm(self.body_idle_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _begin(self) -> None:
        if not self._reading:
            self._reading, self._headers_in = True, False
            self._arm(self.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._stall_timer = self.loop.call_later(seconds, self._stalled)

    def _disarm(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _stalled(self) -> None:
        self._stall_timer = None
        if not self._reading or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            self._arm(self.body_idle_timeout)  # we stopped reading, not the client
            return
        what = "its request's body" if self._headers_in else "a request"
        log.info("closing a connection from %s that stalled sending %s", self.client, what)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def raise_descriptor_limit() -> None:
    """Every connection holds a descriptor: use all the process may have, not the shell's default 1024."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = max(soft, 65536)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.debug("descriptor limit unchanged: %s", exc)
