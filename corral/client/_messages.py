"""What a conversation is made of: ``Message`` (with tool calls and images) and ``Tool`` definitions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from corral.client._image import Image
from corral.client._model import SubscriptableBaseModel


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
