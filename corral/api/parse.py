"""Request bodies to models, with short, listed 400 messages.

``parse_body(ChatRequest, body)`` returns the model or raises :class:`BadRequest`. Ollama answers
malformed bodies with Go decoder text (``json: cannot unmarshal number into Go struct field
ChatRequest.model of type string``); corral answers with its own short messages instead, and
never with pydantic's or Python's text. The complete set of corral's own 400 messages:

===============================================  ==============================================
message                                          when
===============================================  ==============================================
``missing request body``                          empty or whitespace-only body (Ollama's text)
``invalid JSON: line L column C``                 the body is not valid JSON
``request body must be a JSON object``            valid JSON, but an array, string or number
``invalid value for field "F": expected T``       a field of the wrong type; ``F`` is the path
                                                  (``messages[0].content``), ``T`` one of
                                                  ``string``, ``integer``, ``number``,
                                                  ``boolean``, ``array``, ``object``,
                                                  ``base64 string``, ``valid value``, or
                                                  several joined by ``or``
===============================================  ==============================================

Field rules with Ollama's own texts pass through verbatim: ``think`` (``invalid think value:
"x" (must be "high", "medium", "low", "max", true, or false)``, ``think must be a boolean or
string``), ``format`` (``invalid format: "\\"yaml\\""; expected "json" or a valid JSON Schema
object``), ``keep_alive`` (``time: missing unit in duration "-1"``, ``time: invalid duration
"x"``, ``time: unknown unit "d" in duration "1d"``, ``Unsupported type: 'bool'``),
``top_logprobs must be between 0 and 20`` and embed's ``invalid input type``. Option type errors
(``option "num_ctx" must be of type integer``) come from ``options.validate_options``.

A JSON ``null`` body decodes as ``{}``, as Go's decoder does (the route then says ``model is
required``); a body that is not UTF-8 is decoded with replacement characters, as Go does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from corral.api._base import API_ERROR_TYPE
from corral.api.errors import BadRequest, missing_body
from corral.api.messages import EXPECTED_TYPE_ERROR

__all__ = ["NOT_AN_OBJECT", "parse_body", "parse_json"]

NOT_AN_OBJECT = "request body must be a JSON object"

M = TypeVar("M", bound=BaseModel)

# pydantic error type -> the JSON type the client should have sent
_EXPECTED = {
    "string_type": "string",
    "int_type": "integer",
    "int_from_float": "integer",
    "int_parsing": "integer",
    "float_type": "number",
    "bool_type": "boolean",
    "list_type": "array",
    "tuple_type": "array",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


def parse_json(body: bytes) -> Any:
    """Decode a request body to Python, raising :class:`BadRequest` with a listed message."""
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        raise missing_body()
    try:
        # The first JSON value, whatever follows it: Go's json.Decoder, which Ollama's handlers read
        # bodies with, stops there too.
        start = len(text) - len(text.lstrip(" \t\n\r"))
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: line {exc.lineno} column {exc.colno}") from None
    except _NonStandardConstant as exc:
        # Python accepts NaN/Infinity, JSON (and Go) do not; report where the token first appears
        before = text[: max(text.find(exc.token), 0)]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise BadRequest(f"invalid JSON: line {line} column {column}") from None
    except RecursionError:
        raise BadRequest("invalid JSON: line 1 column 1") from None
    if _SURROGATE_ESCAPE.search(text):
        value = _without_lone_surrogates(value)
    return value


# A \uD800-\uDFFF escape: json.loads keeps one without its pair as a lone surrogate, which no UTF-8
# encoder (the tokenizer, the store, the response) accepts; Go's decoder makes it U+FFFD.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


class _NonStandardConstant(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _reject_constant(token: str) -> Any:
    raise _NonStandardConstant(token)


def _finite_float(token: str) -> float:
    """A JSON number as Go decodes it into a float64: one past its range (``1e999``) is an error, where
    Python would read infinity (and a schema or an option would carry it on)."""
    value = float(token)
    if math.isinf(value):
        raise _NonStandardConstant(token)
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_body(model_cls: type[M], body: bytes) -> M:
    """Decode and validate a request body as ``model_cls`` (module docstring for the messages)."""
    data = parse_json(body)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest(NOT_AN_OBJECT)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_message(exc, data)) from None


def _data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """Follow ``loc`` through the request data; stop at the first step that is not in it.

    pydantic adds union-member tags (``'str'``, ``'list[str]'``) to locations; walking the data
    keeps only the steps the client wrote, so the path reads ``tools[0].function.name``.
    """
    parts: list[str] = []
    steps: list[int | str] = []
    node = data
    for step in loc:
        key = _match_key(node, step) if isinstance(node, dict) and isinstance(step, str) else None
        if key is not None:
            parts.append(("." if parts else "") + key)
            node = node[key]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            parts.append(f"[{step}]")
            node = node[step]
        else:
            break
        steps.append(step)
    return "".join(parts), tuple(steps)


def _match_key(node: dict[str, Any], step: str) -> str | None:
    """The client's spelling of a field: exact, else the last case-insensitive match (Go's rule)."""
    if step in node:
        return step
    matches = [k for k in node if isinstance(k, str) and k.lower() == step.lower()]
    return matches[-1] if matches else None


def _message(exc: ValidationError, data: dict[str, Any]) -> str:
    errors = exc.errors(include_url=False)
    # Ollama's decoder stops at the first type error; checks like top_logprobs come after decoding
    typed = [e for e in errors if e["type"] != API_ERROR_TYPE]
    first = typed[0] if typed else errors[0]
    if first["type"] == API_ERROR_TYPE:
        return str(first["ctx"]["message"])
    path, steps = _data_path(data, tuple(first["loc"]))
    expected: list[str] = []
    for error in typed:
        if _data_path(data, tuple(error["loc"]))[1] != steps:
            continue
        if error["type"] == EXPECTED_TYPE_ERROR:
            kind = str(error["ctx"]["expected"])
        else:
            kind = _EXPECTED.get(error["type"], "valid value")
        if kind not in expected:
            expected.append(kind)
    if not path:  # cannot happen for a dict body; keep the message in the listed set anyway
        return NOT_AN_OBJECT
    return f'invalid value for field "{path}": expected {" or ".join(expected)}'
