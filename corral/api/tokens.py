"""``POST /api/tokenize`` and ``POST /api/detokenize``: a model's own tokenizer over the API.

Ollama has no such endpoints yet; the shapes are those of its open proposal (ollama/ollama#12030, the
request and response types of issue #12031): ``{"model", "content"}`` -> ``{"model", "tokens"}`` and
``{"model", "tokens"}`` -> ``{"model", "content"}``, with ``keep_alive`` and ``options`` as on every
request that loads a model, and ``total_duration`` / ``load_duration`` (``omitempty``) in the answers.
Text only: the proposal's ``media_type`` is not a field here (an unknown key is ignored, as Go does).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from corral.api._base import ModelRequest, ResponseModel, put

__all__ = ["DetokenizeRequest", "DetokenizeResponse", "TokenizeRequest", "TokenizeResponse"]


class TokenizeRequest(ModelRequest):
    """Text to turn into the model's token ids; an empty ``content`` only loads the model."""

    content: str = ""


class DetokenizeRequest(ModelRequest):
    """Token ids to turn back into text; an empty ``tokens`` only loads the model. Ids outside the model's
    vocabulary are refused by the runner (a 400), never passed to llama.cpp."""

    tokens: list[int] = Field(default_factory=list)


class TokenizeResponse(ResponseModel):
    """``tokens`` is always present, ``[]`` for empty content (never ``null``)."""

    model: str
    tokens: list[int] = Field(default_factory=list)
    total_duration: int = 0
    load_duration: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "tokens": list(self.tokens)}
        put(out, "total_duration", self.total_duration)
        put(out, "load_duration", self.load_duration)
        return out


class DetokenizeResponse(ResponseModel):
    """``content`` is always present, ``""`` for no tokens."""

    model: str
    content: str = ""
    total_duration: int = 0
    load_duration: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "content": self.content}
        put(out, "total_duration", self.total_duration)
        put(out, "load_duration", self.load_duration)
        return out
