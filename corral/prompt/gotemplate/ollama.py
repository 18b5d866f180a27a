"""Ollama's additions to Go templates: its template functions and the typed values it renders.

Functions (Ollama's template/template.go FuncMap): ``json`` (encoding/json.Marshal, errors give ""),
``currentDate`` and ``yesterdayDate`` (local date as YYYY-MM-DD, arguments accepted and ignored) and
``toTypeScriptType`` (JSON-schema property to a TypeScript type, as api.ToolProperty.ToTypeScriptType).

Values: Ollama executes chat templates on Go structs (api.Message, api.Tool, ...) rather than maps. Those types
matter for the output: ``{{ .Tools }}``, ``{{ range .Tools }}{{ . }}``, ``{{ .Function }}`` and
``{{ .Function.Arguments }}`` print as JSON (their String methods), and ``json`` writes them with their JSON
names in declaration order. `messages_value` and `tools_value` turn API-shaped dicts (as they arrive in a
/api/chat request) into such values, so that templates render as they do in Ollama.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from corral.prompt.gotemplate.builtins import Func
from corral.prompt.gotemplate.gofmt import format_value
from corral.prompt.gotemplate.gojson import UnsupportedTypeError, UnsupportedValueError, marshal
from corral.prompt.gotemplate.values import Field, GoList, GoMap, GoStruct

# --- template functions ---------------------------------------------------------------------------------


def json_func(v: Any) -> str:
    try:
        return marshal(v)
    except (UnsupportedValueError, UnsupportedTypeError):
        return ""  # Ollama discards Marshal's error and prints the nil result


def current_date(*_: str) -> str:
    return _dt.date.today().isoformat()


def yesterday_date(*_: str) -> str:
    return (_dt.date.today() - _dt.timedelta(days=1)).isoformat()


_TS_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "array": "any[]",
    "object": "Record<string, any>",
    "null": "null",
}


def to_typescript_type(v: Any) -> str:
    """api.ToolProperty.ToTypeScriptType; Ollama gives "any" for anything but a ToolProperty.

    Plain dicts are accepted as JSON-schema properties too, so templates rendered on undecorated data behave
    like Ollama's typed ones.
    """
    if isinstance(v, GoStruct) and v.type_name == "api.ToolProperty":
        any_of = v.get("AnyOf") or []
        types = list(v.get("Type") or [])
    elif isinstance(v, dict):
        any_of = v.get("anyOf") or []
        raw = v.get("type")
        types = [raw] if isinstance(raw, str) else list(raw or [])
    else:
        return "any"
    if any_of:
        return " | ".join(to_typescript_type(p) for p in any_of)
    if not types:
        return "any"
    return " | ".join(_TS_TYPES.get(t, "any") if isinstance(t, str) else "any" for t in types)


OLLAMA_FUNCS: dict[str, Func] = {
    "json": Func(json_func, ("any",)),
    "currentDate": Func(current_date, ("string",), variadic=True),
    "yesterdayDate": Func(yesterday_date, ("string",), variadic=True),
    "toTypeScriptType": Func(to_typescript_type, ("any",)),
}


# --- typed values -----------------------------------------------------------------------------------------


def _json_string(v: Any) -> str:
    return marshal(v)


def go_decoded(v: Any) -> Any:
    """A JSON value as Go decodes it into ``any``: every number becomes a float64."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, Mapping):
        return {str(k): go_decoded(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [go_decoded(x) for x in v]
    return v


def _property_type_string(pt: Any) -> str:
    if not pt:
        return ""
    if len(pt) == 1:
        return str(pt[0])
    return format_value(list(pt))


def _property_type_marshal(pt: Any) -> Any:
    return pt[0] if len(pt) == 1 else list(pt)


def _property_type(raw: Any) -> GoList:
    items = [raw] if isinstance(raw, str) else [str(t) for t in raw or []]
    return GoList(
        items,
        go_type="api.PropertyType",
        elem_iface=False,
        stringer=_property_type_string,
        marshal=_property_type_marshal,
    )


def _strings(raw: Any) -> GoList:
    return GoList([str(s) for s in raw or []], go_type="[]string", elem_iface=False)


_TOOL_PROPERTY_FIELDS = (
    Field("AnyOf", "anyOf", omitempty=True),
    Field("Type", "type", omitempty=True),
    Field("Items", "items", omitempty=True, iface=True),
    Field("Description", "description", omitempty=True),
    Field("Enum", "enum", omitempty=True),
    Field("Properties", "properties", omitempty=True),
    Field("Required", "required", omitempty=True),
)


def tool_property_value(prop: Mapping[str, Any]) -> GoStruct:
    """api.ToolProperty from a JSON-schema property dict."""
    nested = prop.get("properties")
    return GoStruct(
        "api.ToolProperty",
        _TOOL_PROPERTY_FIELDS,
        {
            "AnyOf": GoList(
                [tool_property_value(p) for p in prop.get("anyOf") or []],
                go_type="[]api.ToolProperty",
                elem_iface=False,
            ),
            "Type": _property_type(prop.get("type")),
            "Items": go_decoded(prop.get("items")),
            "Description": str(prop.get("description") or ""),
            "Enum": GoList(go_decoded(list(prop.get("enum") or []))),
            "Properties": _properties(nested) if nested is not None else None,
            "Required": _strings(prop.get("required")),
        },
    )


def _properties(raw: Mapping[str, Any]) -> GoMap:
    return GoMap(
        {str(k): tool_property_value(v or {}) for k, v in raw.items()},
        go_type="api.ToolPropertiesMap",
        elem_iface=False,
        stringer=_json_string,
    )


def tools_value(tools: Iterable[Mapping[str, Any]] | None) -> GoList:
    """api.Tools from request tools ``[{"type": "function", "function": {...}}]``."""
    out = []
    for tool in tools or []:
        fn = tool.get("function") or {}
        params = fn.get("parameters") or {}
        props = params.get("properties")
        parameters = GoStruct(
            "api.ToolFunctionParameters",
            (
                Field("Type", "type"),
                Field("Defs", "$defs", omitempty=True, iface=True),
                Field("Items", "items", omitempty=True, iface=True),
                Field("Required", "required", omitempty=True),
                Field("Properties", "properties"),
            ),
            {
                "Type": str(params.get("type") or ""),
                "Defs": go_decoded(params.get("$defs")),
                "Items": go_decoded(params.get("items")),
                "Required": _strings(params.get("required")),
                "Properties": _properties(props) if props is not None else None,
            },
            stringer=_json_string,
        )
        function = GoStruct(
            "api.ToolFunction",
            (
                Field("Name", "name"),
                Field("Description", "description", omitempty=True),
                Field("Parameters", "parameters"),
            ),
            {"Name": str(fn.get("name") or ""), "Description": str(fn.get("description") or ""),
             "Parameters": parameters},
            stringer=_json_string,
        )  # fmt: skip
        out.append(
            GoStruct(
                "api.Tool",
                (
                    Field("Type", "type"),
                    Field("Items", "items", omitempty=True, iface=True),
                    Field("Function", "function"),
                ),
                {"Type": str(tool.get("type") or ""), "Items": go_decoded(tool.get("items")), "Function": function},
                stringer=_json_string,
            )
        )
    # A request without tools leaves Ollama's slice nil, which marshals (and prints) as null.
    nil_marshal = (lambda _: None) if tools is None else None
    return GoList(out, go_type="api.Tools", elem_iface=False, stringer=_json_string, marshal=nil_marshal)


def _arguments(raw: Any) -> GoMap:
    if isinstance(raw, str):  # OpenAI-style arguments arrive as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = {}
    decoded = go_decoded(raw if isinstance(raw, Mapping) else {})
    return GoMap(decoded, go_type="api.ToolCallFunctionArguments", stringer=_json_string)


def tool_calls_value(calls: Iterable[Mapping[str, Any]] | None) -> GoList:
    out = []
    for call in calls or []:
        fn = call.get("function") or {}
        function = GoStruct(
            "api.ToolCallFunction",
            (Field("Index", "index", omitempty=True), Field("Name", "name"), Field("Arguments", "arguments")),
            {"Index": int(fn.get("index") or 0), "Name": str(fn.get("name") or ""),
             "Arguments": _arguments(fn.get("arguments"))},
        )  # fmt: skip
        out.append(
            GoStruct(
                "api.ToolCall",
                (Field("ID", "id", omitempty=True), Field("Function", "function")),
                {"ID": str(call.get("id") or ""), "Function": function},
            )
        )
    return GoList(out, go_type="[]api.ToolCall", elem_iface=False)


_MESSAGE_FIELDS = (
    Field("Role", "role"),
    Field("Content", "content"),
    Field("Thinking", "thinking", omitempty=True),
    Field("Images", "images", omitempty=True),
    Field("ToolCalls", "tool_calls", omitempty=True),
    Field("ToolName", "tool_name", omitempty=True),
    Field("ToolCallID", "tool_call_id", omitempty=True),
)


def message_value(msg: Mapping[str, Any]) -> GoStruct:
    """*api.Message from an API message dict (role, content, thinking, images, tool_calls, tool_name)."""
    return GoStruct(
        "*api.Message",
        _MESSAGE_FIELDS,
        {
            "Role": str(msg.get("role") or ""),
            "Content": str(msg.get("content") or ""),
            "Thinking": str(msg.get("thinking") or ""),
            "Images": GoList([str(i) for i in msg.get("images") or []], go_type="[]api.ImageData",
                             elem_iface=False),
            "ToolCalls": tool_calls_value(msg.get("tool_calls")),
            "ToolName": str(msg.get("tool_name") or ""),
            "ToolCallID": str(msg.get("tool_call_id") or ""),
        },
    )  # fmt: skip


def messages_value(messages: Iterable[Mapping[str, Any]]) -> GoList:
    """[]*api.Message as Ollama passes ``.Messages`` (already collated by the caller)."""
    return GoList([message_value(m) for m in messages], go_type="[]*api.Message", elem_iface=False)


def chat_values(
    messages: Iterable[Mapping[str, Any]],
    *,
    system: str = "",
    tools: Iterable[Mapping[str, Any]] | None = None,
    think: bool = False,
    think_level: str = "",
    is_think_set: bool = False,
) -> dict[str, Any]:
    """The data Ollama gives a template that uses ``.Messages`` (its Template.Execute, messages branch)."""
    return {
        "System": system,
        "Messages": messages_value(messages),
        "Tools": tools_value(tools),
        "Response": "",
        "Think": think,
        "ThinkLevel": think_level,
        "IsThinkSet": is_think_set,
    }
