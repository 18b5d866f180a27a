"""``POST /api/generate`` and ``POST /api/chat``.

Besides plain text (see :mod:`corral.output`):

- ``format`` becomes a grammar the runner enforces; ``options.grammar`` (a GBNF text, root rule ``root``) is
  corral's own extension for a raw grammar, refused together with ``format``;
- ``tools`` are rendered by the template and the reply parsed into ``tool_calls`` (whole calls, with ids);
- ``think`` defaults to on for a thinking model; the trace is split into ``thinking``/``message.thinking``;
  with ``format`` on a thinking chat model the trace is generated free and only the answer constrained
  (Ollama's two passes);
- ``raw``, ``template``, ``suffix`` and ``context`` on generate; images on a model without vision are refused.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import errors
from corral.api.chat import ChatRequest, ChatResponse
from corral.api.generate import GenerateRequest, GenerateResponse
from corral.api.messages import DebugInfo, Logprob, Message, ToolCall, ToolCallFunction
from corral.api.parse import parse_body
from corral.output.features import (
    OutputSplitter,
    Piece,
    check_capabilities,
    filter_think_tags,
    new_call_id,
    resolve_think,
    splitter_for,
)
from corral.output.grammar import SchemaError, format_grammar
from corral.prompt.render import PromptError, render_chat, render_go, render_go_completion
from corral.scheduler.handle import RunnerError
from corral.server.context import Fitted, Render
from corral.server.inference import Generation, build_options, prompt_format, resolve
from corral.server.ndjson import NDJSONStream, WholeResponse, json_response
from corral.server.state import ServerState
from corral.store.models import LocalModel

log = logging.getLogger("corral.server")


@dataclass
class GrammarGeneration(Generation):
    """A generation whose sampler may be constrained by a GBNF grammar (``sampling.grammar``)."""

    grammar: str | None = None

    def submit_fields(self) -> dict[str, Any]:
        fields = super().submit_fields()
        if self.grammar:
            fields["sampling"] = {**fields["sampling"], "grammar": self.grammar}
        return fields


def _state(request: Request) -> ServerState:
    s: ServerState = request.app.state.corral
    return s


def _chat_messages(model: LocalModel, messages: list[dict[str, Any]], system: str | None = None,
                   with_model_messages: bool = True) -> list[dict[str, Any]]:
    """Modelfile SYSTEM (unless the chat starts with its own) and MESSAGEs go before the request's."""
    out: list[dict[str, Any]] = []
    sys_text = system if system else model.system
    if sys_text and not (messages and messages[0].get("role") == "system"):
        out.append({"role": "system", "content": sys_text})
    if with_model_messages:
        out.extend(dict(m) for m in model.messages)
    out.extend(messages)
    return out


def _grammar(fmt: str | dict[str, Any] | None,
             options: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    """The request's grammar (from ``format``, or corral's ``options.grammar``) and the options without it."""
    raw = None
    if options and "grammar" in options:
        options = dict(options)
        raw = options.pop("grammar")
        if raw is not None and not isinstance(raw, str):
            raise errors.BadRequest('option "grammar" must be of type string')
    if raw and fmt:
        raise errors.BadRequest('option "grammar" cannot be combined with "format"')
    if raw:
        return raw, options
    try:
        return format_grammar(fmt), options
    except SchemaError:
        raise errors.BadRequest("invalid JSON schema in format") from None


async def _unload(state: ServerState, model: LocalModel, done: dict[str, Any]) -> Response:
    if model.model_path is not None:
        await state.scheduler.expire(str(model.model_path))
    return json_response(done)


async def _load(request: Request, gen: Generation, done: dict[str, Any]) -> Response:
    await gen.acquire(request)
    gen.release()
    return json_response(done)


def _unloading(keep_alive: float | None) -> bool:
    return keep_alive is not None and keep_alive <= 0


def _render(render: Render, messages: list[dict[str, Any]]) -> str:
    try:
        return render(messages)
    except PromptError as exc:
        raise errors.BadRequest(str(exc)) from None


def _reason(done: dict[str, Any]) -> str:
    reason = str(done.get("done_reason") or "stop")
    return "stop" if reason == "canceled" else reason


def _tool_calls(piece: Piece) -> list[ToolCall] | None:
    if not piece.calls:
        return None
    return [ToolCall(id=new_call_id(), function=ToolCallFunction(index=c.index, name=c.name, arguments=c.arguments))
            for c in piece.calls]


@contextlib.asynccontextmanager
async def _closing(it: AsyncIterator[dict[str, Any]]) -> AsyncGenerator[AsyncIterator[dict[str, Any]], None]:
    """Close a runner stream left early, so its request is cancelled now rather than when collected."""
    try:
        yield it
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()


def _logprobs(msg: dict[str, Any]) -> list[Logprob] | None:
    """The runner's log-probabilities for the tokens of this piece (already in Ollama's shape)."""
    return [Logprob.model_validate(lp) for lp in msg.get("logprobs") or []] or None


def _passes_all(splitter: OutputSplitter) -> bool:
    """Without a parser every runner piece is sent on, even an empty one, as Ollama does."""
    return splitter.thinking is None and splitter.tools is None


async def _fitted(gen: Generation, request: Request, messages: list[dict[str, Any]], render: Render, *,
                  truncate: bool, shift: bool) -> Fitted:
    await gen.acquire(request)
    try:
        return await gen.fit(messages, render, truncate=truncate, shift=shift)
    except BaseException:
        gen.release()
        raise


# --- /api/generate -------------------------------------------------------------------------------------


async def generate(request: Request) -> Response:
    state = _state(request)
    req = parse_body(GenerateRequest, await request.body())
    model = resolve(state, req.model)
    name = req.model

    def done_chunk(reason: str, **extra: Any) -> dict[str, Any]:
        return GenerateResponse(model=name, response="", done=True, done_reason=reason, **extra).to_wire()

    empty = not req.prompt and not req.suffix and not req.debug_render_only
    if empty and _unloading(req.keep_alive):
        return await _unload(state, model, done_chunk("unload"))
    if req.raw and (req.template or req.system or req.context):
        raise errors.raw_mode_conflict()
    caps = model.capabilities()
    think = resolve_think(req.think, caps, name)
    check_capabilities(caps, name=name, full_name=str(model.name), endpoint="generate",
                       insert=bool(req.suffix), vision=bool(req.images))
    grammar, options = _grammar(req.format, req.options)
    gen = GrammarGeneration(state=state, model=model, options=build_options(model, options),
                            keep_alive=req.keep_alive, stream=req.stream, grammar=grammar,
                            logprobs=req.logprobs, top_logprobs=req.top_logprobs)
    if empty:
        return await _load(request, gen, done_chunk("load"))

    fmt = prompt_format(model)
    messages = [{"role": "user", "content": req.prompt}]
    render: Render
    if req.raw:
        def render(ms: list[dict[str, Any]]) -> str:
            return req.prompt
    elif req.suffix:
        template = req.template or model.template or "{{ .Prompt }}"

        def render(ms: list[dict[str, Any]]) -> str:
            # Ollama runs a fill-in-the-middle template on .Prompt and .Suffix alone (no system)
            return render_go_completion(template, prompt=req.prompt, suffix=req.suffix, think=think)
    elif req.template:
        messages = _chat_messages(model, messages, req.system, with_model_messages=not req.context)

        def render(ms: list[dict[str, Any]]) -> str:
            return render_go(req.template, ms, think=think)
    else:
        messages = _chat_messages(model, messages, req.system, with_model_messages=not req.context)

        def render(ms: list[dict[str, Any]]) -> str:
            return render_chat(fmt, ms, tools=[], think=think)

    def debug_reply() -> Response:
        return json_response(GenerateResponse(model=name, done=False, debug_info=DebugInfo(
            rendered_template=_render(render, messages), image_count=len(req.images or []))).to_wire())

    with_context = bool(req.context) and not req.raw
    if req.debug_render_only and not with_context:
        return debug_reply()  # no runner needed

    await gen.acquire(request)
    try:
        if with_context:
            assert gen.entry is not None and req.context is not None
            try:
                earlier = await gen.entry.handle.detokenize(list(req.context))
            except RunnerError as exc:
                if not exc.client_mistake:
                    raise
                raise errors.BadRequest(f"invalid context: {exc}") from None
            base = render

            def render(ms: list[dict[str, Any]]) -> str:
                return earlier + base(ms)

        if req.debug_render_only:  # as Ollama: the earlier turns' text is part of what it shows
            gen.release()
            return debug_reply()
        fitted = await gen.fit(messages, lambda ms: _render(render, ms), truncate=req.truncate, shift=req.shift)
    except BaseException:
        gen.release()
        raise

    splitter = splitter_for(go_template=model.template, jinja_template=fmt.jinja_template, think=think,
                            tool_names=None, prompt=fitted.prompt)

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            async for msg in gen.run(fitted):
                if msg["kind"] == "token":
                    piece = splitter.add(msg["text"])
                    logprobs = _logprobs(msg)
                    if piece or logprobs or _passes_all(splitter):
                        yield GenerateResponse(model=name, response=piece.content, thinking=piece.thinking,
                                               logprobs=logprobs).to_wire()
                elif msg["kind"] == "done":
                    last = splitter.finish()
                    context = None if req.raw else list(msg.get("prompt_tokens", [])) + list(msg.get("tokens", []))
                    yield GenerateResponse(model=name, response=last.content, thinking=last.thinking, done=True,
                                           done_reason=_reason(msg), context=context,
                                           truncated=fitted.cut or None, **gen.metrics(msg)).to_wire()
        finally:
            gen.release()

    if req.stream:
        return NDJSONStream(chunks())  # type: ignore[return-value]
    return WholeResponse(chunks(), _merge_generate)  # type: ignore[return-value]


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
    state = _state(request)
    req = parse_body(ChatRequest, await request.body())
    model = resolve(state, req.model)
    name = req.model

    def chunk(message: Message, **extra: Any) -> dict[str, Any]:
        return ChatResponse(model=name, message=message, **extra).to_wire()

    def done_chunk(reason: str, **extra: Any) -> dict[str, Any]:
        return chunk(Message(role="assistant", content=""), done=True, done_reason=reason, **extra)

    empty = not req.messages and not req.debug_render_only
    if empty and _unloading(req.keep_alive):
        return await _unload(state, model, done_chunk("unload"))
    caps = model.capabilities()
    think = resolve_think(req.think, caps, name)
    check_capabilities(caps, name=name, full_name=str(model.name), endpoint="chat",
                       tools=bool(req.tools), vision=any(m.images for m in req.messages))
    grammar, options = _grammar(req.format, req.options)
    gen = GrammarGeneration(state=state, model=model, options=build_options(model, options),
                            keep_alive=req.keep_alive, stream=req.stream,
                            logprobs=req.logprobs, top_logprobs=req.top_logprobs)
    if empty:
        return await _load(request, gen, done_chunk("load"))

    messages = _chat_messages(model, [m.to_wire() for m in req.messages])
    messages = filter_think_tags(messages, family=str(model.config.get("model_family") or ""),
                                 model=model.name.model)
    tools = None if req.tools is None else [t.to_wire() for t in req.tools]
    fmt = prompt_format(model)

    def render(ms: list[dict[str, Any]]) -> str:
        return _render(lambda m: render_chat(fmt, m, tools=tools, think=think), ms)

    if req.debug_render_only:
        return json_response(ChatResponse(model=name, message=Message(role="assistant", content=""),
                                          done=False, debug_info=DebugInfo(
                                              rendered_template=render(messages),
                                              image_count=sum(len(m.images or []) for m in req.messages))).to_wire())

    fitted = await _fitted(gen, request, messages, render, truncate=req.truncate, shift=req.shift)
    splitter = splitter_for(go_template=model.template, jinja_template=fmt.jinja_template, think=think,
                            tool_names=[t.function.name for t in req.tools or []], prompt=fitted.prompt)
    # With `format`, a thinking model thinks unconstrained and the format applies to its answer only (a second
    # pass, as Ollama does); a raw `options.grammar` describes the whole reply and applies from the start.
    two_pass = bool(req.format) and splitter.thinking is not None and "thinking" in caps

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        current = fitted
        gen.grammar = None if two_pass else grammar
        # the first pass must stream: its end is decided by the text as it comes
        gen.stream = req.stream or two_pass
        try:
            while True:
                restart = False
                async with _closing(gen.run(current)) as run:
                    async for msg in run:
                        if msg["kind"] == "token":
                            piece = splitter.add(msg["text"])
                            if two_pass and gen.grammar is None and splitter.past_trace:
                                # send the trace, drop the free answer, and start again constrained. (Ollama
                                # waits for a non-empty trace, so a model that skips it never gets the format.)
                                if piece.thinking:
                                    yield chunk(Message(role="assistant", thinking=piece.thinking))
                                restart = True
                                break
                            logprobs = _logprobs(msg)
                            if piece or logprobs or _passes_all(splitter):
                                yield chunk(Message(role="assistant", content=piece.content,
                                                    thinking=piece.thinking, tool_calls=_tool_calls(piece)),
                                            logprobs=logprobs)
                        elif msg["kind"] == "done":
                            last = splitter.finish()
                            yield chunk(Message(role="assistant", content=last.content, thinking=last.thinking,
                                                tool_calls=_tool_calls(last)),
                                        done=True, done_reason=_reason(msg), truncated=current.cut or None,
                                        **gen.metrics(msg))
                if not restart:
                    return
                trace = "".join(splitter.thinking_text)
                log.debug("format applied from here: second pass after a trace of %d characters", len(trace))
                more = [*messages, {"role": "assistant", "content": "", "thinking": trace}] if trace else messages
                current = await gen.fit(more, render, truncate=req.truncate, shift=req.shift)
                gen.grammar, gen.stream = grammar, req.stream
        finally:
            gen.release()

    if req.stream:
        return NDJSONStream(chunks())  # type: ignore[return-value]
    return WholeResponse(chunks(), _merge_chat)  # type: ignore[return-value]


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
                                  "eval_count", "eval_duration", "truncated"})


def routes() -> list[Route]:
    return [Route("/api/generate", generate, methods=["POST"]), Route("/api/chat", chat, methods=["POST"])]
