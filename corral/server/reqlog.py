"""The server's log: Ollama's line format (``time=… level=… source=… msg=…``) or one JSON object a line
(``CORRAL_LOG_FORMAT=json``), at the level ``OLLAMA_DEBUG`` sets; and the request log, one line a request.

A request's line says its status, duration, client, method and path, as Ollama's request log does, and the
model it named when it named one (read from its body by :func:`read_body`, or from the path).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Scope

from corral.api.parse import parse_body
from corral.config import Settings

__all__ = ["configure_logging", "log_request", "note_model", "read_body"]

access_log = logging.getLogger("corral.access")

M = TypeVar("M", bound=BaseModel)
MODEL_KEY = "corral.model"
MAX_LOGGED_NAME = 200  # a name longer than any real one is cut: a log line is not a place for a 1 MB string


async def read_body(request: Request, model_cls: type[M]) -> M:
    """The request's body, validated as ``model_cls``; its model's name is kept for the request's log line."""
    req = parse_body(model_cls, await request.body())
    name = getattr(req, "model", None) or getattr(req, "name", None)
    if isinstance(name, str) and name:
        note_model(request.scope, name)
    return req


def note_model(scope: Scope, name: str) -> None:
    scope.setdefault("state", {})[MODEL_KEY] = name[:MAX_LOGGED_NAME]


def log_request(scope: Scope, status: int, seconds: float) -> None:
    client = scope.get("client") or ("", 0)
    model = scope.get("state", {}).get(MODEL_KEY, "")
    fields = {"status": status, "duration": round(seconds, 6), "client": client[0],
              "method": scope.get("method"), "path": scope.get("path")}
    if model:
        fields["model"] = model
    access_log.info('%3d | %12s | %15s | %-7s "%s"%s', status, go_duration(seconds), client[0], scope.get("method"),
                    scope.get("path"), f" model={json.dumps(model, ensure_ascii=False)}" if model else "",
                    extra={"fields": fields})


def go_duration(seconds: float) -> str:
    """A duration as Go prints one: 1.234ms, 56.7µs, 2.5s."""
    if seconds >= 1:
        return f"{seconds:.6g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6g}ms"
    return f"{seconds * 1e6:.6g}µs"


TEXT_FORMAT = "time=%(asctime)s level=%(levelname)s source=%(name)s msg=%(message)s"


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339, UTC), level, source, msg, and a record's structured fields
    (the request log's status, duration, client, method, path and model)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "source": record.name, "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
