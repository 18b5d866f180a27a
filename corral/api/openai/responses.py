"""``POST /v1/responses``: OpenAI's Responses request as clients send it (decoded as Ollama decodes it).

Input items and content parts are unions discriminated by ``type``; each is decoded here into one model that
holds the fields of every kind, and the route reads the fields that its ``type`` has (and answers an unknown
``type`` with a 400 naming the item). Stateless, as Ollama: ``previous_response_id`` and ``conversation``
are accepted and ignored, ``store`` and ``background`` only echoed.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from corral.api._base import RequestModel, api_error, check_top_logprobs
from corral.api.openai.common import OllamaExtras

__all__ = [
    "ContentPart",
    "InputItem",
    "Reasoning",
    "ResponsesRequest",
    "ResponsesTool",
    "TextConfig",
    "TextFormat",
    "ToolChoiceParam",
]


class ContentPart(RequestModel):
    """``input_text``, ``output_text``, ``refusal``, ``input_image``, ``input_file``; a reasoning item's
    ``summary_text`` and ``reasoning_text`` parts have the same shape (``type`` and ``text``)."""

    type: str = ""
    text: str = ""
    refusal: str = ""
    image_url: str = ""
    file_id: str = ""
    detail: str = ""
    file_data: str = ""
    file_url: str = ""
    filename: str = ""


class InputItem(RequestModel):
    """One item of ``input``: ``message`` (also without ``type`` when it has a ``role``), ``function_call``,
    ``function_call_output``, ``reasoning``, ``web_search_call``."""

    type: str = ""
    id: str = ""
    status: str = ""
    # message
    role: str = ""
    content: str | list[ContentPart] | None = None
    # function_call, function_call_output
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    output: str | list[ContentPart] | None = None
    # reasoning (``content`` holds its reasoning_text parts)
    summary: list[ContentPart] | None = None
    encrypted_content: str = ""

    @property
    def kind(self) -> str:
        """The item's type; a bare ``{"role", "content"}`` is a message (the shorthand clients send)."""
        return self.type or ("message" if self.role else "")


class ResponsesTool(RequestModel):
    """A tool in the Responses' flat shape: ``{"type": "function", "name", "description", "parameters",
    "strict"}``; a ``namespace`` groups function tools under a name (``tools``)."""

    type: str = ""
    name: str = ""
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    tools: list[ResponsesTool] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The tool as a Response echoes it."""
        out: dict[str, Any] = {"type": self.type, "name": self.name, "description": self.description or None,
                               "parameters": self.parameters, "strict": self.strict}
        if self.tools:
            out["tools"] = [t.to_wire() for t in self.tools]
        return out


class AllowedTool(RequestModel):
    type: str = "function"
    name: str = ""


class ToolChoiceParam(RequestModel):
    """``tool_choice`` as an object: ``{"type": "function", "name"}`` or ``{"type": "allowed_tools", "mode",
    "tools": [{"type": "function", "name"}]}`` (hosted tools' choices are refused by the route)."""

    type: str = ""
    name: str = ""
    mode: str = ""
    tools: list[AllowedTool] | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.type == "allowed_tools":
            return {"type": self.type, "mode": self.mode or "auto",
                    "tools": [{"type": t.type, "name": t.name} for t in self.tools or []]}
        out: dict[str, Any] = {"type": self.type}
        if self.name:
            out["name"] = self.name
        return out


class TextFormat(RequestModel):
    type: str = ""
    name: str = ""
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, validation_alias="schema")
    strict: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type or "text"}
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        if self.schema_ is not None:
            out["schema"] = self.schema_
        if self.strict is not None:
            out["strict"] = self.strict
        return out


class TextConfig(RequestModel):
    format: TextFormat | None = None
    verbosity: str = ""


class Reasoning(RequestModel):
    effort: str = ""
    summary: str = ""
    generate_summary: str = ""  # the deprecated name of ``summary``


class ResponsesRequest(OllamaExtras):
    model: str = ""
    input: list[InputItem] = Field(default_factory=list)
    instructions: str = ""
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    include: list[str] | None = None
    reasoning: Reasoning | None = None
    text: TextConfig | None = None
    tools: list[ResponsesTool] | None = None
    tool_choice: str | ToolChoiceParam | None = None
    parallel_tool_calls: bool | None = None
    stream: bool = False
    truncation: str | None = None
    metadata: dict[str, Any] | None = None
    background: bool = False
    store: bool | None = None
    # accepted and ignored, as Ollama does: corral keeps no responses or conversations to continue
    previous_response_id: str | None = None
    conversation: Any = None
    debug_render_only: bool = Field(default=False, validation_alias="_debug_render_only")

    @field_validator("input", mode="before")
    @classmethod
    def _text_or_items(cls, value: Any) -> Any:
        # a string is the user's one message; "" is no message at all, as in Ollama
        if isinstance(value, str):
            return [{"type": "message", "role": "user", "content": value}] if value else []
        if not isinstance(value, list):
            raise api_error('invalid value for field "input": expected string or array')
        return value

    _check_top_logprobs = field_validator("top_logprobs")(check_top_logprobs)
