"""The errors a route can answer with, each mapped once to a status and ``{"error": message}``.

::

    APIError(status, message)          any error the client should see, as {"error": message}
    ├── BadRequest        400          malformed request, unsupported capability, bad option
    ├── Forbidden         403          (the host guard answers 403 itself, with an empty body)
    ├── NotFound          404          unknown model or blob
    ├── RequestCanceled   499          "request canceled": the client left while queued
    ├── InternalError     500          anything unexpected; also Ollama's "pull model manifest" 500
    └── ServerBusy        503          "server busy, please try again.  maximum pending requests exceeded"

Messages are Ollama's own texts wherever Ollama has one (``docs`` of the reference, §1.9), so
clients that match on them (the CLI's "try pulling it first", LangChain's "not found") keep
working. The helper constructors below are the one place those texts are spelled.

Before any byte of a response is sent, the server answers ``status`` with ``to_wire()``; in the
middle of an NDJSON stream the status is already 200, so it writes ``to_wire()`` as a last line.
"""

from __future__ import annotations

from corral.gocodec import quote as go_quote

__all__ = [
    "APIError",
    "BadRequest",
    "Forbidden",
    "InternalError",
    "NotFound",
    "RequestCanceled",
    "ServerBusy",
    "context_exceeded",
    "create_missing_source",
    "digest_mismatch",
    "does_not_support",
    "does_not_support_full",
    "file_path_not_relative",
    "input_too_long",
    "invalid_digest",
    "invalid_input_type",
    "invalid_model_name",
    "missing_body",
    "model_not_found",
    "model_not_found_copy",
    "model_not_found_pull",
    "model_required",
    "name_invalid",
    "pull_manifest_not_found",
    "raw_mode_conflict",
    "source_invalid",
    "template_error",
    "top_logprobs_range",
]


class APIError(Exception):
    """An error with an HTTP status and a message for the client."""

    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def to_wire(self) -> dict[str, str]:
        return {"error": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class BadRequest(APIError):
    status = 400


class Forbidden(APIError):
    status = 403


class NotFound(APIError):
    status = 404


class RequestCanceled(APIError):
    status = 499

    def __init__(self, message: str = "request canceled") -> None:
        super().__init__(message)


class InternalError(APIError):
    status = 500


class ServerBusy(APIError):
    status = 503

    def __init__(self, message: str = "server busy, please try again.  maximum pending requests exceeded") -> None:
        super().__init__(message)


# --- Ollama's catalogue (reference §1.9). Names are the Go %q / %s forms Ollama uses. ---


def missing_body() -> BadRequest:
    """Any POST whose body is empty."""
    return BadRequest("missing request body")


def model_required() -> BadRequest:
    """chat, generate, show, push, embeddings, delete: no (valid) model name given."""
    return BadRequest("model is required")


def invalid_model_name() -> BadRequest:
    """create, pull: the name does not parse."""
    return BadRequest("invalid model name")


def model_not_found(name: str) -> NotFound:
    """generate, chat, show, delete: ``model 'NAME' not found`` (single quotes, unescaped)."""
    return NotFound(f"model '{name}' not found")


def model_not_found_pull(name: str) -> NotFound:
    """embed and scheduler paths: ``model "NAME" not found, try pulling it first``."""
    return NotFound(f"model {go_quote(name)} not found, try pulling it first")


def model_not_found_copy(name: str) -> NotFound:
    """copy: ``model "NAME" not found``."""
    return NotFound(f"model {go_quote(name)} not found")


def source_invalid(name: str) -> BadRequest:
    """copy: ``source "x" is invalid``."""
    return BadRequest(f"source {go_quote(name)} is invalid")


def name_invalid(name: str) -> BadRequest:
    """copy destination, delete: ``name "x" is invalid``."""
    return BadRequest(f"name {go_quote(name)} is invalid")


def does_not_support(name: str, what: str) -> BadRequest:
    """``"NAME" does not support generate|chat|thinking|embeddings`` (request name, Go-quoted)."""
    return BadRequest(f"{go_quote(name)} does not support {what}")


def does_not_support_full(full_name: str, what: str) -> BadRequest:
    """``registry.ollama.ai/library/x:latest does not support tools|insert|vision`` (full name, bare)."""
    return BadRequest(f"{full_name} does not support {what}")


def raw_mode_conflict() -> BadRequest:
    return BadRequest("raw mode does not support template, system, or context")


def top_logprobs_range() -> BadRequest:
    return BadRequest("top_logprobs must be between 0 and 20")


def context_exceeded() -> BadRequest:
    """The prompt does not fit and context shift is off (``shift: false``)."""
    return BadRequest(
        "the prompt is longer than the context length currently available to the model; shorten the"
        " prompt, adjust the context length in settings, or use a model with a longer context length"
    )


def input_too_long() -> BadRequest:
    """embed with ``truncate: false`` and an input longer than the context."""
    return BadRequest("the input length exceeds the context length")


def invalid_input_type() -> BadRequest:
    """embed: ``input`` is neither a string nor an array of strings."""
    return BadRequest("invalid input type")


def invalid_digest() -> BadRequest:
    """blobs, create: a digest not matching ``^sha256[:-][0-9a-fA-F]{64}$``."""
    return BadRequest("invalid digest format")


def digest_mismatch(expected: str, got: str) -> BadRequest:
    return BadRequest(f"digest mismatch, expected {go_quote(expected)}, got {go_quote(got)}")


def create_missing_source() -> BadRequest:
    return BadRequest("neither 'from' or 'files' was specified")


def file_path_not_relative() -> BadRequest:
    return BadRequest("file path must be relative")


def template_error(detail: str) -> BadRequest:
    return BadRequest(f"template error: {detail}")


def pull_manifest_not_found() -> InternalError:
    """pull of a model the registry does not have (Ollama answers 500 here)."""
    return InternalError("pull model manifest: file does not exist")
