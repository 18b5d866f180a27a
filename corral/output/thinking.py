"""Thinking traces: which tags a template uses for them, and splitting them from the answer as text streams.

Ollama's rules, in corral's words:

- The tags come from the Go template (``infer_tags``): inside a ``range`` over ``.Messages``, the list that
  holds a ``.Thinking`` reference; its first text is the opening tag, its last text the closing one (both
  trimmed). The last such list in the template wins. A Jinja chat template that writes ``<think>`` gets
  ``<think>``/``</think>``.
- The splitter (``ThinkingSplitter``) only treats output as a trace if it *starts* with the opening tag
  (leading whitespace aside); otherwise everything is content. Whitespace right after either tag is
  dropped. A tag cut between two pieces of the stream is held back until it is known.
- A prompt that already ends with the opening tag (a template that opens the trace for the model) starts
  the splitter inside the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from corral.prompt import gotemplate
from corral.prompt.gotemplate import nodes as n

__all__ = ["ThinkingSplitter", "infer_tags", "jinja_tags", "strip_thinking"]


def _visit(node: n.Node | None, stack: list[n.Node], found: list[tuple[str, str]]) -> None:
    """Depth first in Go's parse order (a branch's pipeline before its body), keeping the ancestors."""
    if node is None:
        return
    stack.append(node)
    if isinstance(node, n.FieldNode) and node.ident and node.ident[0] == "Thinking":
        _note_tags(stack, found)
    if isinstance(node, n.ListNode):
        for child in node.nodes:
            _visit(child, stack, found)
    elif isinstance(node, n.BranchNode):
        _visit(node.pipe, stack, found)
        _visit(node.list, stack, found)
        _visit(node.else_list, stack, found)
    elif isinstance(node, n.ActionNode | n.TemplateNode):
        _visit(node.pipe, stack, found)
    elif isinstance(node, n.PipeNode):
        for cmd in node.cmds:
            _visit(cmd, stack, found)
    elif isinstance(node, n.CommandNode):
        for arg in node.args:
            _visit(arg, stack, found)
    stack.pop()


def _ranges_over_messages(node: n.RangeNode) -> bool:
    return any(isinstance(arg, n.FieldNode) and arg.ident and arg.ident[0] == "Messages"
               for cmd in node.pipe.cmds for arg in cmd.args)


def _note_tags(stack: list[n.Node], found: list[tuple[str, str]]) -> None:
    enclosing = next((a for a in reversed(stack) if isinstance(a, n.RangeNode)), None)
    if enclosing is None or not _ranges_over_messages(enclosing):
        return
    body = next((a for a in reversed(stack) if isinstance(a, n.ListNode)), None)
    if body is None or not body.nodes:
        return
    first, last = body.nodes[0], body.nodes[-1]
    opening = first.text.strip() if isinstance(first, n.TextNode) else None
    closing = last.text.strip() if isinstance(last, n.TextNode) else None
    found.append((opening if opening is not None else "\0", closing if closing is not None else "\0"))


def infer_tags(source: str | gotemplate.Template | None) -> tuple[str, str]:
    """(opening, closing) thinking tags of a Go template; empty strings when it marks none."""
    if source is None:
        return "", ""
    try:
        template = gotemplate.parse(source) if isinstance(source, str) else source
    except gotemplate.TemplateError:
        return "", ""
    found: list[tuple[str, str]] = []
    _visit(template.root, [], found)
    opening = closing = ""
    # Each match overwrites only the tags it found, as Ollama's walk does ("\0" = not found there).
    for o, c in found:
        if o != "\0":
            opening = o
        if c != "\0":
            closing = c
    return opening, closing


def jinja_tags(source: str | None) -> tuple[str, str]:
    """Tags for a GGUF Jinja chat template: the ``<think>`` convention, when the template uses it."""
    if source and "<think>" in source and "</think>" in source:
        return "<think>", "</think>"
    return "", ""


class _State(Enum):
    LOOKING = 0  # before anything but whitespace: a trace may still open
    OPENED = 1  # opening tag seen, eating whitespace
    THINKING = 2
    CLOSED = 3  # closing tag seen, eating whitespace
    CONTENT = 4


def _overlap(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    for size in range(min(len(tag), len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


@dataclass
class ThinkingSplitter:
    """Feed generated text with ``add``; get back (thinking, content) as soon as each is certain."""

    opening: str
    closing: str
    _state: _State = _State.LOOKING
    _held: str = field(default="", repr=False)

    def start_inside(self) -> None:
        """The prompt already opened the trace."""
        self._state = _State.OPENED
        self._held = ""

    @property
    def in_trace(self) -> bool:
        return self._state in (_State.OPENED, _State.THINKING)

    @property
    def done_thinking(self) -> bool:
        """True once the output is past any trace (the answer has begun or can no longer be a trace)."""
        return self._state in (_State.CLOSED, _State.CONTENT)

    def add(self, text: str) -> tuple[str, str]:
        thinking: list[str] = []
        content: list[str] = []
        self._held += text
        while True:
            progressed = self._step(thinking, content)
            if not progressed:
                break
        return "".join(thinking), "".join(content)

    def finish(self) -> tuple[str, str]:
        """Whatever is still held when generation ends (a tag that never completed)."""
        held, self._held = self._held, ""
        if self._state in (_State.OPENED, _State.THINKING):
            return held, ""
        if self._state == _State.LOOKING:
            return "", held
        return "", held.lstrip() if self._state == _State.CLOSED else held

    def _step(self, thinking: list[str], content: list[str]) -> bool:
        held = self._held
        if self._state == _State.LOOKING:
            trimmed = held.lstrip()
            if trimmed.startswith(self.opening):
                self._held = trimmed[len(self.opening):]
                self._state = _State.OPENED
                return True
            if not trimmed or self.opening.startswith(trimmed):
                return False  # not decided yet
            self._state = _State.CONTENT
            self._held = ""
            content.append(held)
            return False
        if self._state == _State.OPENED:
            trimmed = held.lstrip()
            if not trimmed:
                self._held = ""
                return False
            self._held = trimmed
            self._state = _State.THINKING
            return True
        if self._state == _State.THINKING:
            at = held.find(self.closing)
            if at != -1:
                thinking.append(held[:at])
                self._held = held[at + len(self.closing):]
                self._state = _State.CLOSED
                return True
            keep = _overlap(held, self.closing)
            thinking.append(held[: len(held) - keep])
            self._held = held[len(held) - keep:]
            return False
        if self._state == _State.CLOSED:
            trimmed = held.lstrip()
            self._held = ""
            if trimmed:
                self._state = _State.CONTENT
                content.append(trimmed)
            return False
        self._held = ""
        content.append(held)
        return False


def strip_thinking(text: str, opening: str = "<think>", closing: str = "</think>") -> str:
    """The content of a finished reply without its leading trace (for earlier turns sent back)."""
    splitter = ThinkingSplitter(opening, closing)
    _, content = splitter.add(text)
    _, rest = splitter.finish()
    return content + rest
