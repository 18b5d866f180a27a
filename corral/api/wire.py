"""JSON bytes as Go's ``encoding/json`` writes them, plus Go's ``%q`` and ``time.Time`` text.

Ollama answers through gin's ``c.JSON`` and ``json.Marshal``, so every response body is shaped by
Go's encoder. Clients parse it either way, but byte-identical output makes golden tests against a
real Ollama possible and avoids surprises in tools that diff or hash responses. The differences
from Python's ``json.dumps`` that matter:

- ``<``, ``>``, ``&``, U+2028 and U+2029 are escaped (``\\u003c`` ...), because Go's default
  encoder is HTML-safe; other non-ASCII text is written as raw UTF-8.
- Floats use the shortest text that round-trips, in plain notation between 1e-6 and 1e21
  (``1`` not ``1.0``, ``0.00001`` not ``1e-05``), exponent form outside it (``1e-7``).
- ``float32`` values (embeddings, GGUF float metadata) round-trip at 32 bits: ``0.1`` rather
  than ``0.10000000149011612``. Mark them with :class:`Float32` or :class:`Float32Array`.
- Lone surrogates (from ``"\\ud800"`` escapes in a request) become U+FFFD, as Go's decoder would
  have made them.

Key order is the caller's: ``to_wire()`` builds dicts in Go struct-field order, and sorts the
keys of values that are Go maps (``model_info``), as ``encoding/json`` does.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "Float32",
    "Float32Array",
    "dumps",
    "format_go_float",
    "format_time",
    "go_quote",
    "ndjson_line",
    "sorted_map",
]


class Float32(float):
    """A float that Go holds as ``float32``: serialised with 32-bit shortest round-trip digits."""

    __slots__ = ()


class Float32Array(list[float]):
    """A list whose items are Go ``float32`` values (an embedding vector)."""

    __slots__ = ()


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_F32 = struct.Struct("<f")


def _to_f32(value: float) -> float:
    """Round a double to the nearest float32 (the value Go would hold)."""
    return float(_F32.unpack(_F32.pack(value))[0])


_F32_1E_6 = _to_f32(1e-6)
_F32_1E21 = _to_f32(1e21)


def _shortest_f32_digits(value: float) -> str:
    """Shortest decimal (as ``%e`` text) that reads back as the same float32."""
    # Go finds this with Ryu; searching 1..9 significant digits gives the same digits because a
    # float32 never needs more than 9. Most values need 8 or 9, so start at 7 and go up; only
    # when 7 already works is a shorter form possible.
    text = f"{value:.6e}"
    if _to_f32(float(text)) == value:
        for precision in range(5, -1, -1):
            candidate = f"{value:.{precision}e}"
            if _to_f32(float(candidate)) != value:
                break
            text = candidate
        return text
    text = f"{value:.7e}"
    if _to_f32(float(text)) == value:
        return text
    return f"{value:.8e}"


def _split_digits(text: str) -> tuple[bool, str, int]:
    """``"-1.25e-07"`` or ``"-0.000125"`` -> (negative, significant digits, decimal exponent)."""
    negative = text.startswith("-")
    text = text.lstrip("-")
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    # position of the first significant digit relative to the decimal point
    exponent += len(whole) - 1 - (len(whole + frac) - len(digits))
    digits = digits.rstrip("0")
    return negative, digits or "0", exponent


def format_go_float(value: float, bits: int = 64) -> str:
    """Format a float as Go's ``encoding/json`` does for ``float64`` (or ``float32`` with bits=32)."""
    if math.isnan(value) or math.isinf(value):
        # Go's encoder fails with UnsupportedValueError; surfacing an error is the only faithful option.
        raise ValueError(f"json: unsupported value: {value!r}")
    if bits == 32:
        value = _to_f32(value)
        if not value:
            return "-0" if math.copysign(1.0, value) < 0 else "0"
        low, high = _F32_1E_6, _F32_1E21  # Go compares in float32: float32(1e-6) is not below itself
        text = _shortest_f32_digits(value)
    else:
        low, high = 1e-6, 1e21
        text = repr(value)
        # repr already is Go's text between 1e-4 and 1e16, but for the ".0" of whole numbers
        if "e" not in text:
            return text[:-2] if text.endswith(".0") else text
    magnitude = abs(value)
    negative, digits, exp10 = _split_digits(text)
    sign = "-" if negative else ""
    if low <= magnitude < high:
        if exp10 >= len(digits) - 1:
            return sign + digits + "0" * (exp10 - len(digits) + 1)
        if exp10 >= 0:
            return sign + digits[: exp10 + 1] + "." + digits[exp10 + 1 :]
        return sign + "0." + "0" * (-exp10 - 1) + digits
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    # Go writes at least two exponent digits (e+21, e-07), then its JSON encoder trims e-07 to e-7
    exp_text = f"{abs(exp10):02d}"
    if exp10 < 0 and exp_text.startswith("0"):
        exp_text = exp_text[1:]
    return sign + head + ("e-" if exp10 < 0 else "e+") + exp_text


def _encode_str(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    if _HTML_RE.search(encoded):
        encoded = _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group(0)], encoded)
    return encoded


def _encode(obj: Any, out: list[str]) -> None:
    # Order of checks matters: bool is an int, Float32 is a float, Float32Array is a list.
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_encode_str(obj))
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, Float32):
        out.append(format_go_float(obj, 32))
    elif isinstance(obj, float):
        out.append(format_go_float(obj))
    elif isinstance(obj, Float32Array):
        out.append("[" + ",".join(format_go_float(v, 32) for v in obj) + "]")
    elif isinstance(obj, Mapping):
        out.append("{")
        first = True
        for key, value in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(str(key)))
            out.append(":")
            _encode(value, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif hasattr(obj, "to_wire"):
        _encode(obj.to_wire(), out)
    elif isinstance(obj, datetime):
        out.append(_encode_str(format_time(obj)))
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON exactly as Go's ``json.Marshal`` writes it (no trailing newline).

    Accepts dicts, lists, scalars, ``datetime`` and anything with a ``to_wire()`` method (every
    response model in :mod:`corral.api`).
    """
    out: list[str] = []
    _encode(obj, out)
    text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text).encode("utf-8")


def ndjson_line(obj: Any) -> bytes:
    """One NDJSON line: :func:`dumps` plus ``\\n``, as Ollama's stream writer frames chunks."""
    return dumps(obj) + b"\n"


_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (the ``%q`` verb): double quotes, Go escapes, printable Unicode kept."""
    parts = ['"']
    for ch in text:
        if ch in _QUOTE_ESCAPES:
            parts.append(_QUOTE_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            parts.append(ch)
        elif ord(ch) < 0x80:
            parts.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            parts.append("\\ufffd")
        elif ord(ch) <= 0xFFFF:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(f"\\U{ord(ch):08x}")
    parts.append('"')
    return "".join(parts)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def format_time(value: datetime | int) -> str:
    """RFC 3339 with nanoseconds, as Go's ``time.Time`` marshals (``2024-05-01T12:34:56.123456789Z``).

    ``value`` is an aware ``datetime`` (its offset is kept, ``Z`` for UTC, as Go keeps the
    ``time.Location``), a naive ``datetime`` (taken as UTC), or integer nanoseconds since the Unix
    epoch (UTC; ``time.time_ns()``), the only way to carry Go's nanosecond precision. Trailing
    zeros of the fraction are dropped, and a whole second has no fraction at all, as in Go.
    """
    if isinstance(value, int):
        seconds, nanos = divmod(value, 1_000_000_000)
        moment = _EPOCH + timedelta(seconds=seconds)
    else:
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        nanos = moment.microsecond * 1000
        moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"


def sorted_map(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Go ``map[string]any`` marshals with its keys sorted; nested maps too."""
    if mapping is None:
        return None
    return {key: _sort_nested(mapping[key]) for key in sorted(mapping)}


def _sort_nested(value: Any) -> Any:
    if isinstance(value, Mapping):
        return sorted_map(value)
    if isinstance(value, list) and not isinstance(value, Float32Array):
        return [_sort_nested(v) for v in value]
    return value
