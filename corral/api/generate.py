"""``POST /api/generate``: request and response (``api.GenerateRequest``/``GenerateResponse``)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import Field

from corral.api._base import InferenceRequest, put
from corral.api.messages import Base64Image, DebugInfo, Logprob, Metrics, ToolCall
from corral.gocodec import format_time

__all__ = ["GenerateRequest", "GenerateResponse"]


class GenerateRequest(InferenceRequest):
    """A completion request (shared fields and their decoding: ``InferenceRequest``)."""

    prompt: str = ""
    suffix: str = ""
    system: str = ""
    template: str = ""
    context: list[int] | None = None
    raw: bool = False
    images: list[Base64Image] | None = None
    # experimental image-generation fields, accepted and passed on
    width: int | None = None
    height: int | None = None
    steps: int | None = None


class GenerateResponse(Metrics):
    """One NDJSON chunk (or the whole non-stream answer) of ``/api/generate``.

    Non-final chunks carry ``model``, ``created_at``, ``response`` and ``done``; the final one adds
    ``done_reason``, ``context`` (not in raw mode) and the metrics. ``created_at`` defaults to now
    (``time.time_ns()``; a ``datetime`` is accepted too).
    """

    model: str
    remote_model: str = ""
    remote_host: str = ""
    created_at: datetime | int = Field(default_factory=time.time_ns)
    response: str = ""
    thinking: str = ""
    done: bool = False
    done_reason: str = ""
    context: list[int] | None = None
    tool_calls: list[ToolCall] | None = None
    debug_info: DebugInfo | None = None
    logprobs: list[Logprob] | None = None
    image: str = ""
    completed: int = 0
    total: int = 0
    # corral: what context-overflow handling cut from the prompt ({"messages": n, "tokens": n}), never silent
    truncated: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        put(out, "remote_model", self.remote_model)
        put(out, "remote_host", self.remote_host)
        out["created_at"] = format_time(self.created_at)
        out["response"] = self.response
        put(out, "thinking", self.thinking)
        out["done"] = self.done
        put(out, "done_reason", self.done_reason)
        put(out, "context", self.context)
        self.put_metrics(out)
        if self.tool_calls:
            out["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        if self.debug_info is not None:
            out["_debug_info"] = self.debug_info.to_wire()
        if self.logprobs:
            out["logprobs"] = [lp.to_wire() for lp in self.logprobs]
        put(out, "image", self.image)
        put(out, "completed", self.completed)
        put(out, "total", self.total)
        if self.truncated:
            out["truncated"] = self.truncated
        return out
