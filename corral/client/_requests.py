"""Request bodies, one model per endpoint, built as ``XRequest(...).model_dump(exclude_none=True)``.

Fields left ``None`` are not sent, so the server applies its own defaults; the exceptions the official
SDK's tests pin (``stream``, ``tools: []``, ``insecure: false``) are set by the client methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from corral.client._image import Image
from corral.client._messages import Message, Tool
from corral.client._model import SubscriptableBaseModel
from corral.client._options import Digests, Format, KeepAlive, License, Options, Think


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


class EmbeddingsRequest(BaseRequest):
    prompt: str | None = None
    "Text to embed."

    options: Mapping[str, Any] | Options | None = None
    "Model options for this request."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."


class TokenizeRequest(BaseRequest):
    content: str
    "Text to turn into the model's token ids."

    options: Mapping[str, Any] | Options | None = None
    "Model options for this request (load options pick the runner)."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."


class DetokenizeRequest(BaseRequest):
    tokens: Sequence[int]
    "Token ids to turn back into text."

    options: Mapping[str, Any] | Options | None = None
    "Model options for this request (load options pick the runner)."

    keep_alive: KeepAlive | None = None
    "How long the model stays loaded after this request."


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


class DeleteRequest(BaseRequest):
    """Remove a model."""


class CopyRequest(BaseModel):
    """Give a model a second name."""

    source: str
    destination: str


class ShowRequest(BaseRequest):
    """Describe a model."""


class WebSearchRequest(SubscriptableBaseModel):
    query: str
    max_results: int | None = None


class WebFetchRequest(SubscriptableBaseModel):
    url: str
