"""``POST /api/generate`` and ``POST /api/chat``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api import errors
from corral.api.chat import ChatRequest, ChatResponse
from corral.api.generate import GenerateRequest, GenerateResponse
from corral.api.messages import DebugInfo, Message
from corral.api.parse import parse_body
from corral.prompt.render import PromptError, render_chat, render_go_completion
from corral.server.context import Render
from corral.server.inference import Generation, build_options, prompt_format, resolve
from corral.server.ndjson import NDJSONStream, json_response
from corral.server.state import ServerState
from corral.store.models import LocalModel


def _state(request: Request) -> ServerState:
    s: ServerState = request.app.state.corral
    return s


def _check_completion(model: LocalModel, name: str, what: str) -> None:
    if "completion" not in model.capabilities():
        raise errors.does_not_support(name, what)


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


async def _load_or_unload(request: Request, gen: Generation, make_done: Any) -> Response:
    """An empty prompt or message list loads the model; with keep_alive 0 it unloads it."""
    state = gen.state
    if gen.keep_alive is not None and gen.keep_alive <= 0:
        if gen.model.model_path is not None:
            await state.scheduler.expire(str(gen.model.model_path))
        return json_response(make_done("unload"))
    await gen.acquire(request)
    gen.release()
    return json_response(make_done("load"))


async def generate(request: Request) -> Response:
    state = _state(request)
    req = parse_body(GenerateRequest, await request.body())
    model = resolve(state, req.model)
    name = req.model
    if req.raw and (req.template or req.system or req.context):
        raise errors.raw_mode_conflict()
    _check_completion(model, name, "generate")
    gen = Generation(state=state, model=model, options=build_options(model, req.options),
                     keep_alive=req.keep_alive)

    def done_chunk(reason: str, **extra: Any) -> dict[str, Any]:
        return GenerateResponse(model=name, response="", done=True, done_reason=reason, **extra).to_wire()

    if not req.prompt and not req.suffix and not req.debug_render_only:
        return await _load_or_unload(request, gen, done_chunk)

    fmt = prompt_format(model)
    messages = [{"role": "user", "content": req.prompt}]
    render: Render
    if req.raw:
        def render(ms: list[dict[str, Any]]) -> str:
            return req.prompt
    elif req.suffix or req.template:
        template = req.template or model.template or "{{ .Prompt }}"

        def render(ms: list[dict[str, Any]]) -> str:
            return render_go_completion(template, prompt=req.prompt, suffix=req.suffix,
                                        system=req.system or model.system or "")
    else:
        messages = _chat_messages(model, messages, req.system, with_model_messages=not req.context)

        def render(ms: list[dict[str, Any]]) -> str:
            return render_chat(fmt, ms, think=req.think)

    if req.debug_render_only:
        return json_response(GenerateResponse(model=name, done=False, debug_info=DebugInfo(
            rendered_template=_render(render, messages), image_count=len(req.images or []))).to_wire())

    await gen.acquire(request)
    try:
        if req.context:
            assert gen.entry is not None
            earlier = await gen.entry.handle.detokenize(list(req.context))
            base = render

            def render(ms: list[dict[str, Any]]) -> str:
                return earlier + base(ms)

        fitted = await gen.fit(messages, lambda ms: _render(render, ms), truncate=req.truncate, shift=req.shift)
    except BaseException:
        gen.release()
        raise

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            async for msg in gen.run(fitted.prompt, fitted.tokens):
                if msg["kind"] == "token":
                    yield GenerateResponse(model=name, response=msg["text"]).to_wire()
                elif msg["kind"] == "done":
                    context = None if req.raw else list(msg.get("prompt_tokens", [])) + list(msg.get("tokens", []))
                    yield GenerateResponse(model=name, response="", done=True,
                                           done_reason=_reason(msg), context=context,
                                           truncated=fitted.cut or None, **gen.metrics(msg)).to_wire()
        finally:
            gen.release()

    if req.stream:
        return NDJSONStream(chunks())  # type: ignore[return-value]
    return json_response(_merge_generate([c async for c in chunks()]))


def _render(render: Render, messages: list[dict[str, Any]]) -> str:
    try:
        return render(messages)
    except PromptError as exc:
        raise errors.BadRequest(str(exc)) from None


def _reason(done: dict[str, Any]) -> str:
    reason = str(done.get("done_reason") or "stop")
    return "stop" if reason == "canceled" else reason


def _merge_generate(parts: list[dict[str, Any]]) -> dict[str, Any]:
    final = dict(parts[-1])
    final["response"] = "".join(p.get("response", "") for p in parts)
    thinking = "".join(p.get("thinking", "") for p in parts)
    if thinking:
        final["thinking"] = thinking
    return final


async def chat(request: Request) -> Response:
    state = _state(request)
    req = parse_body(ChatRequest, await request.body())
    model = resolve(state, req.model)
    name = req.model
    _check_completion(model, name, "chat")
    gen = Generation(state=state, model=model, options=build_options(model, req.options),
                     keep_alive=req.keep_alive)

    def done_chunk(reason: str, **extra: Any) -> dict[str, Any]:
        return ChatResponse(model=name, message=Message(role="assistant", content=""), done=True,
                            done_reason=reason, **extra).to_wire()

    if not req.messages and not req.debug_render_only:
        return await _load_or_unload(request, gen, done_chunk)

    messages = _chat_messages(model, [m.to_wire() for m in req.messages])
    tools = [t.to_wire() for t in req.tools or []]
    fmt = prompt_format(model)

    def render(ms: list[dict[str, Any]]) -> str:
        return _render(lambda m: render_chat(fmt, m, tools=tools or None, think=req.think), ms)

    if req.debug_render_only:
        return json_response(ChatResponse(model=name, message=Message(role="assistant", content=""),
                                          done=False, debug_info=DebugInfo(rendered_template=render(messages),
                                                                           image_count=0)).to_wire())

    await gen.acquire(request)
    try:
        fitted = await gen.fit(messages, render, truncate=req.truncate, shift=req.shift)
    except BaseException:
        gen.release()
        raise

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        try:
            async for msg in gen.run(fitted.prompt, fitted.tokens):
                if msg["kind"] == "token":
                    yield ChatResponse(model=name, message=Message(role="assistant", content=msg["text"]),
                                       done=False).to_wire()
                elif msg["kind"] == "done":
                    yield done_chunk(_reason(msg), truncated=fitted.cut or None, **gen.metrics(msg))
        finally:
            gen.release()

    if req.stream:
        return NDJSONStream(chunks())  # type: ignore[return-value]
    return json_response(_merge_chat([c async for c in chunks()]))


def _merge_chat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    final = dict(parts[-1])
    message = dict(final.get("message") or {"role": "assistant"})
    message["content"] = "".join(p.get("message", {}).get("content", "") for p in parts)
    thinking = "".join(p.get("message", {}).get("thinking", "") for p in parts)
    if thinking:
        message["thinking"] = thinking
    final["message"] = message
    return final


def routes() -> list[Route]:
    return [Route("/api/generate", generate, methods=["POST"]), Route("/api/chat", chat, methods=["POST"])]
