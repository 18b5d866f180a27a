"""``POST /v1/chat/completions``: the request as OpenAI clients send it (decoded as Ollama decodes it)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from corral.api._base import RequestModel, check_top_logprobs
from corral.api.messages import Tool
from corral.api.openai.common import OllamaExtras, StreamOptions, check_n

__all__ = ["ChatCompletionRequest", "ChatMessage", "ContentPart", "FunctionCall", "ResponseFormat", "ToolCallIn"]


class ImageURL(RequestModel):
    url: str = ""


class InputAudio(RequestModel):
    data: str = ""
    format: str = ""


class ContentPart(RequestModel):
    type: str = ""
    text: str | None = None
    image_url: str | ImageURL | None = None
    input_audio: InputAudio | None = None


class FunctionCall(RequestModel):
    name: str = ""
    arguments: str = ""


class ToolCallIn(RequestModel):
    id: str = ""
    index: int = 0
    type: str = "function"
    function: FunctionCall = Field(default_factory=FunctionCall)


class ChatMessage(RequestModel):
    role: str = ""
    content: str | list[ContentPart] | None = None
    name: str = ""
    tool_call_id: str = ""
    tool_calls: list[ToolCallIn] | None = None
    reasoning: str = ""
    # what some clients send back for a reasoning model's earlier turn
    reasoning_content: str = ""


class JSONSchema(RequestModel):
    name: str = ""
    schema_: dict[str, Any] | None = Field(default=None, validation_alias="schema")
    strict: bool | None = None


class ResponseFormat(RequestModel):
    type: str = ""
    json_schema: JSONSchema | None = None


class Reasoning(RequestModel):
    effort: str = ""


class NamedFunction(RequestModel):
    name: str = ""


class NamedTool(RequestModel):
    """``tool_choice`` naming one function: ``{"type": "function", "function": {"name": ...}}``."""

    type: str = "function"
    function: NamedFunction = Field(default_factory=NamedFunction)


class ChatCompletionRequest(OllamaExtras):
    model: str = ""
    messages: list[ChatMessage] = Field(default_factory=list)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: str | list[Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: str | NamedTool | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int = 0
    n: int = 1
    debug_render_only: bool = Field(default=False, validation_alias="_debug_render_only")

    _check_n = field_validator("n")(check_n)

    _check_top_logprobs = field_validator("top_logprobs")(check_top_logprobs)
