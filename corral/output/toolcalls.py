"""Tool calls in a model's output, found while it streams.

A model asks for a tool in its family's format:

==========================  ======================================================================
family                      output
==========================  ======================================================================
Hermes, Qwen 2.5/3          ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>`` (one block per call)
Llama 3.1/3.2               ``{"name": "f", "parameters": {...}}``, sometimes after ``<|python_tag|>``
Mistral                     ``[TOOL_CALLS] [{"name": "f", "arguments": {...}}, ...]``
others                      the text a Go template writes at the start of its ``{{ if .ToolCalls }}`` block
==========================  ======================================================================

``ToolCallParser`` takes the *prefix* (the tag before the JSON; ``""`` when the family writes bare JSON) and
the offered tool names. Text before a prefix is content, sent on at once; a tag cut between two pieces of
the stream is held back until it is known. After a prefix come JSON objects (or arrays of them), separated
by commas, brackets, whitespace or the matching closing tag (``</tool_call>``); each complete call is
returned as soon as its object closes, so calls stream as whole objects. Without a prefix, any JSON object
in the output (and an array at its very start) is tried as a call; one that is not a call goes on as
content. With a prefix, a reply that *starts* with a bare call is accepted too (small models drop the tag).

A call is an object with a ``name`` (or ``tool_name``, or a ``function`` object holding both) naming one
of the offered tools, and ``arguments`` or ``parameters`` (an object, or a JSON string of one); a
``{"tool_calls": [...]}`` wrapper is unwrapped. Anything else stays content, so nothing the model wrote is
lost, except the broken JSON tail of a call list the model left unfinished.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from corral.prompt import gotemplate

__all__ = ["ParsedCall", "ToolCallParser", "closing_tag", "jinja_prefix", "template_prefix"]

# Tags that announce a call in the families' own chat templates (what a Jinja template is searched for).
_KNOWN_PREFIXES = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<function_calls>", "functools")


def template_prefix(source: str | gotemplate.Template | None) -> str:
    """The prefix a Go template's ``{{ if .ToolCalls }}`` block writes before the call JSON (Ollama's
    rule: its first text, cut at ``{``, trimmed); ``""`` when it writes bare JSON or has no such block."""
    if source is None:
        return ""
    try:
        template = gotemplate.parse(source) if isinstance(source, str) else source
    except gotemplate.TemplateError:
        return ""
    return _normalise(template.tool_calls_prefix())


def jinja_prefix(source: str | None) -> str:
    """The prefix for a GGUF Jinja chat template: the first family tag it writes, else bare JSON."""
    for tag in _KNOWN_PREFIXES:
        if source and tag in source:
            return tag
    return ""


def _normalise(tag: str) -> str:
    tag = tag.strip()
    if tag == "{":
        return ""
    # "[TOOL_CALLS][" or "[TOOL_CALLS] [": the bracket opens the list, it is not part of the tag.
    if tag.endswith("[") and len(tag) > 1:
        tag = tag[:-1].rstrip()
    return tag


def closing_tag(prefix: str) -> str:
    m = re.fullmatch(r"<([A-Za-z_][\w\-.]*)>", prefix)
    return f"</{m.group(1)}>" if m else ""


@dataclass
class ParsedCall:
    name: str
    arguments: dict[str, Any]
    index: int

    def to_wire(self, call_id: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        if call_id:
            out["id"] = call_id
        out["function"] = {"index": self.index, "name": self.name, "arguments": self.arguments}
        return out


def _json_end(text: str, start: int) -> int:
    """Index just past the JSON object/array starting at ``start``; -1 if it has not closed yet.

    Brackets inside strings do not count; a mismatched closing bracket ends the value early (the JSON is
    then reported invalid by the decoder, which is what we want).
    """
    depth = 0
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class ToolCallParser:
    """Feed generated text with ``add``; ``finish`` at the end. Both return (content, calls)."""

    prefix: str
    names: Iterable[str]
    _names: frozenset[str] = field(init=False)
    _closing: str = field(init=False)
    _buf: str = field(default="", init=False)
    _in_calls: bool = field(default=False, init=False)  # after a prefix (or a call): JSON values expected
    _tag_pending: str = field(default="", init=False)  # the prefix that opened this block, if no call came yet
    _at_start: bool = field(default=True, init=False)  # nothing but whitespace written so far
    _count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.prefix = _normalise(self.prefix)
        self._names = frozenset(self.names)
        self._closing = closing_tag(self.prefix)

    @property
    def calls_made(self) -> int:
        return self._count

    def add(self, text: str) -> tuple[str, list[ParsedCall]]:
        self._buf += text
        content: list[str] = []
        calls: list[ParsedCall] = []
        while self._buf and self._step(content, calls):
            pass
        return "".join(content), calls

    def finish(self) -> tuple[str, list[ParsedCall]]:
        content, calls = self.add("")
        rest, self._buf = self._buf, ""
        if self._in_calls:
            if self._tag_pending:
                rest = self._tag_pending + rest  # the tag led to nothing usable: give the text back
            elif rest.lstrip()[:1] in ("{", "["):
                rest = ""  # the unfinished tail of a call list
        self._tag_pending = ""
        return content + rest, calls

    # --- one step of the scanner; False when it must wait for more text -------------------------------

    def _step(self, content: list[str], calls: list[ParsedCall]) -> bool:
        if self._in_calls:
            return self._step_calls(content, calls)
        return self._step_scan(content, calls)

    def _emit(self, content: list[str], text: str) -> None:
        if text:
            content.append(text)
            if text.strip():
                self._at_start = False

    def _step_scan(self, content: list[str], calls: list[ParsedCall]) -> bool:
        buf = self._buf
        tag_at = buf.find(self.prefix) if self.prefix else -1
        json_at = -1
        if self._at_start:
            lead = len(buf) - len(buf.lstrip())
            if buf[lead:lead + 1] in ("{", "["):
                json_at = lead
        if json_at == -1 and not self.prefix:
            json_at = buf.find("{")
        if tag_at != -1 and (json_at == -1 or tag_at <= json_at):
            self._emit(content, buf[:tag_at])
            self._buf = buf[tag_at + len(self.prefix):]
            self._in_calls = True
            self._tag_pending = self.prefix
            self._at_start = False
            return True
        if json_at != -1:
            end = _json_end(buf, json_at)
            if end == -1:
                self._emit(content, buf[:json_at])
                self._buf = buf[json_at:]
                return False
            found = self._calls_in(_loads(buf[json_at:end]))
            if found:
                self._emit(content, buf[:json_at])
                calls.extend(self._number(found))
                self._buf = buf[end:]
                self._in_calls = True
                self._tag_pending = ""
                self._at_start = False
                return True
            self._emit(content, buf[:end])
            self._buf = buf[end:]
            return True
        # No start in sight: send all but an unfinished tag at the end.
        keep = _overlap(buf, self.prefix) if self.prefix else 0
        self._emit(content, buf[: len(buf) - keep])
        self._buf = buf[len(buf) - keep:]
        return False

    def _step_calls(self, content: list[str], calls: list[ParsedCall]) -> bool:
        buf = self._buf
        i = 0
        while True:  # separators between calls
            while i < len(buf) and (buf[i].isspace() or buf[i] in ",[]"):
                i += 1
            for tag in (self._closing, self.prefix):
                if tag and buf.startswith(tag, i):
                    i += len(tag)
                    break
            else:
                break
        rest = buf[i:]
        if not rest:
            self._buf = ""
            return False
        if any(tag and tag.startswith(rest) for tag in (self._closing, self.prefix)):
            self._buf = rest  # maybe a tag, cut short
            return False
        if rest[0] == "{":
            end = _json_end(rest, 0)
            if end == -1:
                self._buf = rest
                return False
            found = self._calls_in(_loads(rest[:end]))
            if found:
                calls.extend(self._number(found))
                self._tag_pending = ""
                self._buf = rest[end:]
                return True
        # Not a call: this block is over and the text is content (with its tag, if nothing came of it).
        self._in_calls = False
        self._emit(content, self._tag_pending + (buf if self._tag_pending else rest))
        self._tag_pending = ""
        self._buf = ""
        return False

    # --- what counts as a call ---------------------------------------------------------------------------

    def _number(self, found: list[tuple[str, dict[str, Any]]]) -> list[ParsedCall]:
        out = []
        for name, arguments in found:
            out.append(ParsedCall(name, arguments, self._count))
            self._count += 1
        return out

    def _calls_in(self, value: Any) -> list[tuple[str, dict[str, Any]]]:
        if isinstance(value, list):
            out: list[tuple[str, dict[str, Any]]] = []
            for item in value:
                found = self._calls_in(item)
                if not found:
                    return []  # a list is a call list only if every item is a call
                out += found
            return out
        if not isinstance(value, dict):
            return []
        wrapped = value.get("tool_calls")
        if isinstance(wrapped, list) and wrapped:
            return self._calls_in(wrapped)
        fn = value.get("function")
        if isinstance(fn, dict):
            return self._calls_in(fn)
        name = value.get("name", value.get("tool_name"))
        if not isinstance(name, str) or name not in self._names:
            return []
        args: Any = value.get("arguments", value.get("parameters", {}))
        if isinstance(args, str):
            args = _loads(args) if args.strip() else {}
        if not isinstance(args, dict):
            return []
        return [(name, args)]


def _overlap(text: str, tag: str) -> int:
    for size in range(min(len(tag), len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
