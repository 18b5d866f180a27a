"""Response bodies, built as ``XResponse(**json)``: every field optional unless the API always sends it.

Unknown keys are ignored (pydantic's default), so a newer server never breaks an older client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ByteSize, ConfigDict, Field

from corral.client._messages import Message
from corral.client._model import SubscriptableBaseModel


class BaseGenerateResponse(SubscriptableBaseModel):
    model: str | None = None
    "Model that answered."

    created_at: str | None = None
    "When the response (or the part) was made, as an RFC 3339 string."

    done: bool | None = None
    "Whether this is the last part."

    done_reason: str | None = None
    "Why generation ended (``stop``, ``length``, ``load``, ``unload``...); set on the last part."

    total_duration: int | None = None
    "Whole request, in nanoseconds."

    load_duration: int | None = None
    "Time spent loading the model, in nanoseconds."

    prompt_eval_count: int | None = None
    "Prompt tokens evaluated."

    prompt_eval_duration: int | None = None
    "Time spent on the prompt, in nanoseconds."

    eval_count: int | None = None
    "Tokens generated."

    eval_duration: int | None = None
    "Time spent generating, in nanoseconds."


class TokenLogprob(SubscriptableBaseModel):
    token: str
    "The token's text."

    logprob: float
    "Its log probability."


class Logprob(TokenLogprob):
    top_logprobs: Sequence[TokenLogprob] | None = None
    "The most likely tokens at this position, with their log probabilities."


class GenerateResponse(BaseGenerateResponse):
    """A ``generate`` response, or one part of a streamed one."""

    response: str | None = None
    "Generated text (a fragment of it when streaming)."

    thinking: str | None = None
    "The model's thinking, when thinking was asked for."

    context: Sequence[int] | None = None
    "Tokens to pass back as ``context`` to continue."

    logprobs: Sequence[Logprob] | None = None
    "Per-token log probabilities, when asked for."

    image: str | None = None
    "Image generation: the image, base64-encoded."

    completed: int | None = None
    "Image generation, streaming: steps done."

    total: int | None = None
    "Image generation, streaming: steps in all."


class ChatResponse(BaseGenerateResponse):
    """A ``chat`` response, or one part of a streamed one."""

    message: Message
    "The reply (a fragment of it when streaming)."

    logprobs: Sequence[Logprob] | None = None
    "Per-token log probabilities, when asked for."


class EmbedResponse(BaseGenerateResponse):
    """An ``embed`` response."""

    embeddings: Sequence[Sequence[float]]
    "One embedding per input, in order."


class EmbeddingsResponse(SubscriptableBaseModel):
    """An ``embeddings`` response (the older, single-input API)."""

    embedding: Sequence[float]
    "The embedding of the prompt."


class TokenizeResponse(BaseGenerateResponse):
    """A ``tokenize`` response (corral's ``/api/tokenize``, after Ollama's proposal ollama/ollama#12030)."""

    tokens: Sequence[int]
    "The content's token ids, a BOS included where the model's generation adds one."


class DetokenizeResponse(BaseGenerateResponse):
    """A ``detokenize`` response (corral's ``/api/detokenize``)."""

    content: str
    "The tokens' text."


class ModelDetails(SubscriptableBaseModel):
    parent_model: str | None = None
    format: str | None = None
    family: str | None = None
    families: Sequence[str] | None = None
    parameter_size: str | None = None
    quantization_level: str | None = None


class ListResponse(SubscriptableBaseModel):
    class Model(SubscriptableBaseModel):
        model: str | None = None
        name: str | None = None
        modified_at: datetime | None = None
        digest: str | None = None
        size: ByteSize | None = None
        details: ModelDetails | None = None

    models: Sequence[Model]
    "Local models, newest first."


class StatusResponse(SubscriptableBaseModel):
    status: str | None = None


class ProgressResponse(StatusResponse):
    completed: int | None = None
    total: int | None = None
    digest: str | None = None


class ShowResponse(SubscriptableBaseModel):
    model_config = ConfigDict(populate_by_name=True)

    modified_at: datetime | None = None
    template: str | None = None
    modelfile: str | None = None
    license: str | None = None
    details: ModelDetails | None = None
    modelinfo: Mapping[str, Any] | None = Field(None, alias="model_info")
    parameters: str | None = None
    capabilities: list[str] | None = None


class ProcessResponse(SubscriptableBaseModel):
    class Model(SubscriptableBaseModel):
        model: str | None = None
        name: str | None = None
        digest: str | None = None
        expires_at: datetime | None = None
        size: ByteSize | None = None
        size_vram: ByteSize | None = None
        details: ModelDetails | None = None
        context_length: int | None = None

    models: Sequence[Model]
    "Models loaded now."


class WebSearchResult(SubscriptableBaseModel):
    content: str | None = None
    title: str | None = None
    url: str | None = None


class WebSearchResponse(SubscriptableBaseModel):
    results: Sequence[WebSearchResult]


class WebFetchResponse(SubscriptableBaseModel):
    title: str | None = None
    content: str | None = None
    links: Sequence[str] | None = None
