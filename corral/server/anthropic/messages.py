"""``POST /v1/messages`` (Anthropic's Messages API) and ``/v1/messages/count_tokens``, translated onto the
native chat path, and the core's events back into content blocks or Anthropic's event stream.

Request, as Ollama translates it: ``system`` (a string or text blocks, joined) opens the chat; each message's
text blocks are joined into one native message with its images, ``tool_use`` calls and ``thinking``;
``tool_result`` blocks become ``tool`` messages (before a user's own text). ``max_tokens`` is
``num_predict``; ``temperature``, ``top_p``, ``top_k``, ``stop_sequences`` are options; ``thinking``
enabled turns thinking on (its budget is not enforced), and is dropped for a model that cannot think.

Beyond Ollama: ``tool_choice`` is honoured (``any`` and ``tool`` force a call by a grammar,
``disable_parallel_tool_use`` keeps one); Ollama's ``options`` and ``keep_alive`` are read from the body;
a tool result's ``tool_name`` is looked up from its ``tool_use``; ``input_tokens`` is the whole prompt's real
count (a stream's ``message_start`` too, counted before the run), and ``count_tokens`` is exact;
``stop_reason`` is ``stop_sequence`` when one of ``stop_sequences`` ended the reply (see :class:`_StopWatch`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

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
    event,
    message,
    new_id,
    usage,
)
from corral.api.chat import ChatRequest
from corral.api.errors import APIError, BadRequest, model_required
from corral.api.messages import Message, Tool, ToolCall, ToolCallFunction, ToolFunction, ToolFunctionParameters
from corral.api.parse import parse_body
from corral.server.core.chat import ToolChoice
from corral.server.core.chat import chat as core_chat
from corral.server.core.count import count_tokens as core_count
from corral.server.core.events import Delta, Done, Event
from corral.server.core.generation import resolve
from corral.server.core.stream import EVENT_STREAM, EventStream, Framing, SSEEvent, WholeResponse, json_response
from corral.server.family import family_route
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
    native = ChatRequest(model=req.model, messages=messages, options=options, tools=_tools(req) or None,
                         stream=isinstance(req, MessagesRequest) and req.stream, think=_think(req),
                         # the stop-sequence check reads the generated tokens (see _StopWatch)
                         logprobs=isinstance(req, MessagesRequest) and bool(req.stop_sequences))
    native.keep_alive = req.keep_alive  # already decoded
    if native.think and "thinking" not in resolve(state, req.model).capabilities():
        native.think = None  # as Ollama does for Anthropic clients, which ask for thinking of any model
    return native, _tool_choice(req)


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
                raise BadRequest(f"tool_use block missing required '{'id' if not b.id else 'name'}' field")
            calls.append(ToolCall(id=b.id, function=ToolCallFunction(name=b.name, arguments=b.input or {})))
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


# --- response ---------------------------------------------------------------------------------------------


@dataclass
class _Blocks:
    """Content blocks from the core's deltas: a block per run of thinking or text, one per tool call. ``feed``
    returns the stream events for what it added, so that a stream and a whole answer split alike."""

    content: list[dict[str, Any]] = field(default_factory=list)
    open: str = ""  # "thinking" or "text" while the last block can still grow
    calls: int = 0

    def feed(self, delta: Delta) -> list[SSEEvent]:
        out = self._grow("thinking", delta.thinking) + self._grow("text", delta.content)
        for call in delta.calls:
            out += self.close()
            args = call.function.arguments
            self.content.append({"type": "tool_use", "id": new_id("toolu"), "name": call.function.name,
                                 "input": args})
            i, self.calls = len(self.content) - 1, self.calls + 1
            out += [_sse("content_block_start", index=i, content_block={**self.content[-1], "input": {}}),
                    _sse("content_block_delta", index=i,
                         delta={"type": "input_json_delta", "partial_json": json.dumps(args)}),
                    _sse("content_block_stop", index=i)]
        return out

    def _grow(self, kind: str, text: str) -> list[SSEEvent]:
        if not text:
            return []
        out = []
        if self.open != kind:
            out = self.close()
            self.content.append({"type": kind, kind: "", "signature": ""} if kind == "thinking"
                                else {"type": kind, kind: ""})
            self.open = kind
            out.append(_sse("content_block_start", index=len(self.content) - 1, content_block=dict(self.content[-1])))
        self.content[-1][kind] += text
        return [*out, _sse("content_block_delta", index=len(self.content) - 1,
                           delta={"type": f"{kind}_delta", kind: text})]

    def close(self) -> list[SSEEvent]:
        if not self.open:
            return []
        self.open = ""
        return [_sse("content_block_stop", index=len(self.content) - 1)]


class _StopWatch:
    """Which of ``stop_sequences`` ended the reply, if one did.

    The runner stops *at* a stop string without sending it, and says ``stop`` whether a stop string or the
    end-of-turn token ended the reply. The log-probabilities (asked for only when there are stop sequences)
    carry every generated token's bytes, the stop string's included and the end-of-turn token's not: the
    reply ended on a stop sequence exactly when one occurs in those bytes and reaches into the last token."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.text = bytearray()
        self.last = 0

    def feed(self, delta: Delta) -> None:
        if not self.stops:
            return
        for lp in delta.logprobs or []:
            piece = bytes(lp.bytes) if lp.bytes is not None else lp.token.encode()
            self.text += piece
            self.last = len(piece)

    def matched(self) -> str | None:
        found: list[tuple[int, int, str]] = []
        for n, stop in enumerate(self.stops):
            at = self.text.find(stop.encode())
            if at != -1 and at + len(stop.encode()) > len(self.text) - self.last:
                found.append((at, n, stop))
        return min(found)[2] if found else None


def _sse(kind: str, **fields: Any) -> SSEEvent:
    return SSEEvent(kind, event(kind, **fields))


def _stop(done: Done, called: bool, stop_sequence: str | None) -> str:
    if called:
        return "tool_use"
    if done.reason == "length":
        return "max_tokens"
    return "stop_sequence" if stop_sequence else "end_turn"


async def _stream(msg_id: str, model: str, events: AsyncIterator[Event], stops: list[str] | None,
                  input_tokens: int) -> AsyncIterator[SSEEvent]:
    blocks, watch, started = _Blocks(), _StopWatch(stops), False
    async for ev in events:
        if not isinstance(ev, Delta | Done):
            continue
        if not started:  # only now: an error before the first event still gets its own status
            started = True
            start = message(msg_id, model, [], None, None, usage(input_tokens, 0))
            yield _sse("message_start", message=start)
            yield _sse("ping")
        delta = ev.last if isinstance(ev, Done) else ev
        watch.feed(delta)
        for item in blocks.feed(delta):
            yield item
        if isinstance(ev, Done):
            for item in blocks.close():
                yield item
            stop_sequence = watch.matched() if ev.reason == "stop" else None
            yield _sse("message_delta", delta={"stop_reason": _stop(ev, blocks.calls > 0, stop_sequence),
                                               "stop_sequence": stop_sequence},
                       usage=usage(ev.prompt_tokens, ev.completion_tokens))
            yield _sse("message_stop")


def _whole(msg_id: str, model: str, stops: list[str] | None) -> Any:
    def merge(events: list[Event]) -> dict[str, Any]:
        blocks, watch, done = _Blocks(), _StopWatch(stops), Done("stop")
        for ev in events:
            if isinstance(ev, Delta | Done):
                delta = ev.last if isinstance(ev, Done) else ev
                watch.feed(delta)
                blocks.feed(delta)
                done = ev if isinstance(ev, Done) else done
        stop_sequence = watch.matched() if done.reason == "stop" else None
        return message(msg_id, model, blocks.content, _stop(done, blocks.calls > 0, stop_sequence), stop_sequence,
                       usage(done.prompt_tokens, done.completion_tokens))

    return merge


async def messages(request: Request) -> Response:
    req = parse_body(MessagesRequest, await request.body())
    state = state_of(request)
    native, choice = native_request(req, state)
    msg_id = new_id("msg")
    if native.stream:
        # message_start announces the prompt's size; counting it first also answers a bad request
        # (unknown model, missing capability) with its status rather than an error event
        counted = native.model_copy(update={"keep_alive": None})  # a keep_alive of 0 would unload in between
        input_tokens = await core_count(state, counted, request.is_disconnected, tool_choice=choice)
        events = _stream(msg_id, req.model, core_chat(state, native, tool_choice=choice), req.stop_sequences,
                         input_tokens)
        return EventStream(events, ANTHROPIC_SSE)  # type: ignore[return-value]
    return WholeResponse(core_chat(state, native, tool_choice=choice), _whole(msg_id, req.model, req.stop_sequences),
                         anthropic_envelope)  # type: ignore[return-value]


async def count_tokens(request: Request) -> Response:
    req = parse_body(CountTokensRequest, await request.body())
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
