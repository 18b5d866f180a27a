"""Modelfile parsing, as Ollama's ``parser/parser.go`` reads them (reference §3.1).

``parse(text)`` runs the same rune-by-rune state machine as Ollama, so what Ollama accepts is accepted
here with the same result, and what it refuses gives its text (``(line N): command must be one of
...``, ``no FROM line``, ``unexpected EOF``).  Instructions are case-insensitive; a value is bare (to
the end of the line, inner spaces kept), ``"..."`` or triple-quoted (may span lines); ``#`` at the
start of a line is a comment; a leading BOM is skipped.

``Modelfile.create_fields(relative_dir)`` is the client half of ``ollama create``: it resolves FROM /
ADAPTER / DRAFT paths against the Modelfile's directory, types the parameters (``stop`` lines
accumulate), checks REQUIRES, and returns the ``/api/create`` fields with local paths as ``files``
keys (the CLI hashes and uploads them).  One deliberate difference: a bad parameter names its line
(``(line 3): invalid float value [hot]``); Ollama reports those without one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.api.options import DEPRECATED_OPTIONS, OPTION_TYPES

__all__ = [
    "COMMANDS",
    "Command",
    "Modelfile",
    "ModelfileError",
    "parse",
    "parse_parameter",
    "quote",
]

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
            "parameter", "message", "requires")
ERR_INVALID_COMMAND = "command must be one of " + ", ".join(f'"{c}"' for c in COMMANDS[:-1]) + \
    f', or "{COMMANDS[-1]}"'
ERR_MESSAGE_ROLE = 'message role must be one of "system", "user", or "assistant"'
ERR_MISSING_FROM = "no FROM line"
ERR_EOF = "unexpected EOF"
ERR_REQUIRES = "requires must be a valid semver (e.g. 0.14.0)"

_NIL, _NAME, _VALUE, _PARAMETER, _MESSAGE, _COMMENT = range(6)

_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.I)
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_IDENT = r"(?:0|[1-9][0-9]*)"
_PRE = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_SEMVER_RE = re.compile(rf"^v{_IDENT}(?:\.{_IDENT}(?:\.{_IDENT}(?:-{_PRE})?(?:\+{_PRE})?)?)?$")


class ModelfileError(ValueError):
    """A Modelfile Ollama would refuse; ``str()`` is Ollama's text (``(line N): msg`` when N is known)."""

    def __init__(self, msg: str, line: int = 0) -> None:
        super().__init__(f"(line {line}): {msg}" if line > 0 else msg)
        self.msg = msg
        self.line = line


@dataclass(frozen=True)
class Command:
    """One instruction. ``name`` is Ollama's: ``model`` for FROM, the parameter's own name for a
    PARAMETER, else the lower-cased instruction; a MESSAGE's ``args`` is ``"role: content"``."""

    name: str
    args: str
    line: int = 0

    def __str__(self) -> str:
        if self.name == "model":
            return f"FROM {self.args}"
        if self.name in ("license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"):
            return f"{self.name.upper()} {quote(self.args)}"
        if self.name == "message":
            role, _, content = self.args.partition(": ")
            return f"MESSAGE {role} {quote(content)}"
        return f"PARAMETER {self.name} {quote(self.args)}"


def quote(s: str) -> str:
    """Ollama's quoting for regenerated Modelfiles."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def _unquote(s: str) -> tuple[str, bool]:
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def _is_alpha(r: str) -> bool:
    return ("a" <= r <= "z") or ("A" <= r <= "Z")


def _is_space(r: str) -> bool:
    return r in (" ", "\t")


def _is_newline(r: str) -> bool:
    return r in ("\r", "\n")


def _step(r: str, state: int) -> tuple[int, str]:
    """Ollama's ``parseRuneForState``: (next state, rune to keep or ``""``); raises on bad input."""
    if state == _NIL:
        if r == "#":
            return _COMMENT, ""
        if _is_space(r) or _is_newline(r):
            return _NIL, ""
        return _NAME, r
    if state == _NAME:
        if _is_alpha(r):
            return _NAME, r
        if _is_space(r):
            return _VALUE, ""
        raise _Invalid(ERR_INVALID_COMMAND)
    if state == _VALUE:
        if _is_newline(r) or _is_space(r):
            return _NIL, r
        return _VALUE, r
    if state in (_PARAMETER, _MESSAGE):
        if _is_alpha(r) or (state == _PARAMETER and (r.isascii() and (r.isdigit() or r == "_"))):
            return state, r
        if _is_space(r):
            return _VALUE, ""
        raise _EOF()
    # comment
    return (_NIL, "") if _is_newline(r) else (_COMMENT, "")


class _Invalid(Exception):
    pass


class _EOF(Exception):
    pass


def _printable(r: str) -> bool:
    return r != "" and r.isprintable()


def parse(text: str | bytes) -> Modelfile:
    """Parse a Modelfile; raise :class:`ModelfileError` with Ollama's text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    commands: list[Command] = []
    state = _NIL
    line = 1
    buf: list[str] = []
    name = ""
    role = ""
    start_line = 1
    for i, r in enumerate(text):
        # \r\n counts as one line break (Ollama counts two; its line numbers drift on CRLF files)
        if r == "\n" or (r == "\r" and text[i + 1 : i + 2] != "\n"):
            line += 1
        try:
            nxt, r = _step(r, state)
        except _EOF:
            raise ModelfileError(f"{ERR_EOF}: {''.join(buf)}") from None
        except _Invalid as e:
            raise ModelfileError(str(e), line) from None
        if nxt != state:
            if state == _NAME:
                word = "".join(buf)
                lowered = word.lower()
                if lowered not in COMMANDS:
                    raise ModelfileError(ERR_INVALID_COMMAND, line)
                start_line = line
                if lowered == "from":
                    name = "model"
                elif lowered == "parameter":
                    nxt = _PARAMETER
                elif lowered == "message":
                    nxt = _MESSAGE
                    name = "message"
                else:
                    name = lowered
            elif state == _PARAMETER:
                name = "".join(buf)
            elif state == _MESSAGE:
                word = "".join(buf)
                if word not in ("system", "user", "assistant"):
                    raise ModelfileError(ERR_MESSAGE_ROLE, line)
                role = word
            elif state == _VALUE:
                value, ok = _unquote("".join(buf).strip(" \t\r\n\v\f"))
                if not ok or _is_space(r):
                    buf.append(r)
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append(Command(name, value, start_line))
            buf = []
            state = nxt
        if _printable(r):
            buf.append(r)
    if state == _VALUE:
        value, ok = _unquote("".join(buf).strip(" \t\r\n\v\f"))
        if not ok:
            raise ModelfileError(ERR_EOF)
        if role:
            value = f"{role}: {value}"
        commands.append(Command(name, value, start_line))
    elif state not in (_NIL, _COMMENT):
        raise ModelfileError(ERR_EOF)
    if not any(c.name == "model" for c in commands):
        raise ModelfileError(ERR_MISSING_FROM)
    return Modelfile(commands)


def parse_parameter(name: str, value: str) -> Any:
    """A PARAMETER's typed value, as Ollama's ``api.FormatParams`` types it (texts included)."""
    kind = OPTION_TYPES.get(name)
    if kind is None:
        raise ValueError(f"unknown parameter '{name}'")
    if kind == "int":
        if not _INT_RE.match(value):
            raise ValueError(f"invalid int value [{value}]")
        return int(value)
    if kind == "float":
        if not _FLOAT_RE.match(value):
            raise ValueError(f"invalid float value [{value}]")
        return float(value)
    if kind == "bool":
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"invalid bool value [{value}]")
    return [value]


def _expand_path(path: str, relative_dir: str | Path) -> Path:
    """Ollama's ``expandPath``: absolute stays, ``~``/``~user`` expand, else relative to the Modelfile."""
    if path.startswith("~"):
        return Path(os.path.expanduser(path)).absolute()
    p = Path(path)
    if p.is_absolute():
        return p
    return (Path(relative_dir) / p).absolute()


@dataclass
class Modelfile:
    commands: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(f"{c}\n" for c in self.commands)

    def create_fields(self, relative_dir: str | Path = ".",
                      warn: Callable[[str], None] | None = None) -> dict[str, Any]:
        """The ``/api/create`` fields (Ollama's ``Modelfile.CreateRequest``), minus ``model``.

        ``files``, ``adapters`` and ``draft_files`` map *local absolute paths* to the name each is sent
        under (see :func:`files_of`): the caller hashes and uploads them and sends ``{name: digest}``.  A FROM that
        is not an existing path is sent as ``from`` (a model name).
        """
        fields: dict[str, Any] = {}
        files: dict[str, str] = {}
        adapters: dict[str, str] = {}
        drafts: dict[str, str] = {}
        params: dict[str, Any] = {}
        messages: list[dict[str, str]] = []
        licenses: list[str] = []
        for c in self.commands:
            if c.name == "model":
                path = _expand_path(c.args, relative_dir)
                if not path.exists():
                    fields["from"] = c.args
                    continue
                if str(path) in drafts:
                    raise ModelfileError(f"DRAFT must not reference the same local path as FROM: {path}")
                files.update(files_of(path))
            elif c.name in ("draft", "adapter"):
                path = _expand_path(c.args, relative_dir)
                if not path.exists():
                    raise ModelfileError(f"open {path}: no such file or directory")
                if c.name == "draft":
                    if str(path) in files:
                        raise ModelfileError(f"DRAFT must not reference the same local path as FROM: {path}")
                    drafts.update(files_of(path))
                else:
                    adapters = files_of(path)
            elif c.name in ("template", "system", "renderer", "parser"):
                fields[c.name] = c.args
            elif c.name == "license":
                licenses.append(c.args)
            elif c.name == "requires":
                requires = c.args if c.args.startswith("v") else "v" + c.args
                if not _SEMVER_RE.match(requires):
                    raise ModelfileError(ERR_REQUIRES, c.line)
                fields["requires"] = requires[1:]
            elif c.name == "message":
                role, _, content = c.args.partition(": ")
                messages.append({"role": role, "content": content})
            elif c.name in DEPRECATED_OPTIONS:
                if warn is not None:
                    warn(f"warning: parameter {c.name} is deprecated")
            else:
                try:
                    value = parse_parameter(c.name, c.args)
                except ValueError as e:
                    raise ModelfileError(str(e), c.line) from None
                if isinstance(value, list) and isinstance(params.get(c.name), list):
                    params[c.name] = [*params[c.name], *value]
                else:
                    params[c.name] = value
        if files:
            fields["files"] = files
        if adapters:
            fields["adapters"] = adapters
        if drafts:
            fields["draft_files"] = drafts
        if params:
            fields["parameters"] = params
        if messages:
            fields["messages"] = messages
        if licenses:
            fields["license"] = licenses
        return fields


def files_of(path: Path) -> dict[str, str]:
    """A file, or a directory's model files, as ``{absolute path: name to send}``.

    A directory is chosen from as Ollama's CLI does (``filesForModel``): its ``model*.safetensors`` (also one
    folder down), else its ``*.gguf``; with safetensors, the configuration beside them (``*.json`` at the top
    and one folder down, such as sentence-transformers' ``1_Pooling/config.json``, ``chat_template.jinja``,
    ``tokenizer.model``). A file is sent by its path relative to the directory, so the server rebuilds the
    folder; a GGUF by its base name."""
    if not path.is_dir():
        return {str(path.resolve()): path.name}
    root = path.resolve()
    weights = sorted([*root.glob("model*.safetensors"), *root.glob("*/model*.safetensors")])
    if not weights:
        found = sorted(p for p in root.glob("*.gguf") if p.is_file())
        if not found:
            raise ModelfileError("no Modelfile or safetensors files found")
        return {str(p): p.name for p in found}
    extra = [*root.glob("*.json"), *root.glob("*/*.json"), *root.glob("chat_template.jinja"),
             *root.glob("tokenizer.model"), *root.glob("*/tokenizer.model")]
    out: dict[str, str] = {}
    for p in sorted(set(weights + extra)):
        real = p.resolve()
        if not real.is_file():
            continue
        if not real.is_relative_to(root):  # a link out of the folder: Ollama's "insecure path"
            raise ModelfileError(f"insecure path: {p.relative_to(root)}")
        out[str(real)] = p.relative_to(root).as_posix()
    return out
