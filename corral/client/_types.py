"""Wire models of the Ollama API, as the SDK sends and receives them.

Requests are built as ``XRequest(...).model_dump(exclude_none=True)``; responses as ``XResponse(**json)``.
Unknown response keys are ignored, so a newer server never breaks an older client.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic.json_schema import JsonSchemaValue

from corral.client._errors import RequestError, ResponseError
from corral.client._model import SubscriptableBaseModel
from corral.client._systemone import (
    SystemOneAnswer,
    SystemOneChoiceAnswer,
    SystemOneChoiceQuestion,
    SystemOneContent,
    SystemOneNoulAnswer,
    SystemOneNoulQuestion,
    SystemOneQuestion,
    SystemOneRequest,
    SystemOneResponse,
    SystemOneScoreAnswer,
    SystemOneScoreQuestion,
    SystemOneUsage,
)

__all__ = [
    "BaseGenerateRequest",
    "BaseGenerateResponse",
    "BaseRequest",
    "BaseStreamableRequest",
    "ChatRequest",
    "ChatResponse",
    "CopyRequest",
    "CreateRequest",
    "DeleteRequest",
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "GenerateRequest",
    "GenerateResponse",
    "Image",
    "ListResponse",
    "Logprob",
    "Message",
    "ModelDetails",
    "Options",
    "ProcessResponse",
    "ProgressResponse",
    "PullRequest",
    "PushRequest",
    "RequestError",
    "ResponseError",
    "ShowRequest",
    "ShowResponse",
    "StatusResponse",
    "SubscriptableBaseModel",
    "SystemOneAnswer",
    "SystemOneChoiceAnswer",
    "SystemOneChoiceQuestion",
    "SystemOneContent",
    "SystemOneNoulAnswer",
    "SystemOneNoulQuestion",
    "SystemOneQuestion",
    "SystemOneRequest",
    "SystemOneResponse",
    "SystemOneScoreAnswer",
    "SystemOneScoreQuestion",
    "SystemOneUsage",
    "TokenLogprob",
    "Tool",
    "WebFetchRequest",
    "WebFetchResponse",
    "WebSearchRequest",
    "WebSearchResponse",
    "WebSearchResult",
]

KeepAlive = float | str
"Seconds as a number, or a duration string such as ``'5m'``; ``0`` unloads at once, negative keeps forever."

Format = Literal["", "json"] | JsonSchemaValue
"``'json'`` for any JSON object, or a JSON schema (e.g. ``Model.model_json_schema()``) to follow."

Think = bool | str
"``True``/``False``, or a level the model defines such as ``'low'``, ``'medium'``, ``'high'``."

License = str | list[str]
Digests = dict[str, str]
"File name to blob digest (``sha256:<hex>``), as returned by ``create_blob``."


class Options(SubscriptableBaseModel):
    """Model and sampling options; a plain dict is accepted wherever this is, with any keys."""

    # Fixed when the model is loaded.
    numa: bool | None = None
    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    low_vram: bool | None = None
    f16_kv: bool | None = None
    logits_all: bool | None = None
    vocab_only: bool | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    embedding_only: bool | None = None
    num_thread: int | None = None

    # Per request.
    num_keep: int | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    tfs_z: float | None = None
    typical_p: float | None = None
    repeat_last_n: int | None = None
    temperature: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    mirostat: int | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    penalize_newline: bool | None = None
    stop: Sequence[str] | None = None


class Image(BaseModel):
    """One image for a multimodal model, serialized to base64 when the request is built.

    ``value`` may be raw ``bytes``, a ``Path``, a path string, a base64 string, or a ``data:`` URL.
    A string that names a missing ``.png``/``.jpg``/``.jpeg``/``.webp`` file, or that is neither a
    file nor base64, raises ``ValueError`` at serialization time.
    """

    value: str | bytes | Path

    @model_serializer
    def _to_base64(self) -> str:
        value = self.value
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, Path):
            return base64.b64encode(value.read_bytes()).decode()
        return _encode_image_string(value)


_IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp")


def _encode_image_string(value: str) -> str:
    try:
        path = Path(value)
        if path.is_file():
            return base64.b64encode(path.read_bytes()).decode()
    except (OSError, ValueError):
        pass  # too long or otherwise impossible as a path: it can only be data
    if value.rsplit(".", 1)[-1].lower() in _IMAGE_SUFFIXES:
        raise ValueError(f"File {value} does not exist")
    if value.startswith("data:") and ";base64," in value:
        value = value.split(";base64,", 1)[1]
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        raise ValueError("Invalid image data, expected base64 string or path to image file") from None
    return value


class BaseRequest(SubscriptableBaseModel):
    model: Annotated[str, Field(min_length=1)]
    "Name of the model the request is for."


class BaseStreamableRequest(BaseRequest):
    stream: bool | None = None
    "Ask for newline-delimited JSON parts instead of one response."


class BaseGenerateRequest(BaseStreamableRequest):
    options: Mapping[str, Any] | Options | None = None
    "Model and sampling options for this request."

    format: Format | None = None
    "Constrain the output to JSON, optionally to a schema."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."


class GenerateRequest(BaseGenerateRequest):
    prompt: str | None = None
    "Text to complete; empty only loads (or, with ``keep_alive=0``, unloads) the model."

    suffix: str | None = None
    "Text after the insertion point, for fill-in-the-middle models."

    system: str | None = None
    "System prompt, overriding the model's."

    template: str | None = None
    "Prompt template, overriding the model's."

    context: Sequence[int] | None = None
    "Tokens returned by an earlier response, to continue that conversation (deprecated upstream)."

    raw: bool | None = None
    "Send the prompt as is, without the template."

    images: Sequence[Image] | None = None
    "Images for multimodal models."

    think: Think | None = None
    "Ask a thinking model to think first (or not), or how hard."

    logprobs: bool | None = None
    "Return the log probability of each generated token."

    top_logprobs: int | None = None
    "How many likely alternatives to return for each token (0-20)."

    width: int | None = None
    "Image generation (experimental): width in pixels."

    height: int | None = None
    "Image generation (experimental): height in pixels."

    steps: int | None = None
    "Image generation (experimental): number of diffusion steps."


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


class Message(SubscriptableBaseModel):
    """One chat message, sent or received."""

    role: str
    "Who speaks: ``system``, ``user``, ``assistant``, ``tool``, or any role the template knows."

    content: str | None = None
    "Text of the message (a fragment of it when streaming)."

    thinking: str | None = None
    "The model's thinking; send it back on assistant turns to keep it across tool rounds."

    images: Sequence[Image] | None = None
    "Images for multimodal models; dicts passed to ``chat`` may hold bytes, paths or base64 directly."

    tool_name: str | None = None
    "On ``tool`` messages: the tool whose result this is."

    class ToolCall(SubscriptableBaseModel):
        """A call the model asks the caller to make."""

        class Function(SubscriptableBaseModel):
            name: str
            "Name of the function to call."

            arguments: Mapping[str, Any]
            "Arguments as an object (a JSON string is decoded)."

            @field_validator("arguments", mode="before")
            @classmethod
            def _decode_json_arguments(cls, value: Any) -> Any:
                if isinstance(value, str):
                    return json.loads(value) if value.strip() else {}
                return value

        function: Function
        "The function and its arguments."

    tool_calls: Sequence[ToolCall] | None = None
    "On assistant messages: the tools the model wants called."


class Tool(SubscriptableBaseModel):
    """A tool the model may call, in the JSON-schema shape of the chat API."""

    type: str | None = "function"

    class Function(SubscriptableBaseModel):
        name: str | None = None
        description: str | None = None

        class Parameters(SubscriptableBaseModel):
            # Other JSON-schema keywords (``additionalProperties``...) are kept and sent.
            model_config = ConfigDict(populate_by_name=True, extra="allow")

            type: Literal["object"] | None = "object"
            defs: Any | None = Field(None, alias="$defs")
            items: Any | None = None
            required: Sequence[str] | None = None

            class Property(SubscriptableBaseModel):
                # Nested ``properties``/``required`` of object-typed parameters are kept and sent.
                model_config = ConfigDict(arbitrary_types_allowed=True, extra="allow")

                type: str | Sequence[str] | None = None
                items: Any | None = None
                description: str | None = None
                enum: Sequence[Any] | None = None

            properties: Mapping[str, Property] | None = None

        parameters: Parameters | None = None

    function: Function | None = None


class ChatRequest(BaseGenerateRequest):
    messages: Sequence[Mapping[str, Any] | Message] | None = None
    "The conversation so far."

    tools: Sequence[Tool] | None = None
    "Tools the model may call."

    think: Think | None = None
    "Ask a thinking model to think first (or not), or how hard."

    logprobs: bool | None = None
    "Return the log probability of each generated token."

    top_logprobs: int | None = None
    "How many likely alternatives to return for each token (0-20)."

    @model_serializer(mode="wrap")
    def _rename_defs(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for tool in data.get("tools") or ():
            parameters = (tool.get("function") or {}).get("parameters")
            if isinstance(parameters, dict) and "defs" in parameters:
                parameters["$defs"] = parameters.pop("defs")
        return data


class ChatResponse(BaseGenerateResponse):
    """A ``chat`` response, or one part of a streamed one."""

    message: Message
    "The reply (a fragment of it when streaming)."

    logprobs: Sequence[Logprob] | None = None
    "Per-token log probabilities, when asked for."


class EmbedRequest(BaseRequest):
    input: str | Sequence[str]
    "One text or several to embed."

    truncate: bool | None = None
    "Cut inputs to the context length instead of failing (the server's default is to truncate)."

    options: Mapping[str, Any] | Options | None = None
    "Model options for this request."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."

    dimensions: int | None = None
    "Shorten each embedding to this many dimensions."


class EmbedResponse(BaseGenerateResponse):
    """An ``embed`` response."""

    embeddings: Sequence[Sequence[float]]
    "One embedding per input, in order."


class EmbeddingsRequest(BaseRequest):
    prompt: str | None = None
    "Text to embed."

    options: Mapping[str, Any] | Options | None = None
    "Model options for this request."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."


class EmbeddingsResponse(SubscriptableBaseModel):
    """An ``embeddings`` response (the older, single-input API)."""

    embedding: Sequence[float]
    "The embedding of the prompt."


class PullRequest(BaseStreamableRequest):
    insecure: bool | None = None
    "Allow plain HTTP and unverified TLS to the registry."


class PushRequest(BaseStreamableRequest):
    insecure: bool | None = None
    "Allow plain HTTP and unverified TLS to the registry."


class CreateRequest(BaseStreamableRequest):
    """Build a model from a base model and/or uploaded blobs; ``from_`` goes on the wire as ``from``."""

    quantize: str | None = None
    from_: str | None = None
    files: Digests | None = None
    adapters: Digests | None = None
    template: str | None = None
    license: License | None = None
    system: str | None = None
    parameters: Mapping[str, Any] | Options | None = None
    messages: Sequence[Mapping[str, Any] | Message] | None = None

    @model_serializer(mode="wrap")
    def _rename_from(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if "from_" in data:
            data["from"] = data.pop("from_")
        return data


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


class DeleteRequest(BaseRequest):
    """Remove a model."""


class CopyRequest(BaseModel):
    """Give a model a second name."""

    source: str
    destination: str


class StatusResponse(SubscriptableBaseModel):
    status: str | None = None


class ProgressResponse(StatusResponse):
    completed: int | None = None
    total: int | None = None
    digest: str | None = None


class ShowRequest(BaseRequest):
    """Describe a model."""


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


class WebSearchRequest(SubscriptableBaseModel):
    query: str
    max_results: int | None = None


class WebSearchResult(SubscriptableBaseModel):
    content: str | None = None
    title: str | None = None
    url: str | None = None


class WebFetchRequest(SubscriptableBaseModel):
    url: str


class WebSearchResponse(SubscriptableBaseModel):
    results: Sequence[WebSearchResult]


class WebFetchResponse(SubscriptableBaseModel):
    title: str | None = None
    content: str | None = None
    links: Sequence[str] | None = None
