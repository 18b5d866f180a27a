"""Errors of the registry client, each with the text the user sees in ``{"error": ...}``.

::

    RegistryError                 anything that stops a pull or a push; ``str()`` is the message
     ├── InsecureProtocol         an ``http://`` registry without ``insecure`` ("insecure protocol http")
     ├── RegistryUnreachable      no connection at all (DNS, refused, timeout): fails fast, never hangs
     ├── RegistryResponseError    the registry answered an error status; ``status`` and its
     │    │                       ``{"errors": [...]}`` entries, joined into one line
     │    ├── ManifestNotFound    404 on a manifest: Ollama's "file does not exist"
     │    └── Unauthorized        401 after trying every credential we have
     └── BlobDigestMismatch       downloaded bytes hash to another digest (Ollama's text)

Messages never contain credentials: headers and URLs with a user-info part are never formatted
into them.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "BlobDigestMismatch",
    "InsecureProtocol",
    "ManifestNotFound",
    "RegistryError",
    "RegistryResponseError",
    "RegistryUnreachable",
    "Unauthorized",
    "describe_errors",
]


class RegistryError(Exception):
    """Base class; ``str(exc)`` is what the API returns as ``error``."""


class InsecureProtocol(RegistryError):
    def __init__(self) -> None:
        super().__init__("insecure protocol http")


class RegistryUnreachable(RegistryError):
    pass


class RegistryResponseError(RegistryError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ManifestNotFound(RegistryResponseError):
    def __init__(self) -> None:
        # Ollama turns a manifest 404 into os.ErrNotExist, whose text this is; the pull adds its prefix.
        super().__init__(404, "file does not exist")


class Unauthorized(RegistryResponseError):
    def __init__(self, message: str) -> None:
        super().__init__(401, message)


class BlobDigestMismatch(RegistryError):
    def __init__(self, want: str, got: str) -> None:
        super().__init__(f"digest mismatch, file must be downloaded again: want {want}, got {got}")
        self.want = want
        self.got = got


def _code_text(code: str) -> str:
    # distribution's errcode: MANIFEST_BLOB_UNKNOWN -> "manifest blob unknown", as docker prints it
    return code.replace("_", " ").lower()


def describe_errors(status: int, body: bytes) -> str:
    """One line from a registry error body.

    OCI registries answer ``{"errors": [{"code", "message", "detail"}]}``; each entry becomes
    ``"<code words>: <message>"`` (plus a string ``detail``), joined with ``"; "``.  Anything else
    falls back to Ollama's ``"<status>: <body>"``.
    """
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = None
    entries = parsed.get("errors") if isinstance(parsed, dict) else None
    parts: list[str] = []
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            code = str(entry.get("code") or "").strip()
            message = str(entry.get("message") or "").strip()
            text = ": ".join(p for p in (_code_text(code), message) if p)
            detail = entry.get("detail")
            if isinstance(detail, str) and detail and detail not in text:
                text = f"{text} ({detail})" if text else detail
            if text:
                parts.append(text)
    if parts:
        return "; ".join(parts)
    text = body.decode("utf-8", "replace").strip()
    return f"{status}: {text}" if text else str(status)
