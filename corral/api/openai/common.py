"""What the OpenAI endpoints share: the error envelope, ``usage``, ids, ``stop`` and Ollama's extra fields."""

from __future__ import annotations

import random
from typing import Any

from corral.api._base import LoadRequest, RequestModel, api_error
from corral.api.errors import BadRequest

__all__ = ["MAX_CHOICES", "OllamaExtras", "StreamOptions", "Usage", "check_n", "new_id", "openai_envelope", "stop_list"]

SYSTEM_FINGERPRINT = "fp_ollama"


def openai_envelope(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body, with the type Ollama gives each status."""
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error"}.get(status,
                                                                                                  "api_error")
    code = "invalid_api_key" if status == 401 else None  # a refused key reads as OpenAI's own refusal does
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def new_id(prefix: str, below: int = 999) -> str:
    """Ollama's ids: a prefix and a small random number (``chatcmpl-417``); not unique, as in Ollama."""
    return f"{prefix}-{random.randrange(below)}"


class StreamOptions(RequestModel):
    include_usage: bool = False


MAX_CHOICES = 8


def check_n(value: int) -> int:
    """``n`` choices: 1 to :data:`MAX_CHOICES`, each a generation on one of the runner's slots."""
    if not 1 <= value <= MAX_CHOICES:
        raise api_error(f"n must be between 1 and {MAX_CHOICES}")
    return value


class OllamaExtras(LoadRequest):
    """corral accepts Ollama's own ``options`` and ``keep_alive`` on ``/v1`` as extra body fields (the
    ``openai`` SDK's ``extra_body``), which Ollama refuses to read (its issues #5356, #2722)."""


def stop_list(stop: str | list[Any] | None, *, strict: bool) -> list[str] | None:
    """``stop`` as a string or an array; chat skips items that are not strings, completions refuse them."""
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    out = []
    for item in stop:
        if isinstance(item, str):
            out.append(item)
        elif strict:
            raise BadRequest(f"invalid type for 'stop' field: {_go_type(item)}")
    return out


def _go_type(value: Any) -> str:
    return {bool: "bool", int: "float64", float: "float64", dict: "map[string]interface {}",
            list: "[]interface {}"}.get(type(value), "string")


class Usage:
    """Token counts as OpenAI reports them."""

    @staticmethod
    def of(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
        """With ``cached``, OpenAI's ``prompt_tokens_details.cached_tokens`` too (Ollama writes no details):
        the prompt's tokens the runner had in its cache from an earlier turn."""
        out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                               "total_tokens": prompt + completion}
        if cached is not None:
            out["prompt_tokens_details"] = {"cached_tokens": cached}
        return out
