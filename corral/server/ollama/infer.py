"""``POST /api/generate`` and ``POST /api/chat``: the core's events in Ollama's NDJSON chunks.

Streamed by default; ``"stream": false`` merges the chunks into one object as Ollama does. Loading,
unloading and ``_debug_render_only`` answer one JSON object whatever ``stream`` says, as Ollama's do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.chat import ChatRequest, ChatResponse
from corral.api.generate import GenerateRequest, GenerateResponse
from corral.api.messages import DebugInfo, Message
from corral.server.core.chat import chat as core_chat
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.generate import generate as core_generate
from corral.server.core.stream import EventStream, WholeResponse
from corral.server.reqlog import read_body
from corral.server.state import state_of


def _answer(events: AsyncIterator[Event], wire: Callable[[Event], dict[str, Any]], whole: bool,
            merge: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> Response:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in events:
                yield wire(event)
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    if whole:
        return WholeResponse(chunks(), merge)  # type: ignore[return-value]
    return EventStream(chunks())  # type: ignore[return-value]


# --- /api/generate -------------------------------------------------------------------------------------


async def generate(request: Request) -> Response:
    req = await read_body(request, GenerateRequest)
    name = req.model

    def wire(event: Event) -> dict[str, Any]:
        if isinstance(event, Delta):
            return GenerateResponse(model=name, response=event.content, thinking=event.thinking,
                                    logprobs=event.logprobs).to_wire()
        if isinstance(event, Done):
            last = event.last
            return GenerateResponse(model=name, response=last.content, thinking=last.thinking, done=True,
                                    done_reason=event.reason, context=event.context, truncated=event.truncated,
                                    **event.metrics).to_wire()
        return GenerateResponse(model=name, done=False, debug_info=DebugInfo(
            rendered_template=event.prompt, image_count=event.image_count)).to_wire()

    once = (not req.prompt and not req.suffix) or req.debug_render_only
    return _answer(core_generate(state_of(request), req), wire, once or not req.stream, _merge_generate)


def _merge_generate(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One answer from the chunks: texts joined, log-probabilities in order, the final chunk's metrics."""
    response = "".join(p.get("response", "") for p in parts)
    thinking = "".join(p.get("thinking", "") for p in parts)
    logprobs = [lp for p in parts for lp in p.get("logprobs") or []]
    final: dict[str, Any] = {}
    for key, value in parts[-1].items():
        if key in ("thinking", "logprobs"):
            continue
        if key in _AFTER_GENERATE_LOGPROBS and logprobs:
            final["logprobs"], logprobs = logprobs, []
        final[key] = response if key == "response" else value
        if key == "response" and thinking:
            final["thinking"] = thinking  # Go's field order: thinking follows response
    if logprobs:
        final["logprobs"] = logprobs
    return final


# Go's field order puts logprobs after the metrics and before these in a generate response
_AFTER_GENERATE_LOGPROBS = frozenset({"image", "completed", "total", "truncated"})


# --- /api/chat -----------------------------------------------------------------------------------------


async def chat(request: Request) -> Response:
    req = await read_body(request, ChatRequest)
    name = req.model

    def wire(event: Event) -> dict[str, Any]:
        if isinstance(event, Delta):
            return ChatResponse(model=name, message=_message(event), logprobs=event.logprobs).to_wire()
        if isinstance(event, Done):
            return ChatResponse(model=name, message=_message(event.last), done=True, done_reason=event.reason,
                                truncated=event.truncated, **event.metrics).to_wire()
        assert isinstance(event, Rendered)
        return ChatResponse(model=name, message=Message(role="assistant", content=""), done=False,
                            debug_info=DebugInfo(rendered_template=event.prompt,
                                                 image_count=event.image_count)).to_wire()

    once = not req.messages or req.debug_render_only
    return _answer(core_chat(state_of(request), req), wire, once or not req.stream, _merge_chat)


def _message(delta: Delta) -> Message:
    return Message(role="assistant", content=delta.content, thinking=delta.thinking,
                   tool_calls=delta.calls or None)


def _merge_chat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One answer from the chunks: texts joined, every tool call and log-probability, the final metrics."""
    messages = [p.get("message", {}) for p in parts]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(m.get("content", "") for m in messages)}
    thinking = "".join(m.get("thinking", "") for m in messages)
    if thinking:
        message["thinking"] = thinking
    calls = [call for m in messages for call in m.get("tool_calls") or []]
    if calls:
        message["tool_calls"] = calls
    logprobs = [lp for p in parts for lp in p.get("logprobs") or []]
    final: dict[str, Any] = {}
    for key, value in parts[-1].items():
        if key == "logprobs":
            continue
        if key in _AFTER_CHAT_LOGPROBS and logprobs:
            final["logprobs"], logprobs = logprobs, []
        final[key] = message if key == "message" else value
    if logprobs:
        final["logprobs"] = logprobs
    return final


# Go's field order puts logprobs after done_reason and _debug_info and before these in a chat response
_AFTER_CHAT_LOGPROBS = frozenset({"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                                  "eval_count", "eval_duration", "draft_tokens", "draft_accepted", "truncated"})


def routes() -> list[Route]:
    return [Route("/api/generate", generate, methods=["POST"]), Route("/api/chat", chat, methods=["POST"])]
