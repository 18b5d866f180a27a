"""A recording reverse proxy for SDK tests: what a client sent and what the server answered, exchange by exchange.

Responses are relayed chunk by chunk as they arrive (chunked transfer encoding), so a streamed answer stays
a stream for the client; a client that hangs up mid-stream is let go quietly.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response: bytearray = field(default_factory=bytearray)

    def request_json(self) -> Any:
        return json.loads(self.body)

    def parts(self) -> list[dict[str, Any]]:
        """The response as JSON objects: one for a plain response, one per line for a stream."""
        return [json.loads(line) for line in bytes(self.response).splitlines() if line.strip()]


class Recorder:
    """``with Recorder(target) as rec``: ``rec.host`` to point a client at, ``rec.exchanges`` afterwards."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def to(self, path: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                exchange = Exchange(self.command, self.path, headers, body)
                with recorder._lock:
                    recorder.exchanges.append(exchange)
                forward = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
                with httpx.stream(self.command, recorder.target + self.path, content=body, headers=forward,
                                  timeout=300) as r:
                    exchange.status = r.status_code
                    self.send_response(r.status_code)
                    for k, v in r.headers.items():
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding":
                            self.send_header(k, v)
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    try:
                        for chunk in r.iter_bytes():
                            exchange.response += chunk
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True

            do_GET = do_POST = do_DELETE = _relay  # noqa: N815

        return Handler
