"""A chat request's prompt, rendered as :func:`corral.server.core.chat.chat` renders it, and its size in the
model's own tokens (Anthropic's ``count_tokens``, and the ``input_tokens`` a stream announces first).

The count is the whole rendered prompt, as the runner would receive it before any fitting to the context;
images count only as what the template writes for them.
"""

from __future__ import annotations

import anyio

from corral.api.chat import ChatRequest
from corral.server.core.chat import plan_chat
from corral.server.core.generation import Disconnected, Generation, build_options, resolve
from corral.server.core.shared import ToolChoice, request_grammar, tool_choice_grammar
from corral.server.state import ServerState
from corral.store.models import LocalModel

__all__ = ["count_tokens", "render_prompt"]


def render_prompt(model: LocalModel, req: ChatRequest, tool_choice: ToolChoice | None = None) -> str:
    """The prompt ``req`` runs with (capability checks included, so that a request chat refuses is refused)."""
    choice = tool_choice or ToolChoice()
    plan = plan_chat(model, req, choice)
    tool_choice_grammar(choice, plan.offered or [], model.template, plan.fmt.jinja_template)  # refused as chat would
    return plan.render(plan.messages)


async def count_tokens(state: ServerState, req: ChatRequest, disconnected: Disconnected | None = None, *,
                       tool_choice: ToolChoice | None = None) -> int:
    """The prompt's length in tokens, from the runner chat would use (loaded if it is not yet)."""
    model = resolve(state, req.model)
    prompt = await anyio.to_thread.run_sync(render_prompt, model, req, tool_choice)  # templates are untrusted
    _grammar, options, _raw = request_grammar(req.format, req.options)
    # the same load options as the chat, so that counting never loads a second runner
    gen = Generation(state=state, model=model, options=build_options(model, options), keep_alive=req.keep_alive)
    entry = await gen.acquire(disconnected)
    try:
        return len(await entry.handle.tokenize(prompt))
    finally:
        gen.release()
