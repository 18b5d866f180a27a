"""JSON bytes exactly as Go's ``encoding/json`` writes them.

Response bodies (gin's ``c.JSON``), blobs (``json.NewEncoder(f).Encode``: blob digests are sha256 of these
bytes, so one space or one escaped ``<`` more than Ollama and the same model gets other layers) and the
template ``json`` function (``json.Marshal``) all come out of Go's encoder. How it differs from
``json.dumps``:

- compact separators; non-ASCII text as raw UTF-8;
- ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c``... (the encoder is HTML-safe by default,
  and no Ollama code path turns that off);
- floats as :func:`~corral.gocodec.floats.format_json_float` writes them (``1`` not ``1.0``, ``1e-7``), at
  32 bits for :class:`Float32` values;
- a Go map's keys sorted, a struct's fields in declaration order (``sort_keys`` and :class:`Struct`);
- a lone surrogate (from a ``"\\ud800"`` escape in a request) written as U+FFFD, the character Go's decoder
  would have made of it;
- ``time.Time`` as RFC 3339 with nanoseconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from corral.gocodec.floats import Float32, Float32Array, format_json_float
from corral.gocodec.timefmt import format_time

__all__ = ["Struct", "UnsupportedTypeError", "dumps", "dumps_str", "ndjson_line", "sorted_map"]


class Struct(dict[str, Any]):
    """A Go struct value: its JSON field names in declaration order, kept even when maps are sorted."""

    __slots__ = ()


class UnsupportedTypeError(TypeError):
    """``json: unsupported type: …``: a value JSON cannot express."""


_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# One escape sequence of the finished text: pairs are matched left to right, so the "b" of an escaped
# backslash followed by a letter b ("\\\\b") is never taken for "\\b".
_ESCAPE_PAIR_RE = re.compile(r"\\.")
_PRE_GO122 = {"\\b": "\\u0008", "\\f": "\\u000c"}


def _encode_str(text: str) -> str:
    # json.dumps's C encoder writes Go's escapes for everything but the HTML-safe set.
    encoded = json.dumps(text, ensure_ascii=False)
    if _HTML_RE.search(encoded):
        encoded = _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group(0)], encoded)
    return encoded


def _encode(obj: Any, out: list[str], sort_keys: bool) -> None:
    # Order of checks matters: bool is an int, Float32 is a float, Float32Array is a list, Struct a dict.
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
        out.append(format_json_float(obj, 32))
    elif isinstance(obj, float):
        out.append(format_json_float(obj))
    elif isinstance(obj, Float32Array):
        out.append("[" + ",".join(format_json_float(v, 32) for v in obj) + "]")
    elif isinstance(obj, Mapping):
        # encoding/json sorts a map's keys by their string form, bytewise; for str that is code point order
        keys = sorted(obj, key=str) if sort_keys and not isinstance(obj, Struct) else list(obj)
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_encode_str(str(key)))
            out.append(":")
            _encode(obj[key], out, sort_keys)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for i, item in enumerate(obj):
            if i:
                out.append(",")
            _encode(item, out, sort_keys)
        out.append("]")
    elif hasattr(obj, "to_wire"):
        _encode(obj.to_wire(), out, sort_keys)
    elif isinstance(obj, datetime):
        out.append(_encode_str(format_time(obj)))
    else:
        raise UnsupportedTypeError(f"json: unsupported type: {type(obj).__name__}")


def _text(obj: Any, sort_keys: bool, newline: bool, pre_go122_escapes: bool) -> str:
    out: list[str] = []
    _encode(obj, out, sort_keys)
    if newline:
        out.append("\n")
    text = "".join(out)
    if pre_go122_escapes and ("\\b" in text or "\\f" in text):
        text = _ESCAPE_PAIR_RE.sub(lambda m: _PRE_GO122.get(m.group(0), m.group(0)), text)
    return text


def dumps(obj: Any, *, sort_keys: bool = False, newline: bool = False, pre_go122_escapes: bool = False) -> bytes:
    """UTF-8 JSON exactly as Go writes it.

    Accepts dicts, lists, scalars, ``datetime`` and anything with a ``to_wire()`` method (every response
    model in :mod:`corral.api`). The switches mirror the Go call being reproduced:

    - ``sort_keys``: every mapping is a Go ``map`` (``json.Marshal`` sorts map keys), except :class:`Struct`
      values; off, mappings keep the caller's order (a struct built in field order, or :func:`sorted_map`);
    - ``newline``: ``json.Encoder.Encode``, which appends ``\\n``; off, ``json.Marshal``;
    - ``pre_go122_escapes``: Go before 1.22 wrote ``\\b`` and ``\\f`` as ``\\u0008`` and ``\\u000c``.
    """
    text = _text(obj, sort_keys, newline, pre_go122_escapes)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # rare, so found by failing rather than by scanning every body
        return _SURROGATE_RE.sub("\ufffd", text).encode("utf-8")


def dumps_str(obj: Any, *, sort_keys: bool = False, newline: bool = False, pre_go122_escapes: bool = False) -> str:
    """:func:`dumps` as text (the template ``json`` function prints it)."""
    text = _text(obj, sort_keys, newline, pre_go122_escapes)
    return _SURROGATE_RE.sub("\ufffd", text) if _SURROGATE_RE.search(text) else text


def ndjson_line(obj: Any) -> bytes:
    """One NDJSON line: :func:`dumps` plus ``\\n``, as Ollama's stream writer frames chunks."""
    return dumps(obj) + b"\n"


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
