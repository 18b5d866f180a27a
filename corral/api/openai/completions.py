"""``POST /v1/completions`` and ``POST /v1/embeddings``: requests as OpenAI clients send them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from corral.api._base import api_error, check_top_logprobs
from corral.api.openai.common import OllamaExtras, StreamOptions, check_n

__all__ = ["CompletionRequest", "EmbeddingRequest"]


class CompletionRequest(OllamaExtras):
    model: str = ""
    prompt: str = ""
    suffix: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[Any] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = None
    echo: bool = False
    n: int = 1
    debug_render_only: bool = Field(default=False, validation_alias="_debug_render_only")

    _check_logprobs = field_validator("logprobs")(check_top_logprobs)  # the number of alternatives

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str):
                return value[0]  # the SDK's list of one prompt
            raise api_error("prompt must be a string (lists of prompts and token ids are not supported)")
        return value

    _check_n = field_validator("n")(check_n)


class EmbeddingRequest(OllamaExtras):
    model: str = ""
    input: Any = None
    dimensions: int = 0
    encoding_format: str = ""
    user: str = ""
