"""One request's generation features: what the model may do, and one splitter for its output.

The checks, in Ollama's order and with its texts (``resolve_think`` is step 1, ``check_capabilities`` the rest):

1. ``think`` true (or a level) on a model without the thinking capability: ``"NAME" does not support
   thinking``; absent on a model that has it: thinking is on (Ollama's default);
2. no completion capability (an embedding model): ``"NAME" does not support chat|generate``;
3. tools, ``suffix``, images on a model without tools, insert, vision: ``FULL/NAME:tag does not support
   tools|insert|vision`` (the full name, one line per missing capability).

``OutputSplitter`` runs the thinking splitter and then the tool-call parser on each piece of generated
text, so the routes see (thinking, content, calls) as soon as each is certain.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.api import errors
from corral.output.thinking import ThinkingSplitter, infer_tags, jinja_tags, strip_thinking
from corral.output.toolcalls import ParsedCall, ToolCallParser, jinja_prefix, template_prefix

__all__ = [
    "OutputSplitter",
    "Piece",
    "check_capabilities",
    "filter_think_tags",
    "new_call_id",
    "resolve_think",
    "splitter_for",
]

_ID_CHARS = string.ascii_lowercase + string.digits


def new_call_id() -> str:
    """Ollama's tool-call ids: ``call_`` and eight characters of [a-z0-9]."""
    return "call_" + "".join(secrets.choice(_ID_CHARS) for _ in range(8))


def resolve_think(think: bool | str | None, capabilities: Sequence[str], name: str) -> bool | str | None:
    """``think`` after Ollama's default and check (step 1 of ``check_capabilities``)."""
    if "thinking" in capabilities:
        return True if think is None else think
    if think is not None and think is not False:
        raise errors.does_not_support(name, "thinking")
    return think


def check_capabilities(capabilities: Sequence[str], *, name: str, full_name: str, endpoint: str,
                       tools: bool = False, insert: bool = False, vision: bool = False) -> None:
    """Steps 2 and 3 of the module docstring (``endpoint`` is ``chat`` or ``generate``)."""
    if "completion" not in capabilities:
        raise errors.does_not_support(name, endpoint)
    missing = [cap for cap, wanted in (("tools", tools), ("insert", insert), ("vision", vision))
               if wanted and cap not in capabilities]
    if missing:
        raise errors.does_not_support_full(full_name, "\n".join(missing))


def filter_think_tags(messages: list[dict[str, Any]], *, family: str, model: str) -> list[dict[str, Any]]:
    """Ollama strips ``<think>`` traces from assistant turns before the last user turn, for the qwen3
    family and deepseek-r1 (models that wrote their traces into the content before thinking support)."""
    if family != "qwen3" and model != "deepseek-r1":
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        if m.get("role") == "assistant" and i < last_user:
            m = {**m, "content": strip_thinking(str(m.get("content") or ""))}
        out.append(m)
    return out


@dataclass
class Piece:
    """What one piece of generated text turned out to be."""

    thinking: str = ""
    content: str = ""
    calls: list[ParsedCall] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.thinking or self.content or self.calls)


class OutputSplitter:
    """Thinking first (it wraps the whole reply), then tool calls within the content."""

    def __init__(self, thinking: ThinkingSplitter | None = None, tools: ToolCallParser | None = None) -> None:
        self.thinking = thinking
        self.tools = tools
        self.thinking_text: list[str] = []

    @property
    def past_trace(self) -> bool:
        """True once the output is past its trace: the trace closed, or the reply began without one."""
        return self.thinking is not None and self.thinking.done_thinking

    def add(self, text: str) -> Piece:
        thinking, content = self.thinking.add(text) if self.thinking is not None else ("", text)
        return self._tools(thinking, content, final=False)

    def finish(self) -> Piece:
        thinking, content = self.thinking.finish() if self.thinking is not None else ("", "")
        return self._tools(thinking, content, final=True)

    def _tools(self, thinking: str, content: str, *, final: bool) -> Piece:
        if thinking:
            self.thinking_text.append(thinking)
        if self.tools is None:
            return Piece(thinking, content)
        found, calls = self.tools.add(content)
        if final:
            rest, more = self.tools.finish()
            found += rest
            calls += more
        return Piece(thinking, found, calls)


def splitter_for(*, go_template: str | None, jinja_template: str | None, think: bool | str | None,
                 tool_names: Iterable[str] | None, prompt: str) -> OutputSplitter:
    """The splitter for a request: thinking when it is on and the template marks it; tools when offered."""
    thinking = None
    if think is not None and think is not False:
        opening, closing = infer_tags(go_template) if go_template is not None else jinja_tags(jinja_template)
        if opening and closing:
            thinking = ThinkingSplitter(opening, closing)
            if prompt.rstrip().endswith(opening):
                thinking.start_inside()
    tools = None
    names = list(tool_names or [])
    if names:
        prefix = template_prefix(go_template) if go_template is not None else jinja_prefix(jinja_template)
        tools = ToolCallParser(prefix, names)
    return OutputSplitter(thinking, tools)
