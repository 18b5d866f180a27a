"""Go's encoding/json.Marshal output for template values (Ollama's ``json`` template function).

Differences from Python's json.dumps that matter: compact separators, map keys sorted, ``<``, ``>``, ``&``,
U+2028 and U+2029 escaped as ``\\u003c``..., control characters as ``\\u00XX`` (``\\b``/``\\f``/``\\n``/
``\\r``/``\\t`` short), floats as Go formats them (``1e+21``, ``1e-7``, ``100``), structs in field order by
JSON tag with ``omitempty`` honoured.
"""

from __future__ import annotations

import math
from typing import Any

from corral.prompt.gotemplate.gofmt import format_float
from corral.prompt.gotemplate.values import GoList, GoStruct, sorted_keys


class UnsupportedValueError(ValueError):
    """json: unsupported value (NaN or infinity), or a type JSON cannot express."""


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def encode_string(s: str) -> str:
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\\ufffd")  # Go replaces invalid UTF-8 with U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise UnsupportedValueError(f"json: unsupported value: {format_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        out = format_float(f, "e", -1)
        # Go trims the exponent's leading zero: 1e-07 -> 1e-7.
        mant, _, exp = out.partition("e")
        sign, digits = exp[0], exp[1:].lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    return format_float(f, "f", -1)


def _is_empty(v: Any) -> bool:
    """omitempty: false, 0, "", nil, and empty slices/maps are left out (structs never are)."""
    if v is None:
        return True
    if isinstance(v, (bool, int, float)):
        return not v
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) == 0
    return False


def marshal(v: Any) -> str:
    """json.Marshal(v) as text; raises UnsupportedValueError where Go returns an error."""
    parts: list[str] = []
    _encode(v, parts)
    return "".join(parts)


def _encode(v: Any, out: list[str]) -> None:
    if v is None:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(encode_float(v))
    elif isinstance(v, str):
        out.append(encode_string(v))
    elif isinstance(v, GoList) and v.marshal is not None:
        _encode(v.marshal(v), out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, e in enumerate(v):
            if i:
                out.append(",")
            _encode(e, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted_keys(v)):
            if i:
                out.append(",")
            out.append(encode_string(str(k)))
            out.append(":")
            _encode(v[k], out)
        out.append("}")
    elif isinstance(v, GoStruct):
        out.append("{")
        first = True
        for f in v.fields:
            if f.json is None:
                continue
            val = v.values.get(f.name)
            if f.omitempty and _is_empty(val):
                continue
            if not first:
                out.append(",")
            first = False
            out.append(encode_string(f.json))
            out.append(":")
            _encode(val, out)
        out.append("}")
    else:
        raise UnsupportedValueError(f"json: unsupported type: {type(v).__name__}")
