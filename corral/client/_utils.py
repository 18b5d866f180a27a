"""Python functions as chat tools: the signature gives the schema, a Google-style docstring the words."""

from __future__ import annotations

import inspect
import re
import typing
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pydantic

from corral.client._types import Tool

_ARGS_HEADERS = ("args:", "arguments:", "parameters:", "params:")
_OTHER_HEADERS = (
    "returns:",
    "return:",
    "yields:",
    "raises:",
    "example:",
    "examples:",
    "note:",
    "notes:",
    "see also:",
    "warning:",
    "warnings:",
    "attributes:",
    "todo:",
)
# ``name: text``, ``name (type): text``, ``name(type) : text``; the text may itself hold colons.
_ARG_LINE = re.compile(r"^\s*\**(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")


class _Docstring:
    """The parts of a docstring a tool needs: its description and a description per argument.

    An argument entry is ``name: text``, ``name (type): text`` or ``name(type) : text``; lines
    indented deeper than the entries continue the entry above, even if they hold colons.
    """

    def __init__(self, doc: str | None) -> None:
        self.args: dict[str, str] = {}
        self._current: str | None = None
        self._entry_indent: int | None = None
        section = "description"
        description: list[str] = []
        for line in (doc or "").splitlines():
            lowered = line.strip().lower()
            if lowered.startswith(_ARGS_HEADERS):
                section, self._current, self._entry_indent = "args", None, None
            elif lowered.startswith(_OTHER_HEADERS):
                section = "other"
            elif section == "description":
                description.append(line.strip())
            elif section == "args":
                self._add_arg_line(line)
        self.description = "\n".join(description).strip()

    def _add_arg_line(self, line: str) -> None:
        text = line.strip()
        if not text:
            return
        indent = len(line) - len(line.lstrip())
        continues = (
            self._current is not None and self._entry_indent is not None and indent > self._entry_indent
        )
        match = None if continues else _ARG_LINE.match(line)
        if match:
            self._current = match["name"]
            self._entry_indent = indent
            self.args[self._current] = match["text"].strip()
        elif self._current is not None:
            self.args[self._current] = f"{self.args[self._current]} {text}".strip()


def _parse_docstring(doc_string: str | None) -> dict[str, str]:
    """The docstring's parts in ollama-python's shape, for code that called its private helper.

    A ``defaultdict(str)``: the description under ``str(hash(doc_string))``, each argument's text
    under its name.
    """
    parsed: defaultdict[str, str] = defaultdict(str)
    if doc_string:
        doc = _Docstring(doc_string)
        parsed[str(hash(doc_string))] = doc.description
        parsed.update(doc.args)
    return parsed


def convert_function_to_tool(func: Callable[..., Any]) -> Tool:
    """Describe ``func`` as a chat tool.

    Each parameter's type comes from its annotation (none means ``string``), its description
    from the ``Args:`` section of the docstring. A parameter is required unless it has a default
    or accepts ``None``. Unions read ``'integer, string'`` in declaration order; lists keep their
    ``items``, ``Literal`` and ``Enum`` types their ``enum``, nested models, dataclasses and
    TypedDicts their ``properties`` (and ``required``), ``dict[str, X]`` its values as
    ``additionalProperties``. Properties come in signature order, so the same function always
    gives the same tool (ollama-python's union types come out in set order, varying by run).
    """
    doc = _Docstring(inspect.getdoc(func))
    try:
        signature = inspect.signature(func, eval_str=True)
    except (NameError, TypeError, SyntaxError):
        signature = inspect.signature(func)

    properties: dict[str, Tool.Function.Parameters.Property] = {}
    required: list[str] = []
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = str if param.annotation is inspect.Parameter.empty else param.annotation
        schema, nullable = _schema_of(annotation)
        schema["description"] = doc.args.get(name) or schema.get("description", "")
        properties[name] = Tool.Function.Parameters.Property.model_validate(schema)
        if not nullable and param.default is inspect.Parameter.empty:
            required.append(name)

    return Tool(
        type="function",
        function=Tool.Function(
            name=getattr(func, "__name__", type(func).__name__),
            description=doc.description,
            parameters=Tool.Function.Parameters.model_validate(
                {
                    "type": "object",
                    "properties": properties,
                    "required": required if signature.parameters else None,
                }
            ),
        ),
    )


def _schema_of(annotation: Any) -> tuple[dict[str, Any], bool]:
    """The tool schema of one annotation, and whether it accepts ``None``."""
    try:
        raw = pydantic.TypeAdapter(annotation).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        if typing.is_typeddict(annotation):
            return _typeddict_schema(annotation), False
        return {"type": "string"}, False
    defs = raw.pop("$defs", {})
    members = raw.get("anyOf", [raw])
    nullable = any(member.get("type") == "null" for member in members)
    if "anyOf" in raw:
        rest = [member for member in members if member.get("type") != "null"]
        raw = rest[0] if len(rest) == 1 else {"anyOf": rest}
    return _simplify(raw, defs, frozenset()), nullable


def _typeddict_schema(typed_dict: Any) -> dict[str, Any]:
    """A ``typing.TypedDict`` (which pydantic refuses before Python 3.12), described key by key."""
    hints = typing.get_type_hints(typed_dict)
    out: dict[str, Any] = {"type": "object", "properties": {k: _schema_of(v)[0] for k, v in hints.items()}}
    required = [key for key in hints if key in typed_dict.__required_keys__]
    if required:
        out["required"] = required
    return out


def _simplify(schema: dict[str, Any], defs: dict[str, Any], seen: frozenset[str]) -> dict[str, Any]:
    """Reduce a pydantic JSON schema to the keywords chat templates understand, inlining ``$ref``s."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            return {"type": "object"}  # a recursive type: stop at one level
        return _simplify(
            {**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}, defs, seen | {name}
        )

    if "anyOf" in schema or "oneOf" in schema:
        members = [_simplify(m, defs, seen) for m in schema.get("anyOf", schema.get("oneOf", []))]
        members = [m for m in members if m.get("type") != "null"]
        out: dict[str, Any] = {"type": ", ".join(dict.fromkeys(m.get("type", "string") for m in members))}
    elif "const" in schema:
        out = {"type": schema.get("type", _json_type(schema["const"])), "enum": [schema["const"]]}
    else:
        out = {"type": schema.get("type", "string")}
        if "enum" in schema:
            out["enum"] = list(schema["enum"])

    if out["type"] == "array":
        items = schema.get("items")
        if isinstance(items, dict) and items:  # ``list[Any]`` has ``items: {}``: nothing to say
            out["items"] = _simplify(items, defs, seen)
    if out["type"] == "object" and isinstance(schema.get("properties"), dict):
        out["properties"] = {k: _simplify(v, defs, seen) for k, v in schema["properties"].items()}
        if schema.get("required"):
            out["required"] = list(schema["required"])
    values = schema.get("additionalProperties")
    if out["type"] == "object" and isinstance(values, dict) and values:
        # ``dict[str, X]``: what each value must be.
        out["additionalProperties"] = _simplify(values, defs, seen)
    if schema.get("description"):
        out["description"] = schema["description"]
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return "string"
