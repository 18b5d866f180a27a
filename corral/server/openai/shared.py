"""Translation steps the OpenAI endpoints share: sampling options, reasoning effort, tool choice, images."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from corral.api._base import InferenceRequest
from corral.api.errors import BadRequest
from corral.api.openai.common import SYSTEM_FINGERPRINT, openai_envelope
from corral.server.core.chat import ToolChoice
from corral.server.core.stream import EVENT_STREAM, Framing

__all__ = ["OPENAI_SSE", "SYSTEM_FINGERPRINT", "choices", "decode_image_url", "options_from", "think_from_effort",
           "tool_choice_from"]

OPENAI_SSE = Framing(EVENT_STREAM, openai_envelope, sse=True, end=b"data: [DONE]\n\n")

_IMAGE_PREFIXES = (*tuple(f"data:image/{kind};base64," for kind in ("jpeg", "jpg", "png", "webp")), "data:;base64,")


def options_from(extra: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """Ollama's options for a ``/v1`` request: the request's ``options`` (corral's extra field), then its
    OpenAI fields over them. ``temperature`` and ``top_p`` default to 1.0, as OpenAI's and Ollama's do."""
    options = dict(extra or {})
    for key, value in fields.items():
        if value is not None:
            options[key] = value
    options.setdefault("temperature", 1.0)
    options.setdefault("top_p", 1.0)
    return options


R = TypeVar("R", bound=InferenceRequest)


def choices(native: R, n: int) -> list[R]:
    """``n`` copies of a request, one per choice. With a seed, choice ``i`` uses ``seed + i``: the same seed
    would only repeat the first choice."""
    out = [native]
    seed = (native.options or {}).get("seed")
    for i in range(1, n):
        out.append(native if seed is None else
                   native.model_copy(update={"options": {**(native.options or {}), "seed": int(seed) + i}}))
    return out


def think_from_effort(effort: str | None) -> bool | str | None:
    """OpenAI's reasoning effort as Ollama's ``think``: none is off, the ends clamp to Ollama's levels."""
    if not effort:
        return None
    if effort == "none":
        return False
    levels = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "max": "max", "xhigh": "max",
              "ultra": "max"}
    if effort not in levels:
        raise BadRequest(f'invalid reasoning value: "{effort}" (must be "minimal", "low", "medium", "high", '
                         '"xhigh", "ultra", "max", or "none")')
    return levels[effort]


def tool_choice_from(choice: str | Any | None, parallel: bool | None) -> ToolChoice:
    """``tool_choice`` (``auto``, ``none``, ``required``, or a named function) and ``parallel_tool_calls``."""
    many = parallel is not False
    if choice is None or choice == "auto":
        return ToolChoice("auto", parallel=many)
    if isinstance(choice, str):
        if choice not in ("none", "required"):
            raise BadRequest(f"invalid tool_choice: {choice!r} (must be \"auto\", \"none\", \"required\" or a "
                             "named function)")
        return ToolChoice(choice, parallel=many)  # type: ignore[arg-type]
    name = getattr(getattr(choice, "function", None), "name", "") or ""
    if not name:
        raise BadRequest("tool_choice must name a function")
    return ToolChoice("function", name=name, parallel=False)


def decode_image_url(url: str) -> str:
    """A ``data:`` URL's image as the base64 text native messages carry; web URLs are Ollama's 400."""
    if url.startswith(("http://", "https://")):
        raise BadRequest("image URLs are not currently supported, please use base64 encoded data instead")
    prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
    if prefix is None:
        raise BadRequest("invalid image input")
    data = url[len(prefix):]
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("invalid image input") from None
    return data
