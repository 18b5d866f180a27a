"""Pieces shared by generate and chat: messages, tools, tool calls, log-probabilities, metrics.

``Message``, ``ToolCall`` and ``Tool`` travel both ways (requests carry them, responses and
templates echo them), so they decode strictly like requests and also have ``to_wire()`` giving
Go's field order, which is also what ``{{ json .Tools }}`` renders inside a template.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from corral.api._base import RequestModel, ResponseModel, put

__all__ = [
    "Base64Image",
    "DebugInfo",
    "Logprob",
    "Message",
    "Metrics",
    "TokenLogprob",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolFunction",
    "ToolFunctionParameters",
    "ToolProperty",
]

EXPECTED_TYPE_ERROR = "corral_expected"


def _check_base64(value: str) -> str:
    # Go decodes []byte with base64.StdEncoding, which skips CR and LF but nothing else.
    try:
        base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError(EXPECTED_TYPE_ERROR, "expected {expected}", {"expected": "base64 string"}) from None
    return value


Base64Image = Annotated[str, AfterValidator(_check_base64)]
"""An image in a request: base64 text (validated; decoding is left to the route)."""


class ToolCallFunction(RequestModel):
    index: int = 0
    name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        # Ollama's index has no omitempty; arguments keep the caller's key order
        return {"index": self.index, "name": self.name, "arguments": dict(self.arguments)}


class ToolCall(RequestModel):
    id: str = ""
    function: ToolCallFunction = Field(default_factory=ToolCallFunction)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        put(out, "id", self.id)
        out["function"] = self.function.to_wire()
        return out


class Message(RequestModel):
    """A chat message. ``role`` is lower-cased on decode, as Ollama's ``Message.UnmarshalJSON`` does."""

    role: str = ""
    content: str = ""
    thinking: str = ""
    images: list[Base64Image] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_name: str = ""
    tool_call_id: str = ""

    @field_validator("role")
    @classmethod
    def _lower_role(cls, value: str) -> str:
        return value.lower()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        put(out, "thinking", self.thinking)
        put(out, "images", self.images)
        if self.tool_calls:
            out["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        put(out, "tool_name", self.tool_name)
        put(out, "tool_call_id", self.tool_call_id)
        return out


PropertyType = str | list[str]


class ToolProperty(RequestModel):
    """One JSON-Schema property of a tool parameter (the subset Ollama keeps)."""

    any_of: list[ToolProperty] | None = Field(default=None, validation_alias="anyOf")
    type: PropertyType | None = None
    items: Any = None
    description: str = ""
    enum: list[Any] | None = None
    properties: dict[str, ToolProperty] | None = None
    required: list[str] | None = None  # an object property's own required keys

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.any_of:
            out["anyOf"] = [p.to_wire() for p in self.any_of]
        # Go's PropertyType writes a one-element list as a bare string
        if isinstance(self.type, list) and len(self.type) == 1:
            out["type"] = self.type[0]
        else:
            put(out, "type", self.type)
        if self.items is not None:
            out["items"] = self.items
        put(out, "description", self.description)
        put(out, "enum", self.enum)
        if self.properties is not None:
            out["properties"] = {k: v.to_wire() for k, v in self.properties.items()}
        put(out, "required", self.required)
        return out


class ToolFunctionParameters(RequestModel):
    type: str = ""
    defs: Any = Field(default=None, validation_alias="$defs")
    items: Any = None
    required: list[str] | None = None
    properties: dict[str, ToolProperty] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.defs is not None:
            out["$defs"] = self.defs
        if self.items is not None:
            out["items"] = self.items
        put(out, "required", self.required)
        # no omitempty on properties in Ollama: an absent map is written as null
        out["properties"] = None if self.properties is None else {k: v.to_wire() for k, v in self.properties.items()}
        return out


class ToolFunction(RequestModel):
    name: str = ""
    description: str = ""
    parameters: ToolFunctionParameters = Field(default_factory=ToolFunctionParameters)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        put(out, "description", self.description)
        out["parameters"] = self.parameters.to_wire()
        return out


class Tool(RequestModel):
    """A tool offered to the model: ``{"type": "function", "function": {...}}``."""

    type: str = ""
    items: Any = None
    function: ToolFunction = Field(default_factory=ToolFunction)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.items is not None:
            out["items"] = self.items
        out["function"] = self.function.to_wire()
        return out


class TokenLogprob(ResponseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"token": self.token, "logprob": float(self.logprob)}
        put(out, "bytes", self.bytes)
        return out


class Logprob(TokenLogprob):
    """Log-probability of one generated token, with the most likely alternatives if asked."""

    top_logprobs: list[TokenLogprob] | None = None

    def to_wire(self) -> dict[str, Any]:
        out = super().to_wire()
        if self.top_logprobs:
            out["top_logprobs"] = [t.to_wire() for t in self.top_logprobs]
        return out


class DebugInfo(ResponseModel):
    """``_debug_info`` of a ``_debug_render_only`` request: the prompt that would have been run."""

    rendered_template: str
    image_count: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rendered_template": self.rendered_template}
        put(out, "image_count", self.image_count)
        return out


class Metrics(ResponseModel):
    """Timings in nanoseconds and token counts; each omitted from the wire when zero."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    # corral: speculative decoding's guesses and how many the model kept (absent when it did not speculate)
    draft_tokens: int = 0
    draft_accepted: int = 0

    def put_metrics(self, out: dict[str, Any]) -> None:
        put(out, "total_duration", self.total_duration)
        put(out, "load_duration", self.load_duration)
        put(out, "prompt_eval_count", self.prompt_eval_count)
        put(out, "prompt_eval_duration", self.prompt_eval_duration)
        put(out, "eval_count", self.eval_count)
        put(out, "eval_duration", self.eval_duration)
        if self.draft_tokens:
            out["draft_tokens"], out["draft_accepted"] = self.draft_tokens, self.draft_accepted
