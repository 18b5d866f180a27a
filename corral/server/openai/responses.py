"""``POST /v1/responses``: OpenAI's Responses API translated onto the native chat path, and its events back.

As Ollama: stateless (``previous_response_id`` and ``conversation`` are ignored, nothing is stored), the
input's messages, function calls and their outputs and reasoning items become one native chat, and the reply
comes back as output items (a reasoning item, a message, function calls). Beyond Ollama: ``tool_choice``
(including ``allowed_tools``) and ``parallel_tool_calls`` are honoured, ``text.format`` ``json_object`` is
read, a reply cut by ``max_output_tokens`` is ``incomplete`` (``response.incomplete`` when streamed), text
before a tool call is kept, log-probabilities are returned when asked for, and Ollama's ``options`` and
``keep_alive`` are read from the body.

The stream is the sequence of named events the ``openai`` SDK's ``responses.stream`` helper accumulates:
``response.created`` and ``response.in_progress``, then per output item ``output_item.added``, its parts and
deltas, their ``done`` events and ``output_item.done``, and last ``response.completed`` (or
``response.incomplete``), every event numbered by ``sequence_number``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.chat import ChatRequest
from corral.api.errors import APIError, BadRequest, model_required
from corral.api.messages import Logprob, Message, Tool, ToolCall, ToolCallFunction, ToolFunction, ToolFunctionParameters
from corral.api.openai.common import openai_envelope
from corral.api.openai.responses import ContentPart, InputItem, ResponsesRequest, ResponsesTool, ToolChoiceParam
from corral.api.parse import parse_body
from corral.api.wire import dumps
from corral.scheduler.handle import RunnerError
from corral.server.core.chat import ToolChoice
from corral.server.core.chat import chat as core_chat
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.generation import runner_error
from corral.server.core.stream import EVENT_STREAM, EventStream, Framing, SSEEvent, WholeResponse
from corral.server.family import family_route
from corral.server.openai.chat import openai_tool_calls
from corral.server.openai.shared import decode_image_url, options_from, think_from_effort
from corral.server.reqlog import read_body
from corral.server.state import state_of

__all__ = ["native_chat_request", "routes"]

log = logging.getLogger("corral.server")

# No ``data: [DONE]`` after the last event: the Responses stream ends with response.completed
RESPONSES_SSE = Framing(EVENT_STREAM, openai_envelope, sse=True)

LOGPROBS_INCLUDE = "message.output_text.logprobs"


# --- request ----------------------------------------------------------------------------------------------


def native_chat_request(req: ResponsesRequest) -> tuple[ChatRequest, ToolChoice]:
    """The native chat a Responses request asks for, and which tools it may or must call."""
    if not req.model:
        raise model_required()
    messages = _messages(req)
    if not messages:
        raise BadRequest("input is required")
    tools, choice = _tools_and_choice(req)
    effort = req.reasoning.effort if req.reasoning is not None else ""
    options = options_from(req.options, num_predict=req.max_output_tokens, temperature=req.temperature,
                           top_p=req.top_p)
    if req.top_p is None and "top_p" not in (req.options or {}):
        # Ollama's Responses path leaves top_p to the model (its chat path sets 1.0); so does corral's
        del options["top_p"]
    logprobs = bool(req.top_logprobs) or LOGPROBS_INCLUDE in (req.include or [])
    native = ChatRequest(model=req.model, messages=messages, format=_format(req), options=options,
                         stream=req.stream, tools=tools or None, think=think_from_effort(effort),
                         logprobs=logprobs, top_logprobs=req.top_logprobs or 0,
                         debug_render_only=req.debug_render_only)
    native.keep_alive = req.keep_alive  # already decoded
    return native, choice


def _messages(req: ResponsesRequest) -> list[Message]:
    """Ollama's reading of ``instructions`` and ``input``: the instructions are the system message; a function
    call joins the assistant turn before it (or starts one); a reasoning item's trace goes with the assistant
    turn that follows it; an assistant message replayed between a call and its output joins the call's turn,
    so that the tool result still follows its call. corral also names each tool result by its call's id."""
    out: list[Message] = []
    if req.instructions:
        out.append(Message(role="system", content=req.instructions))
    items = req.input
    names = {item.call_id: item.name for item in items if item.kind == "function_call" and item.call_id}
    trace = ""
    for i, item in enumerate(items):
        where = f"input[{i}]"
        kind = item.kind
        if kind == "reasoning":
            trace = _trace(item)
        elif kind == "message":
            msg = _message(item, where)
            if msg.role == "assistant" and trace:
                msg.thinking, trace = trace, ""
            answered = items[i + 1].call_id if i + 1 < len(items) and items[i + 1].kind == "function_call_output" \
                else ""
            last = out[-1] if out else None
            if (msg.role == "assistant" and answered and last is not None and last.role == "assistant"
                    and any(c.id == answered for c in last.tool_calls or [])):
                last.content = "\n".join(t for t in (last.content, msg.content) if t)
                if msg.images:
                    last.images = [*(last.images or []), *msg.images]
                last.thinking = msg.thinking or last.thinking
                continue
            out.append(msg)
        elif kind == "function_call":
            call = ToolCall(id=item.call_id, function=ToolCallFunction(name=item.name,
                                                                       arguments=_arguments(item, where)))
            last = out[-1] if out else None
            if last is None or last.role != "assistant":
                last = Message(role="assistant")
                out.append(last)
            call.function.index = len(last.tool_calls or [])
            last.tool_calls = [*(last.tool_calls or []), call]
            if trace:
                last.thinking, trace = trace, ""
        elif kind == "function_call_output":
            content, images = _content(item.output, f"{where}.output")
            out.append(Message(role="tool", content=content, images=images or None, tool_call_id=item.call_id,
                               tool_name=names.get(item.call_id, "")))
        elif kind == "web_search_call":
            pass  # a hosted tool's record: the message after it carries what the model saw
        elif kind == "item_reference":
            raise BadRequest(f"{where}: item references are not supported: responses are not stored")
        elif not kind:
            raise BadRequest(f"{where}: input item missing required 'type' field")
        else:
            raise BadRequest(f'{where}: unknown input item type: "{kind}"')
    if trace:
        out.append(Message(role="assistant", thinking=trace))
    return out


def _trace(item: InputItem) -> str:
    """A reasoning item's trace: corral (as Ollama) sends it back whole as ``encrypted_content``; a client
    that drops that still has the summary or the reasoning text."""
    if item.encrypted_content:
        return item.encrypted_content
    parts = item.summary or (item.content if isinstance(item.content, list) else [])
    return "".join(p.text for p in parts)


def _message(item: InputItem, where: str) -> Message:
    content, images = _content(item.content, f"{where}.content")
    return Message(role=item.role.lower(), content=content, images=images or None)


def _content(content: str | list[ContentPart] | None, where: str) -> tuple[str, list[str]]:
    """Text parts joined as they are (as Ollama joins them) and the images, decoded from data URLs."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content):
        if part.type in ("input_text", "output_text"):
            texts.append(part.text)
        elif part.type == "refusal":  # an earlier answer's refusal, sent back as the SDK hands it over
            texts.append(part.refusal)
        elif part.type == "input_image":
            if part.image_url:  # an uploaded file's id names nothing corral has; Ollama skips it too
                images.append(decode_image_url(part.image_url))
        elif part.type == "input_file":
            raise BadRequest("file inputs are not currently supported")
        else:
            raise BadRequest(f"{where}[{j}]: unknown content type: {part.type}")
    return "".join(texts), images


def _arguments(item: InputItem, where: str) -> dict[str, Any]:
    if not item.arguments.strip():
        return {}
    try:
        arguments = json.loads(item.arguments)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise BadRequest(f"{where}: invalid function call arguments: expected a JSON object")
    return arguments


def _tools_and_choice(req: ResponsesRequest) -> tuple[list[Tool], ToolChoice]:
    tools = _tools(req.tools or [])
    many = req.parallel_tool_calls is not False
    choice = req.tool_choice
    if choice is None or choice == "auto":
        return tools, ToolChoice("auto", parallel=many)
    if isinstance(choice, str):
        if choice not in ("none", "required"):
            raise BadRequest(f'invalid tool_choice: "{choice}" (must be "auto", "none", "required" or an object)')
        return tools, ToolChoice(choice, parallel=many)  # type: ignore[arg-type]
    return _tool_choice_object(choice, tools, many)


def _tool_choice_object(choice: ToolChoiceParam, tools: list[Tool], many: bool) -> tuple[list[Tool], ToolChoice]:
    if choice.type == "function":
        if not choice.name:
            raise BadRequest("tool_choice must name a function")
        return tools, ToolChoice("function", name=choice.name, parallel=False)
    if choice.type == "allowed_tools":
        # the model sees only the allowed tools; the rest of the list stays as the client wrote it
        allowed = {t.name for t in choice.tools or [] if t.type == "function"}
        missing = allowed - {t.function.name for t in tools}
        if missing:
            raise BadRequest(f"tool_choice allows a tool that is not offered: {sorted(missing)[0]}")
        mode = choice.mode or "auto"
        if mode not in ("auto", "required"):
            raise BadRequest(f'invalid tool_choice mode: "{mode}" (must be "auto" or "required")')
        offered = [t for t in tools if t.function.name in allowed]
        return offered, ToolChoice(mode, parallel=many)  # type: ignore[arg-type]
    raise BadRequest(f'unsupported tool_choice type: "{choice.type}" (corral runs function tools only)')


def _tools(tools: list[ResponsesTool], prefix: str = "", where: str = "tools") -> list[Tool]:
    """Function tools in the native shape; a namespace's members get its name as a prefix. Hosted tools
    (web search, file search, computer use...) are left out: corral has nothing to run them with, and a
    client that offers them by default still gets its answer."""
    out: list[Tool] = []
    for i, tool in enumerate(tools):
        if tool.type == "namespace":
            inner = f"{prefix}{tool.name}." if tool.name else prefix
            out += _tools(tool.tools or [], inner, f"{where}[{i}].tools")
        elif tool.type == "function":
            name = tool.name if not prefix or tool.name.startswith(prefix) else prefix + tool.name
            out.append(Tool(type="function", function=ToolFunction(
                name=name, description=tool.description,
                parameters=_parameters(tool.parameters, f"{where}[{i}].parameters"))))
        else:
            log.debug("leaving out a %s tool: corral runs function tools only", tool.type)
    return out


def _parameters(schema: dict[str, Any] | None, where: str) -> ToolFunctionParameters:
    if schema is None:
        return ToolFunctionParameters()
    # decoded as a body of its own, for the message that names the field that is wrong
    try:
        return parse_body(ToolFunctionParameters, dumps(schema))
    except BadRequest as exc:
        raise BadRequest(exc.message.replace('field "', f'field "{where}.', 1)) from None


def _format(req: ResponsesRequest) -> str | dict[str, Any] | None:
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type in ("", "text"):
        return None
    if fmt.type == "json_object":
        return "json"
    if fmt.type == "json_schema":
        return fmt.schema_
    raise BadRequest(f'invalid text.format type: "{fmt.type}" (must be "text", "json_object" or "json_schema")')


# --- response ---------------------------------------------------------------------------------------------


class _Head:
    """What every Response object of one request shares: its id, when it began, and the request's settings
    as OpenAI echoes them."""

    def __init__(self, req: ResponsesRequest, logprobs: bool) -> None:
        self.number = random.randrange(999999)
        self.id = f"resp_{self.number}"
        self.created_at = int(time.time())
        self.req = req
        self.logprobs = logprobs

    def response(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                 incomplete: str = "", error: dict[str, Any] | None = None) -> dict[str, Any]:
        req = self.req
        reasoning = None
        if req.reasoning is not None and (req.reasoning.effort or req.reasoning.summary):
            reasoning = {"effort": req.reasoning.effort or None, "summary": req.reasoning.summary or None}
        text_format = req.text.format.to_wire() if req.text is not None and req.text.format is not None \
            else {"type": "text"}
        finished = status in ("completed", "incomplete", "failed")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if finished else None,
            "status": status,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": req.model,
            "previous_response_id": None,
            "instructions": req.instructions or None,
            "output": output,
            "error": error,
            "tools": [t.to_wire() for t in req.tools or []],
            "tool_choice": self._tool_choice(),
            "truncation": req.truncation or "disabled",
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "text": {"format": text_format},
            "top_p": req.top_p if req.top_p is not None else 1.0,
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "top_logprobs": req.top_logprobs or 0,
            "temperature": req.temperature if req.temperature is not None else 1.0,
            "reasoning": reasoning,
            "usage": usage,
            "max_output_tokens": req.max_output_tokens,
            "max_tool_calls": None,
            "store": False,
            "background": req.background,
            "service_tier": "default",
            "metadata": req.metadata or {},
            "safety_identifier": None,
            "prompt_cache_key": None,
        }

    def _tool_choice(self) -> Any:
        choice = self.req.tool_choice
        if isinstance(choice, ToolChoiceParam):
            return choice.to_wire()
        return choice or "auto"


def _usage(done: Done) -> dict[str, Any]:
    prompt, completion = done.prompt_tokens, done.completion_tokens
    cached = done.cached_tokens  # the part of the prompt a cached prefix spared evaluating
    return {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
            # cache_write_tokens: what this request evaluated stays in its slot's cache for the next turn (the
            # openai SDK's usage type requires the field; Ollama does not write it)
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": prompt - cached},
            "output_tokens_details": {"reasoning_tokens": 0}}


def _logprob(lp: Logprob) -> dict[str, Any]:
    """One token's log-probability in the shape of an ``output_text`` part's ``logprobs``."""
    def one(token: str, logprob: float, raw: list[int] | None) -> dict[str, Any]:
        return {"token": token, "bytes": raw if raw is not None else list(token.encode()), "logprob": logprob}

    return {**one(lp.token, lp.logprob, lp.bytes),
            "top_logprobs": [one(t.token, t.logprob, t.bytes) for t in lp.top_logprobs or []]}


@dataclass
class _Item:
    """One output item while it is built: a message or a reasoning trace grows; a function call is whole."""

    kind: str  # "message", "reasoning" or "function_call"
    id: str
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    status: str = "in_progress"
    call: dict[str, Any] = field(default_factory=dict)  # call_id, name, arguments

    def part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": "".join(self.text), "annotations": [], "logprobs": list(self.logprobs)}

    def wire(self) -> dict[str, Any]:
        """The item as it stands; a fresh dict each time, so an event already sent never changes."""
        if self.kind == "message":
            content = [self.part()] if self.status != "in_progress" else []
            return {"id": self.id, "type": "message", "status": self.status, "role": "assistant",
                    "content": content}
        if self.kind == "reasoning":
            text = "".join(self.text)
            if self.status == "in_progress":
                return {"id": self.id, "type": "reasoning", "summary": []}
            # the trace goes out whole as encrypted_content too (as Ollama): a client that sends the item
            # back gives the next turn its thinking
            return {"id": self.id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}],
                    "encrypted_content": text}
        arguments = self.call["arguments"] if self.status != "in_progress" else ""
        return {"id": self.id, "type": "function_call", "status": self.status, "call_id": self.call["call_id"],
                "name": self.call["name"], "arguments": arguments}


class _Output:
    """Output items from the core's deltas, in order: a reasoning item per run of thinking, a message per run
    of text, an item per tool call. Each step returns the stream events for what it added, so that a stream
    and a whole answer are built alike (and the whole answer is what the stream's events add up to)."""

    def __init__(self, head: _Head) -> None:
        self.head = head
        self.items: list[_Item] = []
        self.open: _Item | None = None  # the last item while it can still grow
        self.seq = 0
        # whitespace (and its log-probabilities) before any text: it opens no message by itself, so that
        # a newline ahead of a tool call does not become a message of its own
        self.held = ""
        self.held_logprobs: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> SSEEvent:
        data = {"type": kind, **fields, "sequence_number": self.seq}
        self.seq += 1
        return SSEEvent(kind, data)

    def lifecycle(self, kind: str, status: str, usage: dict[str, Any] | None = None, incomplete: str = "",
                  error: dict[str, Any] | None = None) -> SSEEvent:
        output = [item.wire() for item in self.items] if status != "in_progress" else []
        return self.event(kind, response=self.head.response(status, output, usage, incomplete, error))

    def feed(self, delta: Delta) -> list[SSEEvent]:
        out = self._think(delta.thinking) + self._say(delta.content, delta.logprobs)
        for call in openai_tool_calls(delta.calls):
            out += self._call(call)
        return out

    def finish(self, done: Done) -> list[SSEEvent]:
        """The last events: the last delta, every item closed, then ``response.completed`` (or
        ``response.incomplete``, when the reply was cut at ``max_output_tokens``)."""
        out = self.feed(done.last)
        cut = done.reason == "length"
        if not any(item.kind in ("message", "function_call") for item in self.items):
            # an answer always has a message, even an empty one, so that it has an output_text
            out += self._open_message()
            out += self._grow_message("", [])
        out += self._close("incomplete" if cut else "completed")
        if cut:
            return [*out, self.lifecycle("response.incomplete", "incomplete", _usage(done), "max_output_tokens")]
        return [*out, self.lifecycle("response.completed", "completed", _usage(done))]

    def _think(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        out: list[SSEEvent] = []
        item = self.open
        if item is None or item.kind != "reasoning":
            out += self._close()
            item = self._add("reasoning", f"rs_{self.head.number}_{len(self.items)}")
            out += [self.event("response.output_item.added", output_index=self._index(), item=item.wire()),
                    self.event("response.reasoning_summary_part.added", item_id=item.id, output_index=self._index(),
                               summary_index=0, part={"type": "summary_text", "text": ""})]
        item.text.append(text)
        return [*out, self.event("response.reasoning_summary_text.delta", item_id=item.id, output_index=self._index(),
                                 summary_index=0, delta=text)]

    def _say(self, text: str, logprobs: list[Logprob] | None) -> list[SSEEvent]:
        lps = [_logprob(lp) for lp in logprobs or []] if self.head.logprobs else []
        if self.open is not None and self.open.kind == "message":
            return self._grow_message(text, lps) if text or lps else []
        if not text.strip():
            self.held += text
            self.held_logprobs += lps
            return []
        return [*self._open_message(), *self._grow_message(text, lps)]

    def _open_message(self) -> list[SSEEvent]:
        out = self._close()
        item = self._add("message", f"msg_{self.head.number}_{len(self.items)}")
        return [*out, self.event("response.output_item.added", output_index=self._index(), item=item.wire()),
                self.event("response.content_part.added", item_id=item.id, output_index=self._index(),
                           content_index=0, part={"type": "output_text", "text": "", "annotations": [],
                                                  "logprobs": []})]

    def _grow_message(self, text: str, lps: list[dict[str, Any]]) -> list[SSEEvent]:
        item = self.open
        assert item is not None and item.kind == "message"
        text, self.held = self.held + text, ""
        lps, self.held_logprobs = self.held_logprobs + lps, []
        if not text and not lps:
            return []
        item.text.append(text)
        item.logprobs += lps
        return [self.event("response.output_text.delta", item_id=item.id, output_index=self._index(),
                           content_index=0, delta=text, logprobs=lps)]

    def _call(self, call: dict[str, Any]) -> list[SSEEvent]:
        out = self._close()
        function = call["function"]
        item = self._add("function_call", f"fc_{self.head.number}_{len(self.items)}")
        item.call = {"call_id": call["id"], "name": function["name"], "arguments": function["arguments"]}
        index = self._index()
        added = self.event("response.output_item.added", output_index=index, item=item.wire())
        item.status = "completed"
        self.open = None
        return [*out, added,
                self.event("response.function_call_arguments.delta", item_id=item.id, output_index=index,
                           delta=function["arguments"]),
                self.event("response.function_call_arguments.done", item_id=item.id, output_index=index,
                           arguments=function["arguments"]),
                self.event("response.output_item.done", output_index=index, item=item.wire())]

    def _add(self, kind: str, item_id: str) -> _Item:
        item = _Item(kind, item_id)
        self.items.append(item)
        self.open = item
        return item

    def _index(self) -> int:
        return len(self.items) - 1

    def _close(self, status: str = "completed") -> list[SSEEvent]:
        item, self.open = self.open, None
        if item is None:
            return []
        item.status = status
        index = self.items.index(item)
        if item.kind == "message":
            text = "".join(item.text)
            return [self.event("response.output_text.done", item_id=item.id, output_index=index, content_index=0,
                               text=text, logprobs=list(item.logprobs)),
                    self.event("response.content_part.done", item_id=item.id, output_index=index, content_index=0,
                               part=item.part()),
                    self.event("response.output_item.done", output_index=index, item=item.wire())]
        text = "".join(item.text)
        return [self.event("response.reasoning_summary_text.done", item_id=item.id, output_index=index,
                           summary_index=0, text=text),
                self.event("response.reasoning_summary_part.done", item_id=item.id, output_index=index,
                           summary_index=0, part={"type": "summary_text", "text": text}),
                self.event("response.output_item.done", output_index=index, item=item.wire())]


def _failure(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, APIError):
        return exc.status, exc.message
    if isinstance(exc, RunnerError):
        error = runner_error(exc)
        return error.status, error.message
    log.exception("error while streaming a response")
    return 500, str(exc) or type(exc).__name__


async def _stream(head: _Head, events: AsyncIterator[Event]) -> AsyncIterator[SSEEvent]:
    out = _Output(head)
    started = False
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        try:
            async for event in events:
                if isinstance(event, Rendered):
                    continue
                if not started:  # only now: an error before the first event still gets its own status
                    started = True
                    yield out.lifecycle("response.created", "in_progress")
                    yield out.lifecycle("response.in_progress", "in_progress")
                for sse in out.feed(event) if isinstance(event, Delta) else out.finish(event):
                    yield sse
        except Exception as exc:
            if not started:
                raise
            status, message = _failure(exc)
            envelope = openai_envelope(status, message)
            code = envelope["error"]["type"]
            # the Responses error event, with OpenAI's error object beside it: the openai SDK raises an
            # APIError with its message for an event whose data holds one
            yield out.event("error", code=code, message=message, param=None, **envelope)
            yield out.lifecycle("response.failed", "failed", error={"code": code, "message": message})


def _whole(head: _Head) -> Any:
    def merge(events: list[Event]) -> dict[str, Any]:
        out = _Output(head)
        usage: dict[str, Any] | None = None
        status, incomplete, rendered = "completed", "", None
        for event in events:
            if isinstance(event, Delta):
                out.feed(event)
            elif isinstance(event, Done):
                out.finish(event)
                usage = _usage(event)
                if event.reason == "length":
                    status, incomplete = "incomplete", "max_output_tokens"
            else:
                rendered = event
        body = head.response(status, [item.wire() for item in out.items], usage, incomplete)
        if rendered is not None:
            body["_debug_info"] = {"rendered_template": rendered.prompt, "image_count": rendered.image_count}
        return body

    return merge


async def responses(request: Request) -> Response:
    req = await read_body(request, ResponsesRequest)
    native, choice = native_chat_request(req)
    head = _Head(req, native.logprobs)
    events = core_chat(state_of(request), native, tool_choice=choice)
    if req.stream:
        return EventStream(_stream(head, events), RESPONSES_SSE)  # type: ignore[return-value]
    return WholeResponse(events, _whole(head), openai_envelope)  # type: ignore[return-value]


def routes() -> list[Route]:
    return [family_route("/v1/responses", responses, ["POST"], openai_envelope)]
