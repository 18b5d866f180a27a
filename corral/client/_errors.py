"""The SDK's own exceptions.

Two classes, as in ollama-python; everything else surfaces as a builtin:

    Exception
    ├── RequestError      a request that could not be built (kept for compatibility; never raised here)
    ├── ResponseError     the server answered with an error status or an in-stream ``{"error": ...}`` line
    ├── ConnectionError   (builtin) the server could not be reached at all
    └── ValueError        (builtin, incl. pydantic's ValidationError) invalid arguments or image data
"""

from __future__ import annotations

import json


class RequestError(Exception):
    """A request the client refused to send."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error
        "Why the request was refused."


class ResponseError(Exception):
    """The server reported a failure.

    ``status_code`` is the HTTP status, or ``-1`` for an error that arrived inside a stream whose
    headers already said 200. A body of the form ``{"error": "..."}`` is unwrapped to its message.
    """

    def __init__(self, error: str, status_code: int = -1) -> None:
        error = _unwrap_error_body(error)
        super().__init__(error)
        self.error = error
        "The server's message."
        self.status_code = status_code
        "HTTP status of the response (``-1`` for in-stream errors)."

    def __str__(self) -> str:
        return f"{self.error} (status code: {self.status_code})"


def _unwrap_error_body(text: str) -> str:
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        return text
    if isinstance(body, dict) and "error" in body:
        message = body["error"]
        return message if isinstance(message, str) else json.dumps(message)
    return text
