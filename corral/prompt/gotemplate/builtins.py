"""Go text/template's predefined functions (and, or, not, eq, len, index, printf, ...).

Each function is described by a `Func`: the Go parameter kinds decide how the executor evaluates and checks
the arguments (Go distinguishes ``reflect.Value`` parameters, which see interface-typed values as they are,
from ``any`` and ``string`` parameters), and errors are raised as `FuncError` with Go's message so the executor
can report ``error calling len: len of type int``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from corral.prompt.gotemplate.gofmt import format_value, sprint, sprintf, sprintln
from corral.prompt.gotemplate.values import (
    INVALID,
    Boxed,
    Byte,
    GoList,
    GoMap,
    GoStruct,
    go_type_name,
    indirect_interface,
    is_true,
    unbox,
)

ParamKind = Literal["value", "any", "string"]


class FuncError(Exception):
    """A template function returned an error; the message is Go's."""


@dataclass(frozen=True)
class Func:
    """A template function with its Go signature.

    `params` are the Go parameter kinds; with `variadic` the last one repeats. `returns_value` marks functions
    returning a reflect.Value (index, slice), whose interface-typed results the executor must keep as they are.
    """

    impl: Callable[..., Any]
    params: tuple[ParamKind, ...]
    variadic: bool = False
    returns_value: bool = False


# --- comparison ---------------------------------------------------------------------------------------------

_ERR_BAD_COMPARISON_TYPE = "invalid type for comparison"
_ERR_BAD_COMPARISON = "incompatible types for comparison"
_ERR_NO_COMPARISON = "missing argument for comparison"


def _bad_comparison(arg1: Any, arg2: Any) -> str:
    # Go 1.25 added the two types to the message (Ollama 0.33 is built with Go 1.26).
    return f"{_ERR_BAD_COMPARISON}: {go_type_name(arg1)} and {go_type_name(arg2)}"


def _basic_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return None


def _kind(v: Any) -> str:
    """The reflect.Kind family of a non-basic value, for eq's comparability check."""
    if isinstance(v, (list, tuple)):
        return "slice"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, GoStruct):
        return "ptr" if v.type_name.startswith("*") else "struct"
    return "func" if callable(v) else type(v).__name__


def _is_nil(v: Any) -> bool:
    return v is INVALID or (isinstance(v, Boxed) and v.value is None)


def _eq(arg1: Any, *args: Any) -> bool:
    arg1 = indirect_interface(arg1)
    if not args:
        raise FuncError(_ERR_NO_COMPARISON)
    k1 = _basic_kind(arg1)
    for arg in args:
        arg = indirect_interface(arg)
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not INVALID and arg is not INVALID:
                raise FuncError(_bad_comparison(arg1, arg))
            truth = False
        elif k1 is not None:
            truth = arg1 == arg
        elif _kind(arg1) != _kind(arg) and arg1 is not INVALID and arg is not INVALID:
            raise FuncError(
                f"non-comparable types {format_value(arg1, 's')}: {go_type_name(arg1)}, "
                f"{go_type_name(arg)}: {format_value(arg)}"
            )
        elif _is_nil(arg1) or _is_nil(arg):
            truth = _is_nil(arg1) == _is_nil(arg)
        elif isinstance(arg, (list, tuple, dict)) or callable(arg):
            raise FuncError(f"non-comparable type {format_value(arg, 's')}: {go_type_name(arg)}")
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _lt(arg1: Any, arg2: Any) -> bool:
    arg1 = indirect_interface(arg1)
    k1 = _basic_kind(arg1)
    if k1 is None:
        raise FuncError(_ERR_BAD_COMPARISON_TYPE)
    arg2 = indirect_interface(arg2)
    k2 = _basic_kind(arg2)
    if k2 is None:
        raise FuncError(_ERR_BAD_COMPARISON_TYPE)
    if k1 != k2:
        raise FuncError(_bad_comparison(arg1, arg2))
    if k1 == "bool":
        raise FuncError(_ERR_BAD_COMPARISON_TYPE)
    if k1 == "string":
        return bool(arg1.encode("utf-8", "surrogatepass") < arg2.encode("utf-8", "surrogatepass"))
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


# --- boolean --------------------------------------------------------------------------------------------------


def _not(arg: Any) -> bool:
    return not is_true(arg)


def _and_or(*_: Any) -> Any:
    raise AssertionError("and/or are evaluated by the executor (they short-circuit)")


# --- indexing -----------------------------------------------------------------------------------------------


def _index_arg(index: Any, cap: int) -> int:
    if isinstance(index, int) and not isinstance(index, bool):
        x = index
    elif index is INVALID:
        raise FuncError("cannot index slice/array with nil")
    else:
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if x < 0 or x > cap:
        raise FuncError(f"index out of range: {x}")
    return x


def _elem(container: list[Any] | tuple[Any, ...] | dict[str, Any], item: Any) -> Any:
    iface = getattr(container, "elem_iface", True)
    return Boxed(item) if iface else item


def _index(item: Any, *indexes: Any) -> Any:
    item = indirect_interface(item)
    if item is INVALID:
        raise FuncError("index of untyped nil")
    for raw_index in indexes:
        index = indirect_interface(raw_index)
        if isinstance(item, Boxed):
            if item.value is None:
                raise FuncError("index of nil pointer")
            item = item.value
        if isinstance(item, str):
            data = item.encode("utf-8", "surrogatepass")
            x = _index_arg(index, len(data))
            if x == len(data):  # Go 1.23 lets reflect panic here
                raise FuncError("reflect: string index out of range")
            item = Byte(data[x])
        elif isinstance(item, (list, tuple)):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise FuncError("reflect: slice index out of range")
            item = _elem(item, item[x])
        elif isinstance(item, dict):
            if index is INVALID:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type_name(index)}; should be string")
            item = _elem(item, item[index]) if index in item else Boxed(None)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    item = indirect_interface(item)
    if item is INVALID:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
        cap = len(data)
    elif isinstance(item, (list, tuple)):
        cap = len(item)
    else:
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, cap, cap]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, cap)  # Go does not look through interfaces here
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, str):
        return data[idx[0] : idx[1]].decode("utf-8", "replace")
    if isinstance(item, GoList):
        return GoList(
            item[idx[0] : idx[1]],
            go_type=item.go_type,
            elem_iface=item.elem_iface,
            stringer=item.stringer,
            marshal=item.marshal,
        )
    return list(item[idx[0] : idx[1]])


def _len(item: Any) -> int:
    if item is INVALID:  # Go panics inside reflect here and reports the panic
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, Boxed):
        if item.value is None:
            raise FuncError("len of nil pointer")
        item = item.value
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _call(name: str, fn: Any, *args: Any) -> Any:
    """``call``: the executor passes the callee's source text first, as Go does, for the messages."""
    fn = indirect_interface(fn)
    if fn is INVALID:
        raise FuncError("call of nil")
    if not callable(fn) or isinstance(fn, (GoStruct, GoMap, GoList, dict, list)):
        raise FuncError(f"non-function {name} of type {go_type_name(fn)}")
    try:
        return Boxed(fn(*(unbox(a) for a in args)))
    except FuncError:
        raise
    except Exception as exc:
        raise FuncError(str(exc)) from exc


# --- escaping -----------------------------------------------------------------------------------------------


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    # Go passes each operand through printableValue first, which turns a nil into "<no value>".
    return sprint(*("<no value>" if a is None else a for a in args))


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\x00": "\ufffd"}


def html_escape(s: str) -> str:
    return "".join(_HTML.get(c, c) for c in s)


def _html(*args: Any) -> str:
    return html_escape(_eval_args(args))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def js_escape(s: str) -> str:
    out = []
    for c in s:
        if c in _JS:
            out.append(_JS[c])
        elif c < " " or (c >= "\x80" and not c.isprintable()):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _js(*args: Any) -> str:
    return js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


BUILTINS: dict[str, Func] = {
    "and": Func(_and_or, ("value", "value"), variadic=True, returns_value=True),
    "or": Func(_and_or, ("value", "value"), variadic=True, returns_value=True),
    "not": Func(_not, ("value",)),
    "call": Func(_call, ("value", "value"), variadic=True, returns_value=True),
    "html": Func(_html, ("any",), variadic=True),
    "js": Func(_js, ("any",), variadic=True),
    "urlquery": Func(_urlquery, ("any",), variadic=True),
    "index": Func(_index, ("value", "value"), variadic=True, returns_value=True),
    "slice": Func(_slice, ("value", "value"), variadic=True, returns_value=True),
    "len": Func(_len, ("value",)),
    "print": Func(sprint, ("any",), variadic=True),
    "printf": Func(sprintf, ("string", "any"), variadic=True),
    "println": Func(sprintln, ("any",), variadic=True),
    "eq": Func(_eq, ("value", "value"), variadic=True),
    "ne": Func(_ne, ("value", "value")),
    "lt": Func(_lt, ("value", "value")),
    "le": Func(_le, ("value", "value")),
    "gt": Func(_gt, ("value", "value")),
    "ge": Func(_ge, ("value", "value")),
}
