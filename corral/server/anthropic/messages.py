"""``POST /v1/messages`` (Anthropic's Messages API) and ``/v1/messages/count_tokens``: the request translated
onto the native chat path (the answer is built in :mod:`corral.server.anthropic.reply`).

As Ollama translates it: ``system`` (a string, or text blocks joined) opens the chat; a message's text blocks
are joined into one native message with its images, ``tool_use`` calls and ``thinking``; ``tool_result``
blocks become ``tool`` messages (before a user's own text). ``max_tokens`` is ``num_predict``;
``temperature``, ``top_p``, ``top_k`` and ``stop_sequences`` are options; ``thinking`` enabled turns thinking
on (its budget is not enforced) unless the model cannot think, where it is dropped rather than refused.

Beyond Ollama: ``tool_choice`` is honoured (``any`` and ``tool`` force a call by a grammar,
``disable_parallel_tool_use`` keeps one call); Ollama's ``options`` and ``keep_alive`` are read from the body;
a tool result gets its tool's name from the ``tool_use`` it answers; ``input_tokens`` counts the whole prompt
(a stream's ``message_start`` too: it is counted before the run) and ``count_tokens`` is the tokenizer's
exact count; ``stop_reason`` is ``stop_sequence`` when one of ``stop_sequences`` ended the reply.
Anthropic's server tools (web search...) are skipped: nothing here runs them.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.anthropic.messages import (
    ContentBlock,
    CountTokensRequest,
    MessageParam,
    MessagesRequest,
    anthropic_envelope,
    new_id,
)
from corral.api.chat import ChatRequest
from corral.api.errors import APIError, BadRequest, model_required
from corral.api.messages import Message, Tool, ToolCall, ToolCallFunction, ToolFunction, ToolFunctionParameters
from corral.server.anthropic.reply import merger, stream_events
from corral.server.core.chat import ToolChoice
from corral.server.core.chat import chat as core_chat
from corral.server.core.count import count_tokens as core_count
from corral.server.core.generation import resolve
from corral.server.core.stream import EVENT_STREAM, EventStream, Framing, WholeResponse, json_response
from corral.server.family import family_route
from corral.server.reqlog import read_body
from corral.server.state import ServerState, state_of

__all__ = ["native_request", "routes"]

ANTHROPIC_SSE = Framing(EVENT_STREAM, anthropic_envelope, sse=True, error_event="error")

# --- request ----------------------------------------------------------------------------------------------


def native_request(req: CountTokensRequest, state: ServerState) -> tuple[ChatRequest, ToolChoice]:
    """The native chat request and tool choice for an Anthropic request (its fields checked first)."""
    if not req.model:
        raise model_required()
    if isinstance(req, MessagesRequest) and req.max_tokens <= 0:
        raise BadRequest("max_tokens is required and must be positive")
    if not req.messages:
        raise BadRequest("messages is required")
    system = req.system if isinstance(req.system, str) else "".join(
        b.text or "" for b in req.system or [] if b.type == "text")
    messages = [Message(role="system", content=system)] if system else []
    # a tool result names only its call's id; templates want the tool's name
    names = {b.id: b.name for m in req.messages if isinstance(m.content, list)
             for b in m.content if b.type == "tool_use"}
    for msg in req.messages:
        messages += _messages(msg, names)
    options = dict(req.options or {})
    if isinstance(req, MessagesRequest):
        fields = {"num_predict": req.max_tokens, "temperature": req.temperature, "top_p": req.top_p,
                  "top_k": req.top_k, "stop": req.stop_sequences or None}
        options.update({k: v for k, v in fields.items() if v is not None})
    choice = _tool_choice(req)
    native = ChatRequest(model=req.model, messages=messages, options=options, tools=_tools(req) or None,
                         stream=isinstance(req, MessagesRequest) and req.stream, think=_think(req),
                         # the stop-sequence check reads the generated tokens' bytes (reply.StopWatch)
                         logprobs=isinstance(req, MessagesRequest) and bool(req.stop_sequences))
    native.keep_alive = req.keep_alive  # already decoded
    if native.think and "thinking" not in resolve(state, req.model).capabilities():
        native.think = None  # as Ollama does for Anthropic clients, which ask for thinking of any model
    return native, choice


def _messages(msg: MessageParam, names: dict[str, str]) -> list[Message]:
    role = msg.role.lower()
    if msg.content is None:
        raise BadRequest("message content is required")
    blocks = [ContentBlock(type="text", text=msg.content)] if isinstance(msg.content, str) else msg.content
    text: list[str] = []
    images: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    thinking = ""
    for b in blocks:
        if b.type == "text":
            text.append(b.text or "")
        elif b.type == "image":
            images.append(_image(b))
        elif b.type == "tool_use":
            if not b.id or not b.name:
                missing = "id" if not b.id else "name"
                raise BadRequest(f"tool_use block missing required '{missing}' field")
            calls.append(ToolCall(id=b.id, function=ToolCallFunction(index=len(calls), name=b.name,
                                                                     arguments=b.input or {})))
        elif b.type == "tool_result":
            parts = [ContentBlock(type="text", text=b.content)] if isinstance(b.content, str) else b.content or []
            results.append(Message(role="tool", content="".join(p.text or "" for p in parts if p.type == "text"),
                                   images=[_image(p) for p in parts if p.type == "image"] or None,
                                   tool_call_id=b.tool_use_id, tool_name=names.get(b.tool_use_id, "")))
        elif b.type == "thinking":
            thinking = b.thinking or thinking
    content = "".join(text)
    own = [Message(role=role, content=content, images=images or None, tool_calls=calls or None,
                   thinking=thinking)] if content or images or calls or thinking else []
    # a user turn answers the calls before it says anything else
    return [*results, *own] if role == "user" else [*own, *results]


def _image(block: ContentBlock) -> str:
    source = block.source
    if source is None:
        raise BadRequest("invalid image source")
    if source.type != "base64":
        raise BadRequest(f"invalid image source type: {source.type}. Only base64 images are supported.")
    data = source.data.replace("\r", "").replace("\n", "")  # as Go's base64 decoder, which skips line breaks
    try:
        if not base64.b64decode(data, validate=True):
            raise ValueError("no image")
    except (binascii.Error, ValueError):
        raise BadRequest("invalid base64 image data") from None
    return data


def _tools(req: CountTokensRequest) -> list[Tool]:
    tools = []
    for t in req.tools or []:
        if t.type not in ("", "custom"):
            continue  # Anthropic's server tools (web search...) run on Anthropic's side; there is none here
        if not t.name:
            raise BadRequest("tool name is required")
        try:
            params = ToolFunctionParameters.model_validate(t.input_schema or {})
        except ValidationError:
            raise BadRequest(f'invalid input_schema for tool "{t.name}"') from None
        tools.append(Tool(type="function", function=ToolFunction(name=t.name, description=t.description,
                                                                 parameters=params)))
    return tools


def _think(req: CountTokensRequest) -> bool | str | None:
    kind = req.thinking.type if req.thinking is not None else ""
    if kind in ("enabled", "adaptive"):
        return True
    if kind == "disabled":
        return False
    if kind:
        raise BadRequest(f'invalid thinking type: "{kind}" (must be "enabled", "adaptive" or "disabled")')
    effort = (req.output_config.effort if req.output_config is not None else "").strip().lower()
    effort = "high" if effort == "xhigh" else effort
    return effort if effort in ("low", "medium", "high", "max") else None


def _tool_choice(req: CountTokensRequest) -> ToolChoice:
    c = req.tool_choice
    if c is None:
        return ToolChoice()
    parallel = not c.disable_parallel_tool_use
    if c.type == "tool":
        if not c.name:
            raise BadRequest("tool_choice.name is required for tool_choice type \"tool\"")
        return ToolChoice("function", name=c.name, parallel=parallel)
    modes = {"auto": "auto", "any": "required", "none": "none"}
    if c.type not in modes:
        raise BadRequest(f'invalid tool_choice type: "{c.type}" (must be "auto", "any", "tool" or "none")')
    return ToolChoice(modes[c.type], parallel=parallel)  # type: ignore[arg-type]


async def messages(request: Request) -> Response:
    req = await read_body(request, MessagesRequest)
    state = state_of(request)
    native, choice = native_request(req, state)
    msg_id = new_id("msg")
    if native.stream:
        # message_start announces the prompt's size; counting it first also answers a bad request
        # (unknown model, missing capability) with its status rather than an error event
        counted = native.model_copy(update={"keep_alive": None})  # a keep_alive of 0 would unload in between
        input_tokens = await core_count(state, counted, request.is_disconnected, tool_choice=choice)
        events = stream_events(msg_id, req.model, core_chat(state, native, tool_choice=choice), req.stop_sequences,
                               input_tokens)
        return EventStream(events, ANTHROPIC_SSE)  # type: ignore[return-value]
    return WholeResponse(core_chat(state, native, tool_choice=choice), merger(msg_id, req.model, req.stop_sequences),
                         anthropic_envelope)  # type: ignore[return-value]


async def count_tokens(request: Request) -> Response:
    req = await read_body(request, CountTokensRequest)
    state = state_of(request)
    native, choice = native_request(req, state)
    return json_response({"input_tokens": await core_count(state, native, request.is_disconnected,
                                                           tool_choice=choice)})


async def not_allowed(request: Request) -> Response:
    raise APIError(f"method {request.method} is not allowed on {request.url.path}; use POST", 405)


def routes() -> list[Route]:
    out = []
    for path, endpoint in (("/v1/messages", messages), ("/v1/messages/count_tokens", count_tokens)):
        out += [family_route(path, endpoint, ["POST"], anthropic_envelope),
                family_route(path, not_allowed, ["GET", "PUT", "PATCH", "DELETE"], anthropic_envelope)]
    return out
