"""corral's Python SDK: a drop-in for ollama-python 0.6.3, light enough to import anywhere.

It imports only httpx, pydantic and anyio. ``corral`` re-exports it with the module-level
functions; ``corral.client`` is the same API without them, for corral's own CLI.

Layout (private modules; the public names are the ones below):

- ``_sync`` ``Client`` and ``_async`` ``AsyncClient``, each put together from ``_*_inference`` (generate,
  chat, embed, embeddings, tokenize, detokenize, systemone) and ``_*_models`` (pull, push, create,
  create_blob, list, delete, copy, show, ps, stop) on ``_transport`` (requests, streams, errors); ``_base``
  is what both share (construction from the environment, argument normalization), ``_host`` the
  ``OLLAMA_HOST`` parser, ``_stream`` the closable ``Stream``/``AsyncStream``;
- ``_types`` gathers the wire models from ``_options``, ``_image``, ``_messages``, ``_requests``,
  ``_responses`` and ``_systemone`` on ``_model``'s ``SubscriptableBaseModel``; ``_errors`` holds the
  two exceptions; ``_utils`` turns Python functions into tools;
- ``_client``, ``_types`` and ``_utils`` keep ollama-python's module names and contents, for code (and
  ollama-python's own tests) that import from them.
"""

from corral.client._client import CONNECTION_ERROR_MESSAGE, AsyncClient, BaseClient, Client
from corral.client._errors import RequestError, ResponseError
from corral.client._stream import AsyncStream, Stream
from corral.client._types import (
    ChatResponse,
    DetokenizeResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    Image,
    ListResponse,
    Message,
    Options,
    ProcessResponse,
    ProgressResponse,
    ShowResponse,
    StatusResponse,
    SubscriptableBaseModel,
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
    TokenizeResponse,
    Tool,
    WebFetchResponse,
    WebSearchResponse,
)
from corral.client._utils import convert_function_to_tool

__all__ = [
    "CONNECTION_ERROR_MESSAGE",
    "AsyncClient",
    "AsyncStream",
    "BaseClient",
    "ChatResponse",
    "Client",
    "DetokenizeResponse",
    "EmbedResponse",
    "EmbeddingsResponse",
    "GenerateResponse",
    "Image",
    "ListResponse",
    "Message",
    "Options",
    "ProcessResponse",
    "ProgressResponse",
    "RequestError",
    "ResponseError",
    "ShowResponse",
    "StatusResponse",
    "Stream",
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
    "TokenizeResponse",
    "Tool",
    "WebFetchResponse",
    "WebSearchResponse",
    "convert_function_to_tool",
]
