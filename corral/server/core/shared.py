"""Steps chat and generate share: the system prompt, grammars, tool choice, and runner pieces as events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from corral.api import errors
from corral.api.messages import Logprob, Tool, ToolCall, ToolCallFunction
from corral.output.features import OutputSplitter, Piece, new_call_id
from corral.output.grammar import SchemaError, format_grammar, tool_call_grammar
from corral.output.toolcalls import closing_tag, jinja_prefix, template_prefix
from corral.prompt.render import PromptError
from corral.server.core.events import Delta
from corral.server.core.fit import Render
from corral.server.state import ServerState
from corral.store.models import LocalModel

__all__ = [
    "ToolChoice",
    "chat_messages",
    "delta_of",
    "logprobs_of",
    "passes_all",
    "prompt_length",
    "reason_of",
    "render_or_400",
    "request_grammar",
    "tool_choice_grammar",
    "unload",
    "unloading",
]


@dataclass(frozen=True)
class ToolChoice:
    """Which tools the model may or must call (OpenAI's ``tool_choice``, Anthropic's ``tool_choice``).

    ``auto``: as Ollama, the model decides; ``none``: no tools are offered; ``required``: one of the tools
    must be called; ``function``: the tool ``name`` must be called. ``parallel`` False keeps one call."""

    mode: Literal["auto", "none", "required", "function"] = "auto"
    name: str = ""
    parallel: bool = True


def tool_choice_grammar(choice: ToolChoice, tools: Sequence[Tool], go_template: str | None,
                        jinja_template: str | None) -> str | None:
    """The grammar that forces the call ``choice`` asks for, in the template's own call format."""
    if choice.mode not in ("required", "function"):
        return None
    offered = [t for t in tools if choice.mode == "required" or t.function.name == choice.name]
    if not offered:
        if choice.mode == "function":
            raise errors.BadRequest(f"tool_choice names a tool that is not offered: {choice.name}")
        raise errors.BadRequest("tool_choice requires a tool call, but no tools were given")
    prefix = template_prefix(go_template) if go_template is not None else jinja_prefix(jinja_template)
    schemas = [(t.function.name, _parameters_schema(t)) for t in offered]
    try:
        return tool_call_grammar(schemas, prefix=prefix, closing=closing_tag(prefix), many=choice.parallel)
    except SchemaError as exc:
        raise errors.BadRequest(f"invalid tool parameters schema: {exc}") from None


def _parameters_schema(tool: Tool) -> dict[str, Any]:
    wire = tool.function.parameters.to_wire()
    schema = {k: v for k, v in wire.items() if v is not None and v != ""}
    schema["type"] = "object"
    return schema


def chat_messages(model: LocalModel, messages: list[dict[str, Any]], system: str | None = None,
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


def request_grammar(fmt: str | dict[str, Any] | None,
                    options: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None, bool]:
    """The request's grammar (from ``format``, or corral's ``options.grammar``), the options without it, and
    whether it is a raw grammar (which describes the whole reply, trace included)."""
    raw = None
    if options and "grammar" in options:
        options = dict(options)
        raw = options.pop("grammar")
        if raw is not None and not isinstance(raw, str):
            raise errors.BadRequest('option "grammar" must be of type string')
    if raw and fmt:
        raise errors.BadRequest('option "grammar" cannot be combined with "format"')
    if raw:
        return raw, options, True
    try:
        return format_grammar(fmt), options, False
    except SchemaError:
        raise errors.BadRequest("invalid JSON schema in format") from None


async def unload(state: ServerState, model: LocalModel) -> None:
    if model.model_path is not None:
        await state.scheduler.expire(str(model.model_path))


def unloading(keep_alive: float | None) -> bool:
    return keep_alive is not None and keep_alive <= 0


def render_or_400(render: Render, messages: list[dict[str, Any]]) -> str:
    try:
        return render(messages)
    except PromptError as exc:
        raise errors.BadRequest(str(exc)) from None


def reason_of(done: dict[str, Any]) -> str:
    reason = str(done.get("done_reason") or "stop")
    return "stop" if reason == "canceled" else reason


def logprobs_of(msg: dict[str, Any]) -> list[Logprob] | None:
    """The runner's log-probabilities for the tokens of this piece (already in Ollama's shape)."""
    return [Logprob.model_validate(lp) for lp in msg.get("logprobs") or []] or None


def prompt_length(done: dict[str, Any]) -> int | None:
    """The whole prompt's token count, from the runner's done message (None if it did not say)."""
    tokens = done.get("prompt_tokens")
    return len(tokens) if isinstance(tokens, list) else None


def passes_all(splitter: OutputSplitter) -> bool:
    """Without a parser every runner piece is sent on, even an empty one, as Ollama does."""
    return splitter.thinking is None and splitter.tools is None


def delta_of(piece: Piece, logprobs: list[Logprob] | None = None) -> Delta:
    calls = [ToolCall(id=new_call_id(), function=ToolCallFunction(index=c.index, name=c.name, arguments=c.arguments))
             for c in piece.calls]
    return Delta(content=piece.content, thinking=piece.thinking, calls=calls, logprobs=logprobs)
