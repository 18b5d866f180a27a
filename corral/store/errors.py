"""Errors raised by the model store.

::

    StoreError
     ├── InvalidModelName   (also ValueError)  a name that does not parse, or would leave the store
     ├── InvalidDigest      (also ValueError)  not ^sha256[:-][0-9a-fA-F]{64}$
     ├── DigestMismatch                        streamed bytes hash to another digest
     ├── InvalidManifest    (also ValueError)  manifest or config bytes that are not what we expect
     ├── GGUFError          (also ValueError)  a file that is not a readable GGUF
     ├── ModelNotFound      (also LookupError) no manifest for that name
     └── ModelExists                           create without overwrite on an existing name

The server maps each one once to an HTTP status and ``{"error": ...}``; the texts of
``InvalidDigest`` and ``DigestMismatch`` are Ollama's own.
"""

from __future__ import annotations

__all__ = [
    "DigestMismatch",
    "GGUFError",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidModelName",
    "MissingBlob",
    "ModelExists",
    "ModelNotFound",
    "StoreError",
]


class StoreError(Exception):
    """Base class of every error the store raises."""


class InvalidModelName(StoreError, ValueError):
    def __init__(self, name: str, reason: str = "invalid model name") -> None:
        super().__init__(f"{reason}: {name!r}")
        self.name = name
        self.reason = reason


class InvalidDigest(StoreError, ValueError):
    def __init__(self, digest: str) -> None:
        # Ollama answers 400 "invalid digest format" for a bad blob digest.
        super().__init__("invalid digest format")
        self.digest = digest


class DigestMismatch(StoreError):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f'digest mismatch, expected "{expected}", got "{got}"')
        self.expected = expected
        self.got = got


class InvalidManifest(StoreError, ValueError):
    pass


class GGUFError(StoreError, ValueError):
    pass


class ModelNotFound(StoreError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found")
        self.name = name


class ModelExists(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' already exists")
        self.name = name


class MissingBlob(StoreError):
    """A manifest about to be written names a blob the store no longer holds: a model it was built from (or
    copied from) was deleted meanwhile, and its blobs with it."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"a blob of this model was removed while it was written (was the model it is made "
                         f"from deleted meanwhile?): {digest}")
        self.digest = digest
