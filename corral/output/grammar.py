"""``format`` to a GBNF grammar for llama.cpp's grammar sampler (rule ``root``).

``format: "json"`` gives any JSON object (Ollama constrains JSON mode to an object too). A JSON Schema gives
a grammar that admits exactly the documents of that shape, within this subset:

- ``type`` (one or a list): object, array, string, number, integer, boolean, null; no type = any value;
- objects: ``properties`` with ``required`` ones first, then the optional ones, each present or not, in
  schema order (as llama.cpp's converter orders them); ``additionalProperties`` (``true`` or a schema) only
  when asked for, so a schema's object has exactly its own keys; an object without ``properties`` takes any
  keys;
- arrays: ``items``, ``prefixItems`` (tuples), ``minItems``/``maxItems``;
- strings: ``minLength``/``maxLength``; ``format`` date, time, date-time and uuid; ``pattern`` is not
  enforced (any string passes);
- numbers: JSON's number syntax (integers without fraction or exponent); ``minimum >= 0`` drops the sign,
  other bounds are not enforced;
- ``enum``, ``const``, ``anyOf``/``oneOf`` (alternatives), ``allOf`` (objects merged), ``$ref`` into the
  document (``#/$defs/...``, ``#/definitions/...``, ``#``), recursion included.

Whitespace is bounded and where JSON writers put it: after ``{ [ , :`` and before ``} ]``, at most one blank,
or a newline and up to 20 indentation characters; never before ``,`` or ``:``, and none after the root value.
So a model cannot pad forever or drift into odd layouts (a 135M model that starts a line with a comma soon
loses the thread), and once the root value is closed the only token the sampler allows is end-of-generation:
a finished object ends the reply.

A schema that cannot be converted (a ``$ref`` outside the document, a ``type`` JSON Schema does not have,
``false``) raises :class:`SchemaError`; the route answers it with Ollama's ``invalid JSON schema in format``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["JSON_OBJECT_GRAMMAR", "SchemaError", "format_grammar", "schema_grammar"]


class SchemaError(ValueError):
    """The schema uses something this converter cannot turn into a grammar."""


# Shared rules, added to a grammar only when used. ``char`` is JSON's string character: anything but a
# quote, a backslash or a control character, or an escape.
_BASE_RULES: dict[str, str] = {
    "ws": r'| " " | "\n" [ \t]{0,20}',
    "value": "object | array | string | number | boolean | null",
    "object": r'"{" ws ( string ":" ws value ( "," ws string ":" ws value )* ws )? "}"',
    "array": r'"[" ws ( value ( "," ws value )* ws )? "]"',
    "string": r'"\"" char* "\""',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )',
    "integer": r'"-"? ( "0" | [1-9] [0-9]{0,15} )',
    "number": r'"-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    # string formats (the quotes included)
    "date": r'"\"" [0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( [0-2] [0-9] | "3" [0-1] ) "\""',
    "time": r'"\"" ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? '
            r'( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )? "\""',
    "date-time": r'"\"" [0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( [0-2] [0-9] | "3" [0-1] ) [Tt ] '
                 r'( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? '
                 r'( [Zz] | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ) "\""',
    "uuid": r'"\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" '
            r'[0-9a-fA-F]{12} "\""',
}

# What each shared rule refers to, so that using one pulls in the others.
_BASE_DEPS: dict[str, tuple[str, ...]] = {
    "value": ("object", "array", "string", "number", "boolean", "null"),
    "object": ("ws", "string", "value"),
    "array": ("ws", "value"),
    "string": ("char",),
}

_STRING_FORMATS = ("date", "time", "date-time", "uuid")
_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_literal(value: Any) -> str:
    """A JSON value written compactly, as the one literal the model may produce for it."""
    return _literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _repeat(low: int, high: int | None) -> str:
    if high is None:
        return "*" if low == 0 else ("+" if low == 1 else f"{{{low},}}")
    if low == high:
        return f"{{{low}}}"
    return "?" if (low, high) == (0, 1) else f"{{{low},{high}}}"


def _count(schema: Mapping[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SchemaError(f"{key} must be a non-negative integer")
    return int(value)


class _Converter:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.by_body: dict[str, str] = {}
        self.refs: dict[str, str] = {}
        self.base: set[str] = set()

    # --- rules -------------------------------------------------------------------------------------

    def use(self, name: str) -> str:
        """A shared rule (and what it refers to)."""
        if name not in self.base:
            self.base.add(name)
            for dep in _BASE_DEPS.get(name, ()):
                self.use(dep)
            if name in ("object", "array"):
                self.use("ws")
        return name

    def rule(self, hint: str, body: str) -> str:
        """Name a body; identical bodies share one rule."""
        known = self.by_body.get(body)
        if known is not None:
            return known
        name = self.fresh(hint)
        self.rules[name] = body
        self.by_body[body] = name
        return name

    def fresh(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "-", hint).strip("-").lower() or "rule"
        name, n = base, 1
        while name in self.rules or name in _BASE_RULES or name == "root":
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = ""  # reserved until its body is known
        return name

    # --- schemas -----------------------------------------------------------------------------------

    def visit(self, schema: Any, hint: str) -> str:
        """A GBNF expression (usually a rule name) for one schema."""
        if schema is True or schema == {}:
            return self.use("value")
        if schema is False:
            raise SchemaError("a false schema admits no value")
        if not isinstance(schema, Mapping):
            raise SchemaError("a schema must be an object")
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return self.const(schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise SchemaError("enum must be a non-empty array")
            return self.rule(hint, " | ".join(self.const(v) for v in values))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                subs = schema[key]
                if not isinstance(subs, list) or not subs:
                    raise SchemaError(f"{key} must be a non-empty array")
                rest = {k: v for k, v in schema.items() if k != key}
                alts = [self.visit({**rest, **self.resolve(s)} if _is_typed(rest) else s, f"{hint}-{i}")
                        for i, s in enumerate(subs)]
                return self.rule(hint, " | ".join(alts))
        if "allOf" in schema:
            return self.visit(self.merge(schema), hint)

        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise SchemaError("type must not be an empty array")
            alts = [self.visit({**schema, "type": t}, f"{hint}-{t}") for t in kind]
            return self.rule(hint, " | ".join(alts))
        if kind is None:
            if "properties" in schema or "additionalProperties" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
            else:
                return self.use("value")
        if kind not in _TYPES:
            raise SchemaError(f"unknown type {kind!r}")
        if kind == "object":
            return self.object(schema, hint)
        if kind == "array":
            return self.array(schema, hint)
        if kind == "string":
            return self.string(schema, hint)
        if kind == "integer":
            if _non_negative(schema):
                return self.rule("natural", r'"0" | [1-9] [0-9]{0,15}')
            return self.use("integer")
        if kind == "number":
            if _non_negative(schema):
                return self.rule("non-negative-number", r'( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? '
                                                        r'( [eE] [-+]? [0-9]{1,3} )?')
            return self.use("number")
        return self.use(kind)  # boolean, null

    def const(self, value: Any) -> str:
        """One fixed JSON value; objects and arrays keep the usual whitespace between their parts."""
        if isinstance(value, dict):
            self.use("ws")
            pairs = [f'{_json_literal(str(k))} ":" ws {self.const(v)}' for k, v in value.items()]
            return '( "{" ws ' + ' "," ws '.join(pairs) + ' ws "}" )' if pairs else '( "{" ws "}" )'
        if isinstance(value, list):
            self.use("ws")
            items = [self.const(v) for v in value]
            return '( "[" ws ' + ' "," ws '.join(items) + ' ws "]" )' if items else '( "[" ws "]" )'
        return _json_literal(value)

    def ref(self, target: Any) -> str:
        if not isinstance(target, str):
            raise SchemaError("$ref must be a string")
        name = self.refs.get(target)
        if name is not None:
            return name
        schema = self.pointer(target)
        hint = target.rsplit("/", 1)[-1] if target != "#" else "root-ref"
        name = self.fresh(hint)
        self.refs[target] = name  # before visiting: the definition may refer to itself
        self.rules[name] = self.visit(schema, f"{name}-body")
        return name

    def pointer(self, target: str) -> Any:
        if target == "#":
            return self.root
        if not target.startswith("#/"):
            raise SchemaError(f"unsupported $ref {target!r} (only references into the schema itself)")
        node: Any = self.root
        for part in target[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise SchemaError(f"$ref {target!r} not found")
            node = node[part]
        return node

    def resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
            schema = self.pointer(str(schema["$ref"]))
            seen += 1
        return schema

    def merge(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """allOf as one object schema: properties and required lists combined."""
        parts = schema["allOf"]
        if not isinstance(parts, list) or not parts:
            raise SchemaError("allOf must be a non-empty array")
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        props: dict[str, Any] = dict(merged.get("properties") or {})
        required: list[str] = list(merged.get("required") or [])
        for part in parts:
            part = self.resolve(part)
            if not isinstance(part, Mapping):
                raise SchemaError("allOf items must be schemas")
            if "allOf" in part:
                part = self.merge(part)
            for key, value in part.items():
                if key == "properties":
                    props.update(value or {})
                elif key == "required":
                    required += [r for r in value or [] if r not in required]
                else:
                    merged.setdefault(key, value)
        if props:
            merged["properties"] = props
        if required:
            merged["required"] = required
        return merged

    def object(self, schema: Mapping[str, Any], hint: str) -> str:
        props = schema.get("properties") or {}
        if not isinstance(props, Mapping):
            raise SchemaError("properties must be an object")
        required = schema.get("required") or []
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise SchemaError("required must be an array of strings")
        extra = schema.get("additionalProperties")
        if not props and not required and extra in (None, True):
            return self.use("object")
        self.use("ws")

        def pair(key: str, sub: Any) -> str:
            value = self.visit(sub, f"{hint}-{key}")
            return self.rule(f"{hint}-{key}-kv", f'{_json_literal(key)} ":" ws {value}')

        names = list(props) + [r for r in required if r not in props]
        must = [pair(k, props.get(k, True)) for k in names if k in required]
        may = [pair(k, props[k]) for k in names if k not in required]
        extras = ""
        extra_pair = ""
        if extra is True or isinstance(extra, Mapping):
            value = self.visit(extra, f"{hint}-additional") if isinstance(extra, Mapping) else self.use("value")
            self.use("string")
            extra_pair = self.rule(f"{hint}-additional-kv", f'string ":" ws {value}')
            extras = f' ( "," ws {extra_pair} )*'
        elif extra not in (None, False):
            raise SchemaError("additionalProperties must be a boolean or a schema")

        def tail(items: list[str]) -> str:
            return "".join(f' ( "," ws {p} )?' for p in items)

        if must:
            inner = ' "," ws '.join(must) + tail(may) + extras
            body = f'"{{" ws {inner} ws "}}"'
        else:
            alts = [may[i] + tail(may[i + 1:]) + extras for i in range(len(may))]
            if extra_pair:
                alts.append(extra_pair + extras)
            body = f'"{{" ws ( ( {" | ".join(alts)} ) ws )? "}}"' if alts else '"{" ws "}"'
        return self.rule(hint, body)

    def array(self, schema: Mapping[str, Any], hint: str) -> str:
        self.use("ws")
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(items, list):  # draft-04 tuples
            prefix, items = items, None
        if prefix is not None:
            if not isinstance(prefix, list):
                raise SchemaError("prefixItems must be an array")
            parts = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(prefix)]
            inner = ' "," ws '.join(parts)
            return self.rule(hint, f'"[" ws {inner} ws "]"' if parts else '"[" ws "]"')
        low = _count(schema, "minItems") or 0
        high = _count(schema, "maxItems")
        if high is not None and high < low:
            raise SchemaError("maxItems is smaller than minItems")
        if high == 0:
            return self.rule(hint, '"[" ws "]"')
        element = self.visit(items if items is not None else True, f"{hint}-item")
        rest_high = None if high is None else high - 1
        rest = "" if rest_high == 0 else f' ( "," ws {element} ){_repeat(max(low - 1, 0), rest_high)}'
        inner = f"( {element}{rest} ws )?" if low == 0 else f"{element}{rest} ws"
        return self.rule(hint, f'"[" ws {inner} "]"')

    def string(self, schema: Mapping[str, Any], hint: str) -> str:
        fmt = schema.get("format")
        if fmt in _STRING_FORMATS:
            return self.use(str(fmt))
        low = _count(schema, "minLength") or 0
        high = _count(schema, "maxLength")
        if high is not None and high < low:
            raise SchemaError("maxLength is smaller than minLength")
        if low == 0 and high is None:
            return self.use("string")
        self.use("char")
        return self.rule(f"{hint}-string", rf'"\"" char{_repeat(low, high)} "\""')

    def grammar(self, expr: str) -> str:
        lines = [f"root ::= {expr}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        lines += [f"{name} ::= {_BASE_RULES[name]}" for name in _BASE_RULES if name in self.base]
        return "\n".join(lines) + "\n"


def _is_typed(schema: Mapping[str, Any]) -> bool:
    """anyOf beside other keywords (``{"type": "object", "anyOf": [...]}``) applies them to each branch."""
    return any(k in schema for k in ("type", "properties", "items", "required"))


def _non_negative(schema: Mapping[str, Any]) -> bool:
    low = schema.get("minimum")
    if isinstance(low, int | float) and not isinstance(low, bool) and low >= 0:
        return True
    low = schema.get("exclusiveMinimum")
    return isinstance(low, int | float) and not isinstance(low, bool) and low >= 0


def schema_grammar(schema: Any) -> str:
    """The GBNF grammar (root rule ``root``) admitting the JSON documents ``schema`` describes."""
    conv = _Converter(schema)
    try:
        expr = conv.visit(schema, "root-value")
    except RecursionError:
        raise SchemaError("schema nests too deeply") from None
    return conv.grammar(expr)


def _json_object_grammar() -> str:
    conv = _Converter({})
    return conv.grammar(conv.use("object"))


JSON_OBJECT_GRAMMAR = _json_object_grammar()
"""``format: "json"``: any JSON object, with bounded whitespace."""


def format_grammar(fmt: str | Mapping[str, Any] | None) -> str | None:
    """The grammar for a request's (already checked) ``format``: None, ``"json"`` or a schema."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return JSON_OBJECT_GRAMMAR
    if isinstance(fmt, Mapping):
        return schema_grammar(fmt)
    raise SchemaError("format must be \"json\" or a JSON Schema object")


MAX_FORCED_CALLS = 8
"""How many calls a grammar that forces tool calls admits when several are allowed."""


def tool_call_grammar(tools: Sequence[tuple[str, Mapping[str, Any] | None]], *, prefix: str = "", closing: str = "",
                      many: bool = True) -> str:
    """A grammar whose every output is a call of one of ``tools`` (name, parameters schema), written as the
    model's template writes calls: ``prefix {"name": ..., "arguments": {...}} closing``. With ``many``, up to
    :data:`MAX_FORCED_CALLS` calls; without, exactly one. The end of the grammar ends the reply."""
    if not tools:
        raise SchemaError("no tools to call")
    conv = _Converter({})
    conv.use("ws")
    alternatives = []
    for name, parameters in tools:
        schema = {"type": "object", "properties": {"name": {"const": name},
                                                   "arguments": dict(parameters or {"type": "object"})},
                  "required": ["name", "arguments"]}
        alternatives.append(conv.visit(schema, f"call-{name}"))
    body = " | ".join(alternatives)
    if prefix:
        body = f"{_literal(prefix)} ws ( {body} )" + (f" ws {_literal(closing)}" if closing else "")
    call = conv.rule("tool-call", body)
    if not many:
        return conv.grammar(call)
    return conv.grammar(f'{call} ( "\\n" {call} ){_repeat(0, MAX_FORCED_CALLS - 1)}')
