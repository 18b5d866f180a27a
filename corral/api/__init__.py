"""corral's wire contract: Ollama's native REST API as typed models.

Routes decode bodies with :func:`parse_body`, build responses from the ``*Response`` models and
write them with :func:`dumps` / :func:`ndjson_line` (Go's JSON bytes), and raise
:class:`APIError` subclasses, which map once to a status and ``{"error": message}``.

This package imports only pydantic, the standard library and :mod:`corral.gocodec` (Go's encodings,
shared with `store` and `prompt`).
"""

from __future__ import annotations

from corral.api.chat import ChatRequest, ChatResponse
from corral.api.duration import (
    DEFAULT_KEEP_ALIVE,
    format_go_duration,
    format_keep_alive,
    parse_go_duration,
    parse_keep_alive,
    parse_keep_alive_env,
)
from corral.api.embed import EmbeddingsRequest, EmbeddingsResponse, EmbedRequest, EmbedResponse
from corral.api.errors import (
    APIError,
    BadRequest,
    Forbidden,
    InternalError,
    NotFound,
    RequestCanceled,
    ServerBusy,
)
from corral.api.generate import GenerateRequest, GenerateResponse
from corral.api.golden import GOLDEN_KEYS, check_wire
from corral.api.messages import (
    DebugInfo,
    Logprob,
    Message,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallFunction,
    ToolFunction,
    ToolFunctionParameters,
    ToolProperty,
)
from corral.api.models import (
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    ErrorResponse,
    ListModelResponse,
    ListResponse,
    ModelDetails,
    ProcessModelResponse,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    ShowRequest,
    ShowResponse,
    Tensor,
    VersionResponse,
)
from corral.api.options import (
    DEFAULTS,
    LOAD_OPTIONS,
    RUNTIME_OPTIONS,
    Options,
    merge_options,
    validate_options,
)
from corral.api.parse import parse_body, parse_json
from corral.api.tokens import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse
from corral.gocodec import Float32, Float32Array, dumps, format_time, ndjson_line
from corral.gocodec import quote as go_quote

__all__ = [
    "DEFAULTS",
    "DEFAULT_KEEP_ALIVE",
    "GOLDEN_KEYS",
    "LOAD_OPTIONS",
    "RUNTIME_OPTIONS",
    "APIError",
    "BadRequest",
    "ChatRequest",
    "ChatResponse",
    "CopyRequest",
    "CreateRequest",
    "DebugInfo",
    "DeleteRequest",
    "DetokenizeRequest",
    "DetokenizeResponse",
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "ErrorResponse",
    "Float32",
    "Float32Array",
    "Forbidden",
    "GenerateRequest",
    "GenerateResponse",
    "InternalError",
    "ListModelResponse",
    "ListResponse",
    "Logprob",
    "Message",
    "ModelDetails",
    "NotFound",
    "Options",
    "ProcessModelResponse",
    "ProcessResponse",
    "ProgressResponse",
    "PullRequest",
    "PushRequest",
    "RequestCanceled",
    "ServerBusy",
    "ShowRequest",
    "ShowResponse",
    "Tensor",
    "TokenLogprob",
    "TokenizeRequest",
    "TokenizeResponse",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolFunction",
    "ToolFunctionParameters",
    "ToolProperty",
    "VersionResponse",
    "check_wire",
    "dumps",
    "format_go_duration",
    "format_keep_alive",
    "format_time",
    "go_quote",
    "merge_options",
    "ndjson_line",
    "parse_body",
    "parse_go_duration",
    "parse_json",
    "parse_keep_alive",
    "parse_keep_alive_env",
    "validate_options",
]
