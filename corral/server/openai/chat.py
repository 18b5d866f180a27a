"""``POST /v1/chat/completions``: OpenAI's chat translated onto the native chat path, and its events back.

Beyond Ollama: ``tool_choice`` and ``parallel_tool_calls`` are honoured, ``n`` > 1 generates several choices
side by side on the runner's slots, and Ollama's ``options``/``keep_alive`` are read from the body.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.chat import ChatRequest
from corral.api.errors import BadRequest
from corral.api.messages import Logprob, Message, ToolCall, ToolCallFunction
from corral.api.openai.chat import ChatCompletionRequest, ChatMessage
from corral.api.openai.common import SYSTEM_FINGERPRINT, Usage, new_id, openai_envelope, stop_list
from corral.api.wire import dumps
from corral.server.core.chat import chat as core_chat
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.fanout import interleave, pieces
from corral.server.core.stream import EventStream, WholeResponse
from corral.server.family import family_route
from corral.server.openai.shared import (
    OPENAI_SSE,
    choices,
    decode_image_url,
    options_from,
    think_from_effort,
    tool_choice_from,
)
from corral.server.reqlog import read_body
from corral.server.state import state_of

__all__ = ["native_chat_request", "openai_tool_calls", "routes"]


# --- request ----------------------------------------------------------------------------------------------


def native_chat_request(req: ChatCompletionRequest) -> ChatRequest:
    """Ollama's ``FromChatRequest``, in corral's words."""
    if not req.messages:
        raise BadRequest("[] is too short - 'messages'")
    messages: list[Message] = []
    for msg in req.messages:
        messages.extend(_messages(msg, req.messages))
    fmt: str | dict[str, Any] | None = None
    if req.response_format is not None:
        kind = req.response_format.type.strip().lower()
        if kind == "json_object":
            fmt = "json"
        elif kind == "json_schema" and req.response_format.json_schema is not None:
            fmt = req.response_format.json_schema.schema_
    effort = req.reasoning.effort if req.reasoning is not None else req.reasoning_effort
    options = options_from(req.options, stop=stop_list(req.stop, strict=False),
                           num_predict=req.max_completion_tokens if req.max_completion_tokens is not None
                           else req.max_tokens,
                           temperature=req.temperature, seed=req.seed, frequency_penalty=req.frequency_penalty,
                           presence_penalty=req.presence_penalty, top_p=req.top_p)
    native = ChatRequest(model=req.model, messages=messages, format=fmt, options=options, stream=req.stream,
                         tools=req.tools, think=think_from_effort(effort), logprobs=bool(req.logprobs),
                         top_logprobs=req.top_logprobs, debug_render_only=req.debug_render_only)
    native.keep_alive = req.keep_alive  # already decoded
    return native


def _messages(msg: ChatMessage, everything: list[ChatMessage]) -> list[Message]:
    """One native message per OpenAI message. Text parts are joined as Ollama's collation joins consecutive
    turns of one role (a blank line between), so a chat template of either kind sees one turn, not several."""
    role = msg.role.lower()
    tool_name = ""
    if role == "tool":
        tool_name = msg.name or _name_of_call(everything, msg.tool_call_id)
    calls = _native_calls(msg)
    thinking = msg.reasoning or msg.reasoning_content
    if msg.content is None and not calls:
        raise BadRequest("invalid message content type: <nil>")
    texts: list[str] = []
    images: list[str] = []
    if isinstance(msg.content, str):
        texts.append(msg.content)
    for part in msg.content if isinstance(msg.content, list) else []:
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif part.type == "image_url" and part.image_url is not None:
            url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
            images.append(decode_image_url(url))
        elif part.type == "input_audio" and part.input_audio is not None:
            images.append(part.input_audio.data)  # as Ollama: audio travels with the images
        else:
            raise BadRequest("invalid message format")
    return [Message(role=role, content="\n\n".join(texts), thinking=thinking, images=images or None,
                    tool_calls=calls or None, tool_name=tool_name, tool_call_id=msg.tool_call_id)]


def _native_calls(msg: ChatMessage) -> list[ToolCall]:
    calls = []
    for call in msg.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments) if call.function.arguments.strip() else {}
        except ValueError:
            raise BadRequest("invalid tool call arguments") from None
        if not isinstance(arguments, dict):
            raise BadRequest("invalid tool call arguments")
        calls.append(ToolCall(id=call.id, function=ToolCallFunction(index=call.index, name=call.function.name,
                                                                    arguments=arguments)))
    return calls


def _name_of_call(messages: list[ChatMessage], call_id: str) -> str:
    """The function a tool result answers, found by its call id (the last call with that id wins)."""
    if not call_id:
        return ""
    for msg in reversed(messages):
        for call in msg.tool_calls or []:
            if call.id == call_id:
                return call.function.name
    return ""


# --- response ---------------------------------------------------------------------------------------------


def openai_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "index": c.function.index, "type": "function",
             "function": {"name": c.function.name, "arguments": dumps(c.function.arguments).decode()}} for c in calls]


def _logprobs(items: list[Logprob] | None) -> dict[str, Any] | None:
    return {"content": [lp.to_wire() for lp in items]} if items else None


def _finish(reason: str, called: bool) -> str:
    return "tool_calls" if reason == "stop" and called else reason


@dataclass
class _Choice:
    """One choice of a non-streamed answer, added up from its events."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[Logprob] = field(default_factory=list)
    done: Done | None = None
    rendered: Rendered | None = None

    def add(self, delta: Delta) -> None:
        self.content.append(delta.content)
        self.reasoning.append(delta.thinking)
        self.calls += delta.calls
        self.logprobs += delta.logprobs or []

    def wire(self, index: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        reasoning = "".join(self.reasoning)
        if reasoning:
            message["reasoning"] = reasoning
        if self.calls:
            message["tool_calls"] = openai_tool_calls(self.calls)
        out: dict[str, Any] = {"index": index, "message": message,
                               "finish_reason": _finish(self.done.reason, bool(self.calls)) if self.done else None}
        logprobs = _logprobs(self.logprobs)
        if logprobs:
            out["logprobs"] = logprobs
        return out


class _Answer:
    """Chunk and completion builders that share one id, one ``created`` and the model's name."""

    def __init__(self, model: str) -> None:
        self.id = new_id("chatcmpl")
        self.created = int(time.time())
        self.model = model

    def head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "system_fingerprint": SYSTEM_FINGERPRINT}

    def chunk(self, index: int, delta: dict[str, Any], finish: str | None = None,
              logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
        if logprobs:
            choice["logprobs"] = logprobs
        return {**self.head("chat.completion.chunk"), "choices": [choice]}


def _stream(answer: _Answer, events: AsyncGenerator[tuple[int, Event], None], include_usage: bool,
            n: int) -> AsyncIterator[dict[str, Any]]:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        opened = [False] * n
        called = [False] * n
        prompt = completion = cached = 0
        async with contextlib.aclosing(pieces(events)) as stream:  # leaving early closes every choice's stream
            async for i, delta, done in stream:
                # the final event's empty remainder adds nothing, unless nothing opened the choice yet
                if delta or not opened[i] or done is None:
                    for n_part, part in enumerate(_delta_chunks(delta, role=not opened[i])):
                        called[i] = called[i] or bool(part.get("tool_calls"))
                        # a split delta's log-probabilities go with its first part, as Ollama sends them
                        yield answer.chunk(i, part, logprobs=None if n_part else _logprobs(delta.logprobs))
                    opened[i] = True
                if done is not None:
                    yield answer.chunk(i, {}, _finish(done.reason, called[i]))
                    prompt, cached = prompt or done.prompt_tokens, cached or done.cached_tokens
                    completion += done.completion_tokens
        if include_usage:
            yield {**answer.head("chat.completion.chunk"), "choices": [], "usage": Usage.of(prompt, completion, cached)}

    return chunks()


def _delta_chunks(delta: Delta, *, role: bool) -> list[dict[str, Any]]:
    """One delta, or two when it holds both reasoning and an answer (reasoning first), as Ollama splits them."""
    calls = openai_tool_calls(delta.calls) if delta.calls else None
    head = {"role": "assistant"} if role else {}
    if delta.thinking and (delta.content or calls):
        first = {**head, "reasoning": delta.thinking}
        second: dict[str, Any] = {"content": delta.content}
        if calls:
            second["tool_calls"] = calls
        return [first, second]
    part: dict[str, Any] = {**head, "content": delta.content}
    if delta.thinking:
        part["reasoning"] = delta.thinking
    if calls:
        part["tool_calls"] = calls
    return [part]


async def chat_completions(request: Request) -> Response:
    req = await read_body(request, ChatCompletionRequest)
    native = native_chat_request(req)
    choice = tool_choice_from(req.tool_choice, req.parallel_tool_calls)
    state = state_of(request)
    events = interleave([core_chat(state, one, tool_choice=choice) for one in choices(native, req.n)])
    answer = _Answer(req.model)
    if req.stream:
        include_usage = req.stream_options is not None and req.stream_options.include_usage
        return EventStream(_stream(answer, events, include_usage, req.n), OPENAI_SSE)  # type: ignore[return-value]

    def merge(items: list[tuple[int, Event]]) -> dict[str, Any]:
        choices = [_Choice() for _ in range(req.n)]
        for i, event in items:
            if isinstance(event, Delta):
                choices[i].add(event)
            elif isinstance(event, Done):
                choices[i].add(event.last)
                choices[i].done = event
            else:
                choices[i].rendered = event
        dones = [c.done for c in choices if c.done is not None]
        prompt = dones[0].prompt_tokens if dones else 0
        out: dict[str, Any] = {**answer.head("chat.completion"), "choices": [c.wire(i) for i, c in enumerate(choices)],
                               "usage": Usage.of(prompt, sum(d.completion_tokens for d in dones),
                                                 dones[0].cached_tokens if dones else 0)}
        rendered = choices[0].rendered
        if rendered is not None:
            out["_debug_info"] = {"rendered_template": rendered.prompt, "image_count": rendered.image_count}
        return out

    return WholeResponse(events, merge, openai_envelope)  # type: ignore[return-value]


def routes() -> list[Route]:
    return [family_route("/v1/chat/completions", chat_completions, ["POST"], openai_envelope)]
