"""Base classes for wire models: Go-like request decoding, response construction.

Requests are decoded the way Go's ``encoding/json`` fills Ollama's structs, so a body Ollama
accepts is accepted here and one it rejects is rejected here:

- types are strict (``"1"`` is not an int, ``1.0`` is not an int, ``1`` is not a bool);
- unknown keys are ignored; a key matches a field case-insensitively when no exact key does
  (Go's rule: ``{"Model": "x"}`` sets ``model``);
- ``null`` leaves a field at its default (Go leaves the zero value or a nil pointer).

Field-specific rules that carry Ollama's own error texts (``think``, ``format``,
``keep_alive``...) raise :func:`api_error`, which :mod:`corral.api.parse` turns into a 400
with exactly that text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from corral.api.duration import parse_keep_alive
from corral.api.errors import APIError, top_logprobs_range
from corral.gocodec import dumps
from corral.gocodec import quote as go_quote

__all__ = [
    "THINK_LEVELS",
    "InferenceRequest",
    "RequestModel",
    "ResponseModel",
    "api_error",
    "check_format",
    "check_keep_alive",
    "check_think",
    "put",
]

API_ERROR_TYPE = "corral_api_error"

_WIRE_KEYS: dict[type, dict[str, str]] = {}

THINK_LEVELS = ("low", "medium", "high", "max")


def api_error(message: str) -> PydanticCustomError:
    """A validation error whose text reaches the client verbatim (see ``parse.parse_body``)."""
    return PydanticCustomError(API_ERROR_TYPE, "{message}", {"message": message})


class RequestModel(BaseModel):
    """A request body, decoded with Go's ``encoding/json`` rules (module docstring)."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)

    @classmethod
    def _keys(cls) -> dict[str, str]:
        """JSON key (exact, then lower-cased) -> the field's wire name, built once per class."""
        keys = _WIRE_KEYS.get(cls)
        if keys is None:
            keys = {}
            for name, field in cls.model_fields.items():
                wire = field.validation_alias if isinstance(field.validation_alias, str) else name
                keys[wire] = wire
            for wire in list(keys):
                keys.setdefault(wire.lower(), wire)
            # Python callers may use field names (``from_``); JSON never does, so no case folding
            for name in cls.model_fields:
                keys.setdefault(name, name)
            _WIRE_KEYS[cls] = keys
        return keys

    @model_validator(mode="before")
    @classmethod
    def _go_decode(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = cls._keys()
        out: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            wire = keys.get(key) if key in keys else keys.get(key.lower())
            if wire is None:
                continue
            if value is None:
                out.pop(wire, None)
            else:
                out[wire] = value
        return out


class ResponseModel(BaseModel):
    """A response body. Build it with keyword arguments; serialise with ``to_wire()``/``dumps``."""

    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


def put(out: dict[str, Any], key: str, value: Any) -> None:
    """Go's ``omitempty``: skip "", 0, False, None and empty lists/maps."""
    if value is None or value is False or value == "" or (isinstance(value, list | dict) and not value):
        return
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return
    out[key] = value


# --- field checks shared by generate and chat -----------------------------------------------


def check_top_logprobs(value: int | None) -> int | None:
    """0 to 20 alternatives per token, checked when a request is read (on /v1 too: a value passed on
    unchecked into the native request failed there as a 500)."""
    if value is not None and not 0 <= value <= 20:
        raise api_error(top_logprobs_range().message)
    return value


def check_think(value: Any) -> bool | str | None:
    """``think``: a bool, or one of Ollama's levels; other strings get Ollama's 400 text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in THINK_LEVELS:
            return value
        raise api_error(
            f'invalid think value: {go_quote(value)} (must be "high", "medium", "low", "max", true, or false)'
        )
    raise api_error("think must be a boolean or string")


def check_format(value: Any) -> str | dict[str, Any] | None:
    """``format``: ``""``/``null`` (none), ``"json"``, or a JSON Schema object."""
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value  # type: ignore[no-any-return]
    # Ollama quotes the raw JSON text of the field with %q: "yaml" -> "\"yaml\"", 3 -> "3"
    raw = dumps(value).decode("utf-8")
    raise api_error(f'invalid format: {go_quote(raw)}; expected "json" or a valid JSON Schema object')


def check_keep_alive(value: Any) -> float | None:
    try:
        return parse_keep_alive(value)
    except APIError as exc:
        raise api_error(exc.message) from None


class LoadRequest(RequestModel):
    """What every request that runs a model may carry: its load and sampling ``options``, and how long the
    model stays loaded after it (``keep_alive``, decoded to seconds: ``None`` absent, ``math.inf`` forever)."""

    keep_alive: float | None = None
    options: dict[str, Any] | None = None

    _check_keep_alive = field_validator("keep_alive", mode="before")(check_keep_alive)


class ModelRequest(LoadRequest):
    """A request that names the model it runs."""

    model: str = ""


class InferenceRequest(ModelRequest):
    """Fields generate and chat share, with Ollama's defaults (``stream``, ``truncate``, ``shift`` on).

    ``keep_alive`` is decoded to seconds (``None`` absent, ``math.inf`` forever); ``format`` to
    ``None``, ``"json"`` or a JSON-Schema dict; ``think`` to ``None``, a bool or a level string.
    ``options`` stays raw: routes check it with ``options.validate_options`` once the model is
    known, since Ollama answers 404 for an unknown model before it looks at options.
    """

    stream: bool = True
    format: str | dict[str, Any] | None = None
    think: bool | str | None = None
    truncate: bool = True
    shift: bool = True
    debug_render_only: bool = Field(default=False, validation_alias="_debug_render_only")
    logprobs: bool = False
    top_logprobs: int = 0

    @field_validator("format", mode="before")
    @classmethod
    def _check_format(cls, value: Any) -> Any:
        return check_format(value)

    @field_validator("think", mode="before")
    @classmethod
    def _check_think(cls, value: Any) -> Any:
        return check_think(value)

    _check_top_logprobs = field_validator("top_logprobs")(check_top_logprobs)
