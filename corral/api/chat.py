"""``POST /api/chat``: request and response (``api.ChatRequest``/``ChatResponse``)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import Field

from corral.api._base import InferenceRequest, put
from corral.api.messages import DebugInfo, Logprob, Message, Metrics, Tool
from corral.gocodec import format_time

__all__ = ["ChatMessageOut", "ChatRequest", "ChatResponse"]


class ChatRequest(InferenceRequest):
    """A chat request (shared fields and their decoding: ``InferenceRequest``).

    An empty ``messages`` list only loads the model (``done_reason: "load"``), or unloads it
    when ``keep_alive`` is 0.
    """

    messages: list[Message] = Field(default_factory=list)
    tools: list[Tool] | None = None


ChatMessageOut = Message
"""The ``message`` of a chat response: the same ``Message`` type (role, content, thinking, tool_calls)."""


def _assistant() -> Message:
    return Message(role="assistant")


class ChatResponse(Metrics):
    """One NDJSON chunk (or the whole non-stream answer) of ``/api/chat``.

    ``message`` always has ``role`` and ``content``; ``thinking`` and ``tool_calls`` only when
    non-empty. The final chunk adds ``done_reason`` and the metrics.
    """

    model: str
    remote_model: str = ""
    remote_host: str = ""
    created_at: datetime | int = Field(default_factory=time.time_ns)
    message: Message = Field(default_factory=_assistant)
    done: bool = False
    done_reason: str = ""
    debug_info: DebugInfo | None = None
    logprobs: list[Logprob] | None = None
    # corral: what context-overflow handling cut from the prompt ({"messages": n, "tokens": n}), never silent
    truncated: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        # Go field order differs from generate: _debug_info and logprobs precede the metrics
        out: dict[str, Any] = {"model": self.model}
        put(out, "remote_model", self.remote_model)
        put(out, "remote_host", self.remote_host)
        out["created_at"] = format_time(self.created_at)
        out["message"] = self.message.to_wire()
        out["done"] = self.done
        put(out, "done_reason", self.done_reason)
        if self.debug_info is not None:
            out["_debug_info"] = self.debug_info.to_wire()
        if self.logprobs:
            out["logprobs"] = [lp.to_wire() for lp in self.logprobs]
        self.put_metrics(out)
        if self.truncated:
            out["truncated"] = self.truncated
        return out
