"""Every wire model of the Ollama API, under the module name ollama-python's code and tests import.

The models live in modules by concept; this one gathers them, as ``ollama._types`` does:

- ``_options``: ``Options`` and the argument types ``KeepAlive``, ``Format``, ``Think``;
- ``_image``: ``Image``;
- ``_messages``: ``Message`` (with ``Message.ToolCall``) and ``Tool``;
- ``_requests``: one ``XRequest`` per endpoint, built as ``XRequest(...).model_dump(exclude_none=True)``;
- ``_responses``: one ``XResponse`` per endpoint, built as ``XResponse(**json)``;
- ``_systemone``: the System One questions and answers;
- ``_model``: ``SubscriptableBaseModel``, the dict-style base of them all;
- ``_errors``: ``RequestError`` and ``ResponseError``.
"""

from __future__ import annotations

from corral.client._errors import RequestError, ResponseError
from corral.client._image import Image
from corral.client._messages import Message, Tool
from corral.client._model import SubscriptableBaseModel
from corral.client._options import Digests, Format, KeepAlive, License, Options, Think
from corral.client._requests import (
    BaseGenerateRequest,
    BaseRequest,
    BaseStreamableRequest,
    ChatRequest,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    DetokenizeRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    PullRequest,
    PushRequest,
    ShowRequest,
    TokenizeRequest,
    WebFetchRequest,
    WebSearchRequest,
)
from corral.client._responses import (
    BaseGenerateResponse,
    ChatResponse,
    DetokenizeResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    ListResponse,
    Logprob,
    ModelDetails,
    ProcessResponse,
    ProgressResponse,
    ShowResponse,
    StatusResponse,
    TokenizeResponse,
    TokenLogprob,
    WebFetchResponse,
    WebSearchResponse,
    WebSearchResult,
)
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
    "DetokenizeRequest",
    "DetokenizeResponse",
    "Digests",
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "Format",
    "GenerateRequest",
    "GenerateResponse",
    "Image",
    "KeepAlive",
    "License",
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
    "Think",
    "TokenLogprob",
    "TokenizeRequest",
    "TokenizeResponse",
    "Tool",
    "WebFetchRequest",
    "WebFetchResponse",
    "WebSearchRequest",
    "WebSearchResponse",
    "WebSearchResult",
]
