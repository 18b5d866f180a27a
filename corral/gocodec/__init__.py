"""Go's encodings, byte for byte: ``encoding/json``, ``strconv`` floats and quoting, ``time.Time`` text.

One module serves ``api`` (response bodies, error messages), ``store`` (blobs: their digests are sha256 of
these bytes) and ``prompt`` (the template ``json`` function, ``fmt``'s floats and ``%q``), so that the three
cannot drift apart. It imports only the standard library, so every package may import it.

Where Go itself has two behaviours, the caller picks the one of the Go call it mirrors (the arguments of
:func:`dumps`, :class:`Float32` values, :class:`Struct` field order); ``tests/test_gocodec.py`` checks the
bytes against Go's own when a Go toolchain is at hand.
"""

from __future__ import annotations

from corral.gocodec.floats import (
    Float32,
    Float32Array,
    UnsupportedValueError,
    format_float,
    format_json_float,
    to_float32,
)
from corral.gocodec.jsonenc import Struct, UnsupportedTypeError, dumps, dumps_str, ndjson_line, sorted_map
from corral.gocodec.quoting import quote, quote_rune, quote_time
from corral.gocodec.timefmt import format_time

__all__ = [
    "Float32",
    "Float32Array",
    "Struct",
    "UnsupportedTypeError",
    "UnsupportedValueError",
    "dumps",
    "dumps_str",
    "format_float",
    "format_json_float",
    "format_time",
    "ndjson_line",
    "quote",
    "quote_rune",
    "quote_time",
    "sorted_map",
    "to_float32",
]
