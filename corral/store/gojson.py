"""JSON bytes exactly as Go's ``encoding/json`` writes them.

Blob digests are sha256 of bytes, so a params or config blob that differs from Ollama's by one
space or one escaped ``<`` gets another digest, and the same model created by corral and by Ollama
would not share layers (nor dedupe on push).  Go's encoder differs from ``json.dumps`` in ways that
matter here:

- compact separators, UTF-8 kept as is (no ``\\uXXXX`` for non-ASCII);
- ``<``, ``>`` and ``&`` are escaped as ``\\u003c``/``\\u003e``/``\\u0026`` (``SetEscapeHTML(true)``,
  the default), as are U+2028 and U+2029;
- map keys are sorted, struct fields keep declaration order (callers pass ``sort_keys`` for maps);
- floats use the shortest representation, without ``.0`` for integral values and with an exponent
  only below 1e-6 or from 1e21 up;
- ``Encoder.Encode`` appends a newline, ``Marshal`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "format_float"]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _escape_char(ch: str) -> str:
    esc = _ESCAPES.get(ch)
    if esc is not None:
        return esc
    if ord(ch) < 0x20:
        # Go writes \b and \f as \u0008 and \u000c (before Go 1.22) or short forms (after); the
        # long form is what every Ollama release we match was built with.
        return f"\\u{ord(ch):04x}"
    if 0xD800 <= ord(ch) <= 0xDFFF:
        # A lone surrogate cannot be UTF-8 encoded; Go replaces invalid UTF-8 with U+FFFD.
        return "\ufffd"
    return ch


def _string(s: str) -> str:
    # Fast path: most strings need no escaping at all.
    if s.isascii() and s.isprintable() and not any(c in s for c in '"\\<>&'):
        return f'"{s}"'
    return '"' + "".join(_escape_char(c) for c in s) + '"'


def format_float(value: float) -> str:
    """Format a float64 the way Go's encoding/json does (strconv 'f' or 'e', shortest)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    text = repr(value)  # the shortest round-tripping digits, like Go's -1 precision
    if magnitude < 1e-6 or magnitude >= 1e21:
        # Go: strconv 'e' format (exponent of at least two digits), then encoding/json cleans
        # "e-09" up to "e-9"; positive exponents (always >= 21 here) keep their two digits.
        mantissa, _, exponent = format(Decimal(text), "e").partition("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        if exponent.startswith("-"):
            return f"{mantissa}e-{int(exponent[1:])}"
        return f"{mantissa}e+{int(exponent.lstrip('+')):02d}"
    plain = format(Decimal(text), "f")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    return plain


def _encode(obj: Any, sort_keys: bool, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        out.append(format_float(obj))
    elif isinstance(obj, Mapping):
        items = sorted(obj.items()) if sort_keys else list(obj.items())
        out.append("{")
        for i, (key, value) in enumerate(items):
            if i:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(value, sort_keys, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, value in enumerate(obj):
            if i:
                out.append(",")
            _encode(value, sort_keys, out)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(obj).__name__}")


def dumps(obj: Any, *, sort_keys: bool = False, newline: bool = False) -> bytes:
    """Encode ``obj`` as Go would.

    ``sort_keys`` mimics a Go ``map`` (keys sorted); leave it off for values built in struct field
    order.  ``newline`` mimics ``json.Encoder.Encode``, which Ollama uses for the blobs it writes.
    """
    out: list[str] = []
    _encode(obj, sort_keys, out)
    if newline:
        out.append("\n")
    return "".join(out).encode("utf-8")
