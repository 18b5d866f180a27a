"""A chat, from a validated native request to events: the one path every API family's chat takes.

Besides plain text (see :mod:`corral.output`):

- ``format`` becomes a grammar the runner enforces; ``options.grammar`` (a GBNF text, root rule ``root``) is
  corral's own extension for a raw grammar, refused together with ``format``;
- ``tools`` are rendered by the template and the reply parsed into tool calls (whole calls, with ids); a
  :class:`ToolChoice` (from ``/v1``; Ollama ignores it) offers none, or forces a call by a grammar;
- ``think`` defaults to on for a thinking model; the trace is split from the answer. With a grammar for the
  answer (``format`` or a forced call) on a thinking model, the trace is generated free and only the answer
  constrained (Ollama's two passes);
- an empty ``messages`` only loads the model (or unloads it with ``keep_alive`` 0).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from corral.api.chat import ChatRequest
from corral.api.messages import Tool
from corral.output.features import check_capabilities, filter_think_tags, resolve_think, splitter_for
from corral.prompt.render import PromptFormat, render_chat
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.fit import Render, render_off_loop
from corral.server.core.generation import Disconnected, Generation, build_options, prompt_format, resolve
from corral.server.core.images import check_images, tag_images
from corral.server.core.shared import (
    ToolChoice,
    chat_messages,
    delta_of,
    logprobs_of,
    passes_all,
    prompt_length,
    reason_of,
    render_or_400,
    request_grammar,
    tool_choice_grammar,
    unload,
    unloading,
)
from corral.server.state import ServerState
from corral.store.models import LocalModel

__all__ = ["ChatPlan", "ToolChoice", "chat", "plan_chat"]

log = logging.getLogger("corral.server")


@dataclass
class ChatPlan:
    """What a chat request renders, checked: its model's capabilities allow it, its tools, its prompt."""

    caps: list[str]
    think: bool | str | None
    offered: list[Tool] | None  # the tools the template is given (none when tool_choice is "none")
    messages: list[dict[str, Any]]
    fmt: PromptFormat
    render: Render


def plan_chat(model: LocalModel, req: ChatRequest, choice: ToolChoice) -> ChatPlan:
    offered = req.tools if choice.mode != "none" else None
    caps = model.capabilities()
    think = resolve_think(req.think, caps, req.model)
    check_capabilities(caps, name=req.model, full_name=str(model.name), endpoint="chat",
                       tools=bool(offered), vision=any(m.images for m in req.messages))
    messages = chat_messages(model, [m.to_wire() for m in req.messages])
    messages = filter_think_tags(messages, family=str(model.config.get("model_family") or ""),
                                 model=model.name.model)
    tools = None if offered is None else [t.to_wire() for t in offered]
    fmt = prompt_format(model)

    def render(ms: list[dict[str, Any]]) -> str:
        return render_or_400(lambda m: render_chat(fmt, m, tools=tools, think=think), ms)

    return ChatPlan(caps, think, offered, messages, fmt, render)


async def chat(state: ServerState, req: ChatRequest, disconnected: Disconnected | None = None, *,
               tool_choice: ToolChoice | None = None) -> AsyncIterator[Event]:
    model = resolve(state, req.model)
    empty = not req.messages and not req.debug_render_only
    if empty and unloading(req.keep_alive):
        await unload(state, model)
        yield Done("unload")
        return
    choice = tool_choice or ToolChoice()
    plan = plan_chat(model, req, choice)
    grammar, options, raw_grammar = request_grammar(req.format, req.options)
    gen = Generation(state=state, model=model, options=build_options(model, options), keep_alive=req.keep_alive,
                     stream=req.stream, logprobs=req.logprobs, top_logprobs=req.top_logprobs)
    if empty:
        await gen.acquire(disconnected)
        gen.release()
        yield Done("load")
        return

    messages, render, offered = plan.messages, plan.render, plan.offered
    messages, gen.images = tag_images(messages)
    if req.debug_render_only:
        yield Rendered(await render_off_loop(render, messages), sum(len(m.images or []) for m in req.messages))
        return

    await check_images(gen.images)
    forced = tool_choice_grammar(choice, offered or [], model.template, plan.fmt.jinja_template)
    if forced is not None:
        grammar, raw_grammar = forced, False
    await gen.acquire(disconnected)
    try:
        fitted = await gen.fit(messages, render, truncate=req.truncate, shift=req.shift)
    except BaseException:
        gen.release()
        raise
    splitter = splitter_for(go_template=model.template, jinja_template=plan.fmt.jinja_template, think=plan.think,
                            tool_names=[t.function.name for t in offered or []], prompt=fitted.prompt)
    # With a grammar for the answer, a thinking model thinks unconstrained and the grammar applies to its
    # answer only (a second pass, as Ollama does for format); a raw `options.grammar` describes the whole
    # reply and applies from the start.
    two_pass = grammar is not None and not raw_grammar and splitter.thinking is not None and "thinking" in plan.caps
    max_calls = 1 if not choice.parallel else None
    calls_sent = 0

    def limited(delta: Delta) -> Delta:
        nonlocal calls_sent
        if max_calls is not None and delta.calls:
            delta.calls = delta.calls[: max(0, max_calls - calls_sent)]
        calls_sent += len(delta.calls)
        return delta

    current = fitted
    gen.grammar = None if two_pass else grammar
    # the first pass must stream: its end is decided by the text as it comes
    gen.stream = req.stream or two_pass
    try:
        while True:
            restart = False
            async with contextlib.aclosing(gen.run(current)) as run:
                async for msg in run:
                    if msg["kind"] == "token":
                        piece = splitter.add(msg["text"])
                        if two_pass and gen.grammar is None and splitter.past_trace:
                            # send the trace, drop the free answer, and start again constrained. (Ollama
                            # waits for a non-empty trace, so a model that skips it never gets the format.)
                            if piece.thinking:
                                yield Delta(thinking=piece.thinking)
                            restart = True
                            break
                        logprobs = logprobs_of(msg)
                        if piece or logprobs or passes_all(splitter):
                            yield limited(delta_of(piece, logprobs))
                    elif msg["kind"] == "done":
                        yield Done(reason_of(msg), limited(delta_of(splitter.finish())), gen.metrics(msg),
                                   truncated=current.cut or None, prompt_length=prompt_length(msg),
                                   evaluated=msg.get("prompt_eval_count"))
            if not restart:
                return
            trace = "".join(splitter.thinking_text)
            log.debug("grammar applied from here: second pass after a trace of %d characters", len(trace))
            more = [*messages, {"role": "assistant", "content": "", "thinking": trace}] if trace else messages
            current = await gen.fit(more, render, truncate=req.truncate, shift=req.shift)
            gen.grammar, gen.stream = grammar, req.stream
    finally:
        gen.release()
