"""The API's names for Go's encodings; the encoders themselves live in :mod:`corral.gocodec`.

Ollama answers through gin's ``c.JSON`` and ``json.Marshal``, so every response body is Go's encoder's
bytes: :func:`dumps` and :func:`ndjson_line` write them, :class:`Float32` / :class:`Float32Array` mark
``float32`` values (embeddings, GGUF float metadata), :func:`sorted_map` orders a Go map's keys,
:func:`go_quote` is ``%q`` (error messages), :func:`format_time` is ``time.Time``'s text. Key order is the
caller's: ``to_wire()`` builds dicts in Go struct-field order.
"""

from __future__ import annotations

from corral.gocodec import Float32, Float32Array, dumps, format_time, ndjson_line, sorted_map
from corral.gocodec import format_json_float as format_go_float
from corral.gocodec import quote as go_quote

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
