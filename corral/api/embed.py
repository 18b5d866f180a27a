"""``POST /api/embed`` (current) and ``POST /api/embeddings`` (legacy)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from corral.api._base import ModelRequest, ResponseModel, api_error, put
from corral.api.errors import invalid_input_type
from corral.gocodec import Float32Array

__all__ = ["EmbedRequest", "EmbedResponse", "EmbeddingsRequest", "EmbeddingsResponse"]


class EmbedRequest(ModelRequest):
    """``input`` is a string or a list of strings; anything else is Ollama's ``invalid input type``."""

    input: str | list[str] | None = None
    truncate: bool = True
    dimensions: int = 0

    @field_validator("input", mode="before")
    @classmethod
    def _check_input(cls, value: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise api_error(invalid_input_type().message)

    def inputs(self) -> list[str]:
        """The texts to embed. An empty string, like an absent input, embeds nothing (load only)."""
        if isinstance(self.input, str):
            return [self.input] if self.input else []
        return list(self.input or [])


class EmbeddingsRequest(ModelRequest):
    """Legacy single embedding; an empty ``prompt`` only loads the model."""

    prompt: str = ""


class EmbedResponse(ResponseModel):
    """L2-normalised float32 vectors, one per input; ``embeddings`` is always present."""

    model: str
    embeddings: list[list[float]] = Field(default_factory=list)
    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0

    def to_wire(self) -> dict[str, Any]:
        # Ollama holds these as [][]float32, so they print with float32 digits
        out: dict[str, Any] = {"model": self.model, "embeddings": [Float32Array(v) for v in self.embeddings]}
        put(out, "total_duration", self.total_duration)
        put(out, "load_duration", self.load_duration)
        put(out, "prompt_eval_count", self.prompt_eval_count)
        return out


class EmbeddingsResponse(ResponseModel):
    """Legacy: one vector, not normalised, printed as float64 (Ollama's ``[]float64``)."""

    embedding: list[float] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"embedding": [float(v) for v in self.embedding]}
