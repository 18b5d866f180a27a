"""The SDK clients, under the module name ollama-python's code and tests import them from.

``Client`` (blocking, ``_sync``) and ``AsyncClient`` (asyncio, ``_async``) share ``BaseClient``
(``_base``). As in ``ollama._client``, the module also offers the argument helpers, ``_parse_host``,
``CONNECTION_ERROR_MESSAGE``, and the request and response models the clients use, so code that
imports any of them from ``ollama._client`` works with ``corral.client._client`` unchanged.
"""

from corral.client._async import AsyncClient
from corral.client._base import (
    COMPATIBLE_VERSION,
    CONNECTION_ERROR_MESSAGE,
    BaseClient,
    _as_path,
    _copy_images,
    _copy_messages,
    _copy_tools,
)
from corral.client._host import _parse_host
from corral.client._sync import Client
from corral.client._types import (
    ChatRequest,
    ChatResponse,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    Image,
    ListResponse,
    Message,
    Options,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    ResponseError,
    ShowRequest,
    ShowResponse,
    StatusResponse,
    SystemOneContent,
    SystemOneQuestion,
    SystemOneRequest,
    SystemOneResponse,
    Tool,
    WebFetchRequest,
    WebFetchResponse,
    WebSearchRequest,
    WebSearchResponse,
)
from corral.client._utils import convert_function_to_tool

__version__ = COMPATIBLE_VERSION

__all__ = [
    "CONNECTION_ERROR_MESSAGE",
    "AsyncClient",
    "BaseClient",
    "ChatRequest",
    "ChatResponse",
    "Client",
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
    "Message",
    "Options",
    "ProcessResponse",
    "ProgressResponse",
    "PullRequest",
    "PushRequest",
    "ResponseError",
    "ShowRequest",
    "ShowResponse",
    "StatusResponse",
    "SystemOneContent",
    "SystemOneQuestion",
    "SystemOneRequest",
    "SystemOneResponse",
    "Tool",
    "WebFetchRequest",
    "WebFetchResponse",
    "WebSearchRequest",
    "WebSearchResponse",
    "_as_path",
    "_copy_images",
    "_copy_messages",
    "_copy_tools",
    "_parse_host",
    "convert_function_to_tool",
]
