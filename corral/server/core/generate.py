"""A completion, from a validated native generate request to events.

``raw`` sends the prompt as it is; ``suffix`` runs the template's fill-in-the-middle form on ``.Prompt`` and
``.Suffix`` alone; ``template`` overrides the model's; ``context`` (token ids of earlier turns) is written
back to text by the runner and put before the new prompt. ``format`` and ``options.grammar`` constrain the
reply; ``think`` splits a trace from it. An empty prompt only loads the model (or unloads it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from corral.api import errors
from corral.api.generate import GenerateRequest
from corral.output.features import check_capabilities, resolve_think, splitter_for
from corral.prompt.render import render_chat, render_go, render_go_completion
from corral.scheduler.handle import RunnerError
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.fit import Render, render_off_loop
from corral.server.core.generation import Disconnected, Generation, build_options, prompt_format, resolve
from corral.server.core.images import MARKER, check_images, tag_images
from corral.server.core.shared import (
    chat_messages,
    logprobs_of,
    passes_all,
    prompt_length,
    reason_of,
    render_or_400,
    request_grammar,
    unload,
    unloading,
)
from corral.server.state import ServerState

__all__ = ["generate"]


async def generate(state: ServerState, req: GenerateRequest,
                   disconnected: Disconnected | None = None) -> AsyncIterator[Event]:
    model = resolve(state, req.model)
    name = req.model
    empty = not req.prompt and not req.suffix and not req.debug_render_only
    if empty and unloading(req.keep_alive):
        await unload(state, model)
        yield Done("unload")
        return
    if req.raw and (req.template or req.system or req.context):
        raise errors.raw_mode_conflict()
    caps = model.capabilities()
    think = resolve_think(req.think, caps, name)
    check_capabilities(caps, name=name, full_name=str(model.name), endpoint="generate",
                       insert=bool(req.suffix), vision=bool(req.images))
    grammar, options, _ = request_grammar(req.format, req.options)
    gen = Generation(state=state, model=model, options=build_options(model, options), keep_alive=req.keep_alive,
                     stream=req.stream, grammar=grammar, logprobs=req.logprobs, top_logprobs=req.top_logprobs)
    if empty:
        await gen.acquire(disconnected)
        gen.release()
        yield Done("load")
        return

    fmt = prompt_format(model)
    messages, gen.images = tag_images([{"role": "user", "content": req.prompt, "images": req.images}])
    await check_images(gen.images)
    render: Render
    if req.raw:
        raw = req.prompt if not gen.images or MARKER.search(req.prompt) else messages[0]["content"]

        def render(ms: list[dict[str, Any]]) -> str:
            return raw  # the caller's own [img-N] tags, or the images before the text
    elif req.suffix:
        template = req.template or model.template or "{{ .Prompt }}"

        def render(ms: list[dict[str, Any]]) -> str:
            # Ollama runs a fill-in-the-middle template on .Prompt and .Suffix alone (no system)
            return render_go_completion(template, prompt=req.prompt, suffix=req.suffix, think=think)
    elif req.template:
        messages = chat_messages(model, messages, req.system, with_model_messages=not req.context)

        def render(ms: list[dict[str, Any]]) -> str:
            return render_go(req.template, ms, think=think)
    else:
        messages = chat_messages(model, messages, req.system, with_model_messages=not req.context)

        def render(ms: list[dict[str, Any]]) -> str:
            return render_chat(fmt, ms, tools=[], think=think)

    async def rendered() -> Rendered:
        return Rendered(await render_off_loop(lambda ms: render_or_400(render, ms), messages), len(req.images or []))

    with_context = bool(req.context) and not req.raw
    if req.debug_render_only and not with_context:
        yield await rendered()  # no runner needed
        return

    await gen.acquire(disconnected)
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
            yield await rendered()
            return
        fitted = await gen.fit(messages, lambda ms: render_or_400(render, ms), truncate=req.truncate,
                               shift=req.shift)
    except BaseException:
        gen.release()
        raise

    splitter = splitter_for(go_template=model.template, jinja_template=fmt.jinja_template, think=think,
                            tool_names=None, prompt=fitted.prompt)
    try:
        async with contextlib.aclosing(gen.run(fitted)) as run:
            async for msg in run:
                if msg["kind"] == "token":
                    piece = splitter.add(msg["text"])
                    logprobs = logprobs_of(msg)
                    if piece or logprobs or passes_all(splitter):
                        yield Delta(content=piece.content, thinking=piece.thinking, logprobs=logprobs)
                elif msg["kind"] == "done":
                    last = splitter.finish()
                    # (an image's stand-in tokens are not text: the context leaves them out)
                    context = None if req.raw else [t for t in msg.get("prompt_tokens", []) if t >= 0] + list(
                        msg.get("tokens", []))
                    yield Done(reason_of(msg), Delta(content=last.content, thinking=last.thinking),
                               gen.metrics(msg), context=context, truncated=fitted.cut or None,
                               prompt_length=prompt_length(msg),
                               evaluated=msg.get("prompt_eval_count"))
    finally:
        gen.release()
