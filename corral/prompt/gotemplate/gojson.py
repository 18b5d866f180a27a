"""Go's ``json.Marshal`` of template values (Ollama's ``json`` template function).

The bytes are :mod:`corral.gocodec`'s; what is particular to templates is the values: a dict is a Go
``map`` (keys sorted), a `GoStruct` marshals its fields in declaration order under their JSON tags with
``omitempty`` honoured, and a `GoList` may have its own ``MarshalJSON`` (``api.PropertyType``, a nil
``api.Tools``).
"""

from __future__ import annotations

from typing import Any

from corral.gocodec import Struct, UnsupportedTypeError, UnsupportedValueError, dumps_str
from corral.prompt.gotemplate.values import GoList, GoStruct

__all__ = ["UnsupportedTypeError", "UnsupportedValueError", "marshal"]


def _is_empty(v: Any) -> bool:
    """omitempty: false, 0, "", nil, and empty slices/maps are left out (structs never are)."""
    if v is None:
        return True
    if isinstance(v, (bool, int, float)):
        return not v
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) == 0
    return False


def _json_value(v: Any) -> Any:
    """The template value as the plain values (and `Struct`) the encoder takes."""
    if isinstance(v, GoList) and v.marshal is not None:
        return _json_value(v.marshal(v))
    if isinstance(v, (list, tuple)):
        return [_json_value(e) for e in v]
    if isinstance(v, dict):
        return {k: _json_value(e) for k, e in v.items()}
    if isinstance(v, GoStruct):
        return Struct(
            (f.json, _json_value(v.values.get(f.name)))
            for f in v.fields
            if f.json is not None and not (f.omitempty and _is_empty(v.values.get(f.name)))
        )
    return v


def marshal(v: Any) -> str:
    """json.Marshal(v) as text; raises UnsupportedValueError or UnsupportedTypeError where Go returns an error."""
    return dumps_str(_json_value(v), sort_keys=True)
