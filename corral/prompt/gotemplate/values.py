"""How Python values stand in for Go values during execution.

Template data is plain Python: ``dict`` is Go's ``map[string]interface{}``, ``list``/``tuple`` is
``[]interface{}``, and ``str``/``int``/``float``/``bool``/``None`` are string/int/float64/bool/nil. That is what
Go sees when a template runs on decoded JSON, and it is enough for most templates.

Ollama, however, runs its templates on typed Go structs, and a few of those types print themselves as JSON
(``{{ .Tools }}``, ``{{ .Function.Arguments }}``) or marshal under JSON names that differ from the field names
used in the template (``.Function.Name`` vs ``"function": {"name": ...}``). `GoStruct`, `GoList` and `GoMap`
model such typed values; `corral.prompt.gotemplate.ollama` builds them the way Ollama does.

Inside the executor two more shapes appear: `Boxed` (a value read through an ``interface{}``-typed slot, such
as a map element, which matters for nil handling and for the type named in errors) and `INVALID` (Go's zero
``reflect.Value``, e.g. the result of a pipeline that evaluated to a missing map key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final


class _Invalid:
    """Go's zero reflect.Value: no value at all (prints as ``<no value>``)."""

    _instance: _Invalid | None = None

    def __new__(cls) -> _Invalid:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()


@dataclass(frozen=True)
class Boxed:
    """A value held in an ``interface{}`` slot (map element, slice element, ``any`` field); None is nil."""

    value: Any


@dataclass(frozen=True)
class Field:
    """One field of a `GoStruct` type: its Go name, JSON tag and static kind."""

    name: str
    json: str | None = None  # JSON key; None means the field is skipped (``json:"-"``)
    omitempty: bool = False
    iface: bool = False  # declared as ``any``: reads give Boxed values, nil prints as <nil>


StringFn = Callable[[Any], str]
MarshalFn = Callable[[Any], Any]


class GoStruct:
    """A Go struct value: fields in declaration order, read by Go name, marshalled by JSON tag.

    `type_name` is what Go's error messages call the type (``*api.Message``); `stringer`, when given, is the
    type's String() method, which fmt (and therefore template printing) prefers over the field dump.
    """

    __slots__ = ("fields", "stringer", "type_name", "values")

    def __init__(
        self,
        type_name: str,
        fields: Iterable[Field],
        values: Mapping[str, Any],
        *,
        stringer: StringFn | None = None,
    ) -> None:
        self.type_name = type_name
        self.fields = tuple(fields)
        self.values = dict(values)
        self.stringer = stringer
        unknown = set(self.values) - {f.name for f in self.fields}
        if unknown:
            raise ValueError(f"{type_name} has no fields {sorted(unknown)}")

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def __repr__(self) -> str:
        return f"GoStruct({self.type_name!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoStruct) and other.type_name == self.type_name and other.values == self.values

    __hash__ = None  # type: ignore[assignment]


class GoList(list[Any]):
    """A typed or named Go slice (e.g. ``api.Tools``, ``[]api.ToolCall``)."""

    def __init__(
        self,
        items: Iterable[Any] = (),
        *,
        go_type: str = "[]interface {}",
        elem_iface: bool = True,
        stringer: StringFn | None = None,
        marshal: MarshalFn | None = None,
    ) -> None:
        super().__init__(items)
        self.go_type = go_type
        self.elem_iface = elem_iface
        self.stringer = stringer
        self.marshal = marshal


class GoMap(dict[str, Any]):
    """A typed or named Go map (e.g. ``api.ToolCallFunctionArguments``, which prints as JSON)."""

    def __init__(
        self,
        items: Mapping[str, Any] | None = None,
        *,
        go_type: str = "map[string]interface {}",
        elem_iface: bool = True,
        stringer: StringFn | None = None,
    ) -> None:
        super().__init__(items or {})
        self.go_type = go_type
        self.elem_iface = elem_iface
        self.stringer = stringer


class Byte(int):
    """A Go uint8, as ``index`` yields from a string."""


def unbox(v: Any) -> Any:
    """The concrete value Go passes for an ``any`` parameter: Boxed unwrapped, INVALID as nil."""
    if isinstance(v, Boxed):
        return v.value
    if v is INVALID:
        return None
    return v


def indirect_interface(v: Any) -> Any:
    """Go's indirectInterface: look through an interface; a nil interface becomes INVALID."""
    if isinstance(v, Boxed):
        return INVALID if v.value is None else v.value
    if v is None:
        return INVALID
    return v


def go_type_name(v: Any) -> str:
    """reflect.Type.String() of the value, as Go's messages print it."""
    if isinstance(v, Boxed):
        return "interface {}"
    if v is None or v is INVALID:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Byte):
        return "uint8"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoStruct):
        return v.type_name
    if isinstance(v, (GoList, GoMap)):
        return v.go_type
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if callable(v):
        return "func(...interface {}) interface {}"
    return type(v).__name__


def stringer_of(v: Any) -> StringFn | None:
    """The value's String() method, if its Go type has one."""
    if isinstance(v, (GoStruct, GoList, GoMap)):
        return v.stringer
    return None


def is_true(v: Any) -> bool:
    """Go's isTrue for template conditions (after indirecting interfaces)."""
    v = indirect_interface(v)
    if v is INVALID:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0
    return True  # structs, functions and pointers to them


def sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Map keys in Go's fmtsort order (numbers numerically, strings bytewise)."""

    def key(k: Any) -> tuple[int, Any]:
        if isinstance(k, bool):
            return (0, int(k))
        if isinstance(k, (int, float)):
            return (1, k)
        if isinstance(k, str):
            return (2, k.encode("utf-8", "surrogatepass"))
        return (3, str(k))

    return sorted(m, key=key)
