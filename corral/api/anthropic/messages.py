"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: Anthropic's request bodies, decoded strictly
(:class:`~corral.api._base.RequestModel`: wrong types are a 400, unknown keys are ignored), and the
shapes of its answers: the message, its content blocks, ``usage``, stream events and the error body."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import Field

from corral.api._base import RequestModel
from corral.api.openai.common import OllamaExtras

__all__ = [
    "ContentBlock",
    "CountTokensRequest",
    "ImageSource",
    "MessageParam",
    "MessagesRequest",
    "ThinkingConfig",
    "ToolChoiceParam",
    "ToolParam",
    "anthropic_envelope",
    "event",
    "message",
    "new_id",
    "usage",
]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error"}


def new_id(prefix: str) -> str:
    """An id in Anthropic's style (``msg_…``, ``toolu_…``, ``req_…``): a prefix and 24 hex digits."""
    return f"{prefix}_{secrets.token_hex(12)}"


def anthropic_envelope(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body; its ``type`` follows the status as Anthropic's own does."""
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": new_id("req")}


# --- requests ----------------------------------------------------------------------------------------------


class ImageSource(RequestModel):
    type: str = ""
    media_type: str = ""
    data: str = ""
    url: str = ""


class ContentBlock(RequestModel):
    """One block of a message, whatever its ``type`` (text, image, tool_use, tool_result, thinking); the
    fields a type does not use stay at their defaults. Blocks of other types are decoded and skipped."""

    type: str = ""
    text: str | None = None
    source: ImageSource | None = None
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None
    tool_use_id: str = ""
    content: str | list[ContentBlock] | None = None
    is_error: bool = False
    thinking: str | None = None
    signature: str = ""


class MessageParam(RequestModel):
    role: str = ""
    content: str | list[ContentBlock] | None = None  # a string is one text block


class ToolParam(RequestModel):
    type: str = ""  # "custom" or absent for a client tool; Anthropic's server tools have their own types
    name: str = ""
    description: str = ""
    input_schema: dict[str, Any] | None = None


class ToolChoiceParam(RequestModel):
    type: str = ""
    name: str = ""
    disable_parallel_tool_use: bool = False


class ThinkingConfig(RequestModel):
    type: str = ""
    budget_tokens: int = 0  # accepted, not enforced: a trace runs until the model closes it


class OutputConfig(RequestModel):
    effort: str = ""


class CountTokensRequest(OllamaExtras):
    """What a prompt is made of; ``/v1/messages/count_tokens`` takes exactly this."""

    model: str = ""
    messages: list[MessageParam] = Field(default_factory=list)
    system: str | list[ContentBlock] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = 0  # required: 0 (absent) is refused
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None


ContentBlock.model_rebuild()


# --- responses ---------------------------------------------------------------------------------------------


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def message(msg_id: str, model: str, content: list[dict[str, Any]], stop_reason: str | None,
            stop_sequence: str | None, tokens: dict[str, int]) -> dict[str, Any]:
    """A whole message (also ``message_start``'s, with no content and no stop reason yet)."""
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": tokens}


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A stream event's data; its ``type`` repeats the SSE event name, as Anthropic's do."""
    return {"type": kind, **fields}
