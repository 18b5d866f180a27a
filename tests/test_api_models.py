"""The wire contract (corral.api): request decoding, error texts, keep_alive, options, JSON bytes."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ollama import _types as official

import corral.api
from corral.api import (
    GOLDEN_KEYS,
    APIError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    CopyRequest,
    CreateRequest,
    DebugInfo,
    DeleteRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    Float32,
    GenerateRequest,
    GenerateResponse,
    ListModelResponse,
    ListResponse,
    Logprob,
    Message,
    ModelDetails,
    ProcessModelResponse,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    ShowRequest,
    ShowResponse,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallFunction,
    VersionResponse,
    check_wire,
    dumps,
    errors,
    format_go_duration,
    format_keep_alive,
    format_time,
    go_quote,
    ndjson_line,
    parse_body,
    parse_go_duration,
    parse_keep_alive,
    parse_keep_alive_env,
    validate_options,
)
from corral.api.options import DEFAULTS, DEPRECATED_OPTIONS, LOAD_OPTIONS, OPTION_TYPES, RUNTIME_OPTIONS, merge_options
from corral.api.wire import format_go_float

GOLDEN = Path(__file__).parent / "golden" / "keys.json"
T0 = 1714566896123456789  # 2024-05-01T12:34:56.123456789Z


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def bad(model_cls: type, raw: bytes) -> str:
    with pytest.raises(BadRequest) as info:
        parse_body(model_cls, raw)
    assert info.value.status == 400
    return info.value.message


def roundtrip(obj: Any) -> Any:
    return json.loads(dumps(obj))


# --- the façade -----------------------------------------------------------------------------


def test_all_matches_public_names() -> None:
    public = {n for n in dir(corral.api) if not n.startswith("_")}
    modules = {"chat", "duration", "embed", "errors", "generate", "golden", "messages", "models", "options"}
    modules |= {"parse", "wire", "annotations"}
    assert set(corral.api.__all__) == public - modules
    assert sorted(corral.api.__all__, key=str.lower) == sorted(set(corral.api.__all__), key=str.lower)


# --- parse_body: the listed messages --------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t "])
def test_empty_body_is_missing_request_body(raw: bytes) -> None:
    assert bad(ChatRequest, raw) == "missing request body"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "invalid JSON: line 1 column 2"),
        (b'{"model": }', "invalid JSON: line 1 column 11"),
        (b"{'model': 'x'}", "invalid JSON: line 1 column 2"),
        (b'{"model": "x"}\n{"model": "y"}', "invalid JSON: line 2 column 1"),
        (b'{"keep_alive": NaN}', "invalid JSON: line 1 column 16"),
        (b'{"x": 1,\n "y": -Infinity}', "invalid JSON: line 2 column 7"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b'"hello"', "request body must be a JSON object"),
        (b"42", "request body must be a JSON object"),
    ],
)
def test_malformed_bodies(raw: bytes, message: str) -> None:
    assert bad(GenerateRequest, raw) == message


def test_null_body_decodes_as_empty_object_like_go() -> None:
    req = parse_body(ChatRequest, b"null")
    assert req.model == "" and req.messages == []


def test_invalid_utf8_is_replaced_not_rejected() -> None:
    req = parse_body(GenerateRequest, b'{"model": "m", "prompt": "a\xffb"}')
    assert req.prompt == "a\ufffdb"


@pytest.mark.parametrize(
    ("model_cls", "payload", "message"),
    [
        (GenerateRequest, {"model": 1}, 'invalid value for field "model": expected string'),
        (GenerateRequest, {"prompt": ["x"]}, 'invalid value for field "prompt": expected string'),
        (GenerateRequest, {"stream": "true"}, 'invalid value for field "stream": expected boolean'),
        (GenerateRequest, {"raw": 1}, 'invalid value for field "raw": expected boolean'),
        (GenerateRequest, {"context": [1, "2"]}, 'invalid value for field "context[1]": expected integer'),
        (GenerateRequest, {"context": [1.5]}, 'invalid value for field "context[0]": expected integer'),
        (GenerateRequest, {"top_logprobs": 2.0}, 'invalid value for field "top_logprobs": expected integer'),
        (GenerateRequest, {"options": [1]}, 'invalid value for field "options": expected object'),
        (GenerateRequest, {"images": ["!!!"]}, 'invalid value for field "images[0]": expected base64 string'),
        (ChatRequest, {"messages": "hi"}, 'invalid value for field "messages": expected array'),
        (ChatRequest, {"messages": ["hi"]}, 'invalid value for field "messages[0]": expected object'),
        (ChatRequest, {"messages": [{"role": 1}]}, 'invalid value for field "messages[0].role": expected string'),
        (
            ChatRequest,
            {"messages": [{"role": "user"}, {"images": ["aGk=", "@@"]}]},
            'invalid value for field "messages[1].images[1]": expected base64 string',
        ),
        (
            ChatRequest,
            {"messages": [{"tool_calls": [{"function": {"arguments": "{}"}}]}]},
            'invalid value for field "messages[0].tool_calls[0].function.arguments": expected object',
        ),
        (
            ChatRequest,
            {"tools": [{"function": {"parameters": {"properties": {"a": {"type": 3}}}}}]},
            'invalid value for field "tools[0].function.parameters.properties.a.type": expected string or array',
        ),
        (ChatRequest, {"Model": 7}, 'invalid value for field "Model": expected string'),
        (ShowRequest, {"verbose": "yes"}, 'invalid value for field "verbose": expected boolean'),
        (CopyRequest, {"source": 1}, 'invalid value for field "source": expected string'),
        (CreateRequest, {"files": {"a.gguf": 1}}, 'invalid value for field "files.a.gguf": expected string'),
        (CreateRequest, {"license": 3}, 'invalid value for field "license": expected string or array'),
        (EmbeddingsRequest, {"prompt": 3}, 'invalid value for field "prompt": expected string'),
    ],
)
def test_wrong_types_name_the_field(model_cls: type, payload: dict[str, Any], message: str) -> None:
    assert bad(model_cls, body(payload)) == message


def test_no_pydantic_text_leaks() -> None:
    payloads: list[dict[str, Any]] = [{"model": 1}, {"messages": [{"content": {}}]}, {"keep_alive": []}, {"think": 1.5}]
    for payload in payloads:
        message = bad(ChatRequest, body(payload))
        for leak in ("Input should", "pydantic", "validation error", "Traceback", "type="):
            assert leak not in message


def test_defaults_follow_ollama() -> None:
    gen = parse_body(GenerateRequest, body({"model": "m"}))
    assert (gen.stream, gen.truncate, gen.shift, gen.raw, gen.keep_alive, gen.think, gen.format) == (
        True,
        True,
        True,
        False,
        None,
        None,
        None,
    )
    chat = parse_body(ChatRequest, body({"model": "m", "stream": False, "truncate": False, "shift": False}))
    assert (chat.stream, chat.truncate, chat.shift, chat.messages, chat.tools) == (False, False, False, [], None)


def test_null_fields_mean_absent_and_unknown_fields_are_ignored() -> None:
    req = parse_body(
        GenerateRequest,
        body({"model": "m", "stream": None, "prompt": None, "keep_alive": None, "think": None, "surprise": 1}),
    )
    assert (req.stream, req.prompt, req.keep_alive, req.think) == (True, "", None, None)


def test_keys_match_case_insensitively_like_go() -> None:
    req = parse_body(ChatRequest, body({"MODEL": "m", "Messages": [{"Role": "USER", "Content": "hi"}]}))
    assert req.model == "m"
    assert req.messages[0].role == "user" and req.messages[0].content == "hi"
    # an exact key is preferred, and the last of several spellings wins
    assert parse_body(GenerateRequest, b'{"Model": "a", "model": "b"}').model == "b"
    assert parse_body(GenerateRequest, b'{"model": "a", "MODEL": "b"}').model == "b"


def test_aliased_fields_by_wire_name_and_by_python_name() -> None:
    assert parse_body(GenerateRequest, body({"_debug_render_only": True})).debug_render_only is True
    assert GenerateRequest(model="m", debug_render_only=True).debug_render_only is True
    assert CreateRequest(model="m", from_="base").from_ == "base"
    assert parse_body(CreateRequest, body({"from": "base"})).from_ == "base"


def test_chat_message_fields() -> None:
    req = parse_body(
        ChatRequest,
        body(
            {
                "model": "m",
                "messages": [
                    {"role": "System", "content": "be brief"},
                    {"role": "user", "content": "look", "images": ["aGVsbG8=", "aGVs\nbG8="]},
                    {
                        "role": "assistant",
                        "content": "",
                        "thinking": "hmm",
                        "tool_calls": [
                            {"id": "call_1", "function": {"index": 0, "name": "f", "arguments": {"b": 1, "a": None}}}
                        ],
                    },
                    {"role": "tool", "content": "42", "tool_name": "f", "tool_call_id": "call_1"},
                    {"role": "user"},
                ],
            }
        ),
    )
    roles = [m.role for m in req.messages]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert req.messages[1].images == ["aGVsbG8=", "aGVs\nbG8="]
    call = req.messages[2].tool_calls[0]  # type: ignore[index]
    assert call.id == "call_1" and call.function.name == "f"
    assert list(call.function.arguments) == ["b", "a"] and call.function.arguments["a"] is None
    assert req.messages[3].tool_name == "f" and req.messages[3].tool_call_id == "call_1"
    assert req.messages[4].content == ""


def test_tools_decode_and_render_in_go_order() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "city": {"type": "string", "description": "The city"},
                    "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                    "days": {"description": "How many", "type": ["integer"]},
                },
                "required": ["city"],
                "$defs": {"x": {"type": "string"}},
            },
        },
    }
    req = parse_body(ChatRequest, body({"model": "m", "tools": [tool]}))
    assert req.tools is not None
    wire = req.tools[0].to_wire()
    # Go drops schema keys it does not model and writes its own field order
    assert wire == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather",
            "parameters": {
                "type": "object",
                "$defs": {"x": {"type": "string"}},
                "required": ["city"],
                "properties": {
                    "city": {"type": "string", "description": "The city"},
                    "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                    "days": {"type": "integer", "description": "How many"},
                },
            },
        },
    }
    assert list(wire["function"]["parameters"]) == ["type", "$defs", "required", "properties"]
    assert Tool().to_wire()["function"]["parameters"]["properties"] is None


def test_sdk_built_requests_decode() -> None:
    def add_two_numbers(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: The first number
            b: The second number
        """
        return a + b

    from ollama._utils import convert_function_to_tool

    sdk_tool = convert_function_to_tool(add_two_numbers)
    chat = official.ChatRequest(
        model="m",
        messages=[official.Message(role="user", content="hi", images=[official.Image(value=b"\x89PNG")])],
        tools=[sdk_tool],
        think="low",
        format="json",
        keep_alive="10m",
        options={"temperature": 0},
        stream=True,
    ).model_dump(exclude_none=True, by_alias=True)
    req = parse_body(ChatRequest, body(chat))
    assert req.think == "low" and req.format == "json" and req.keep_alive == 600.0
    assert req.tools is not None and req.tools[0].function.name == "add_two_numbers"
    gen = official.GenerateRequest(model="m", prompt="p", context=[1, 2], raw=True, format="").model_dump(
        exclude_none=True
    )
    greq = parse_body(GenerateRequest, body(gen))
    assert greq.context == [1, 2] and greq.raw and greq.format is None
    create = official.CreateRequest(model="new", from_="base", license=["a", "b"], parameters={"stop": ["x"]})
    creq = parse_body(CreateRequest, body(create.model_dump(exclude_none=True, by_alias=True)))
    assert creq.from_ == "base" and creq.licenses() == ["a", "b"] and creq.parameters == {"stop": ["x"]}


def test_deprecated_name_fills_model() -> None:
    assert parse_body(ShowRequest, body({"name": "a"})).model == "a"
    assert parse_body(ShowRequest, body({"name": "a", "model": "b"})).model == "b"
    assert parse_body(DeleteRequest, body({"name": "a"})).model == "a"
    assert parse_body(PullRequest, body({"name": "a", "insecure": True})).model == "a"
    create = parse_body(CreateRequest, body({"name": "x", "from": "y", "quantization": "q8_0"}))
    assert (create.model, create.from_, create.quantize) == ("x", "y", "q8_0")
    assert parse_body(CreateRequest, body({"quantize": "q4_K_M", "quantization": "q8_0"})).quantize == "q4_K_M"
    assert parse_body(CreateRequest, body({"license": "MIT"})).licenses() == ["MIT"]
    assert parse_body(CreateRequest, body({})).licenses() == []


# --- think, format, top_logprobs, embed input -------------------------------------------------


@pytest.mark.parametrize("value", [True, False, "low", "medium", "high", "max"])
def test_think_values(value: bool | str) -> None:
    assert parse_body(ChatRequest, body({"think": value})).think == value


def test_think_errors_are_ollamas_text() -> None:
    assert bad(ChatRequest, body({"think": "extreme"})) == (
        'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)'
    )
    assert bad(GenerateRequest, body({"think": "HIGH"})).startswith('invalid think value: "HIGH"')
    assert bad(GenerateRequest, body({"think": 1})) == "think must be a boolean or string"
    assert bad(GenerateRequest, body({"think": {}})) == "think must be a boolean or string"


@pytest.mark.parametrize(
    ("value", "decoded"),
    [("", None), ("json", "json"), ({"type": "object"}, {"type": "object"}), ({}, {})],
)
def test_format_values(value: Any, decoded: Any) -> None:
    assert parse_body(GenerateRequest, body({"format": value})).format == decoded


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("yaml", '"\\"yaml\\""'), ("JSON", '"\\"JSON\\""'), (3, '"3"'), ([1, 2], '"[1,2]"'), (True, '"true"')],
)
def test_format_errors(value: Any, quoted: str) -> None:
    message = bad(ChatRequest, body({"format": value}))
    assert message == f'invalid format: {quoted}; expected "json" or a valid JSON Schema object'


@pytest.mark.parametrize("value", [-1, 21, 100])
def test_top_logprobs_range(value: int) -> None:
    assert bad(ChatRequest, body({"top_logprobs": value})) == "top_logprobs must be between 0 and 20"
    assert parse_body(ChatRequest, body({"top_logprobs": 20, "logprobs": True})).top_logprobs == 20


def test_type_errors_come_before_post_decode_checks() -> None:
    assert bad(ChatRequest, body({"top_logprobs": 99, "model": 1})) == (
        'invalid value for field "model": expected string'
    )


def test_embed_input() -> None:
    assert parse_body(EmbedRequest, body({"input": "a"})).inputs() == ["a"]
    assert parse_body(EmbedRequest, body({"input": ["a", ""]})).inputs() == ["a", ""]
    assert parse_body(EmbedRequest, body({"input": ""})).inputs() == []
    assert parse_body(EmbedRequest, body({"input": []})).inputs() == []
    assert parse_body(EmbedRequest, body({})).inputs() == []
    req = parse_body(EmbedRequest, body({"input": "a", "truncate": False, "dimensions": 64, "keep_alive": 0}))
    assert (req.truncate, req.dimensions, req.keep_alive) == (False, 64, 0.0)
    for value in (3, [1], ["a", None], {"a": 1}, True):
        assert bad(EmbedRequest, body({"input": value})) == "invalid input type"


# --- errors: the catalogue ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (errors.missing_body(), 400, "missing request body"),
        (errors.model_required(), 400, "model is required"),
        (errors.invalid_model_name(), 400, "invalid model name"),
        (errors.model_not_found("llama3:8b"), 404, "model 'llama3:8b' not found"),
        (errors.model_not_found_pull("x"), 404, 'model "x" not found, try pulling it first'),
        (errors.model_not_found_copy("x"), 404, 'model "x" not found'),
        (errors.source_invalid("a b"), 400, 'source "a b" is invalid'),
        (errors.name_invalid("a/b/c/d"), 400, 'name "a/b/c/d" is invalid'),
        (errors.does_not_support("gemma3", "thinking"), 400, '"gemma3" does not support thinking'),
        (errors.does_not_support("nomic", "chat"), 400, '"nomic" does not support chat'),
        (
            errors.does_not_support_full("registry.ollama.ai/library/x:latest", "tools"),
            400,
            "registry.ollama.ai/library/x:latest does not support tools",
        ),
        (errors.raw_mode_conflict(), 400, "raw mode does not support template, system, or context"),
        (errors.top_logprobs_range(), 400, "top_logprobs must be between 0 and 20"),
        (
            errors.context_exceeded(),
            400,
            "the prompt is longer than the context length currently available to the model; shorten the "
            "prompt, adjust the context length in settings, or use a model with a longer context length",
        ),
        (errors.input_too_long(), 400, "the input length exceeds the context length"),
        (errors.invalid_input_type(), 400, "invalid input type"),
        (errors.invalid_digest(), 400, "invalid digest format"),
        (errors.digest_mismatch("sha256:a", "sha256:b"), 400, 'digest mismatch, expected "sha256:a", got "sha256:b"'),
        (errors.create_missing_source(), 400, "neither 'from' or 'files' was specified"),
        (errors.file_path_not_relative(), 400, "file path must be relative"),
        (errors.template_error("unexpected EOF"), 400, "template error: unexpected EOF"),
        (errors.pull_manifest_not_found(), 500, "pull model manifest: file does not exist"),
        (errors.RequestCanceled(), 499, "request canceled"),
        (errors.ServerBusy(), 503, "server busy, please try again.  maximum pending requests exceeded"),
        (errors.Forbidden(""), 403, ""),
        (errors.InternalError("boom"), 500, "boom"),
        (errors.NotFound("nope"), 404, "nope"),
        (APIError("teapot", 418), 418, "teapot"),
    ],
)
def test_error_catalogue(error: APIError, status: int, text: str) -> None:
    assert error.status == status
    assert error.message == text == str(error)
    assert error.to_wire() == {"error": text}
    assert dumps(error) == json.dumps({"error": text}, ensure_ascii=False, separators=(",", ":")).encode()


def test_quoted_names_escape_like_go() -> None:
    assert errors.does_not_support('we"ird', "chat").message == '"we\\"ird" does not support chat'
    assert errors.model_not_found("we'ird").message == "model 'we'ird' not found"


def test_error_hierarchy() -> None:
    for cls in (errors.BadRequest, errors.NotFound, errors.Forbidden, errors.RequestCanceled):
        assert issubclass(cls, APIError)
    assert issubclass(errors.ServerBusy, APIError) and issubclass(errors.InternalError, APIError)


# --- keep_alive -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0.0),
        (0.0, 0.0),
        (30, 30.0),
        (1.5, 1.5),
        (-1, math.inf),
        (-0.5, math.inf),
        (1e30, math.inf),
        ("0", 0.0),
        ("-0", 0.0),
        ("+0", 0.0),
        ("0s", 0.0),
        ("5m", 300.0),
        ("10m", 600.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        (".5h", 1800.0),
        ("5.s", 5.0),
        ("1h1m1s1ms1us1ns", 3661.001001001),
        ("2µs", 0.000002),
        ("2μs", 0.000002),
        ("-1m", math.inf),
        ("-1h", math.inf),
        ("+5m", 300.0),
    ],
)
def test_keep_alive_table(value: Any, seconds: float | None) -> None:
    assert parse_keep_alive(value) == (pytest.approx(seconds) if seconds not in (None, math.inf) else seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", 'time: missing unit in duration "-1"'),
        ("5", 'time: missing unit in duration "5"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("-", 'time: invalid duration "-"'),
        (".", 'time: invalid duration "."'),
        ("5m ", 'time: unknown unit "m " in duration "5m "'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        ("5 m", 'time: unknown unit " m" in duration "5 m"'),
        ("1é", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        (True, "Unsupported type: 'bool'"),
        ([], "Unsupported type: '[]interface {}'"),
        ({}, "Unsupported type: 'map[string]interface {}'"),
    ],
)
def test_keep_alive_errors(value: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_keep_alive(value)
    assert info.value.message == message
    assert bad(ChatRequest, body({"model": "m", "keep_alive": value})) == message


def test_keep_alive_in_requests() -> None:
    assert parse_body(ChatRequest, body({"keep_alive": "-1m"})).keep_alive == math.inf
    assert parse_body(GenerateRequest, body({"keep_alive": 0})).keep_alive == 0.0
    assert parse_body(EmbeddingsRequest, body({"keep_alive": "1h"})).keep_alive == 3600.0


def test_go_duration_edges() -> None:
    assert parse_go_duration("9223372036854775807ns") == 2**63 - 1
    assert parse_go_duration("-9223372036854775808ns") == -(2**63)
    assert parse_go_duration("2562047h47m16.854775807s") == 2**63 - 1
    assert parse_go_duration("1.0000000001s") == 1_000_000_000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (None, 300.0),
        ("", 300.0),
        ("   ", 300.0),
        ("10m", 600.0),
        ("-1", math.inf),
        ("-1m", math.inf),
        ("3600", 3600.0),
        ("+60", 60.0),
        ("0", 0.0),
        ("'1h'", 3600.0),
        (' "2h" ', 7200.0),
        ("nonsense", 300.0),
        ("1.5", 300.0),
    ],
)
def test_keep_alive_env(text: str | None, seconds: float) -> None:
    assert parse_keep_alive_env(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (1.5, "1.5s"),
        (0.3, "300ms"),
        (0.0000015, "1.5µs"),
        (0.000000001, "1ns"),
        (60, "1m0s"),
        (300, "5m0s"),
        (3600, "1h0m0s"),
        (5400, "1h30m0s"),
        (90061.5, "25h1m1.5s"),
        (-60, "-1m0s"),
        (math.inf, "2562047h47m16.854775807s"),
    ],
)
def test_format_go_duration(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


def test_format_keep_alive() -> None:
    assert format_keep_alive(None) is None
    assert format_keep_alive(math.inf) == -1
    assert format_keep_alive(-5) == -1
    assert format_keep_alive(300) == "5m0s"
    assert format_keep_alive(0) == "0s"
    # what we write, Ollama (and we) read back to the same value
    for seconds in (0.0, 1.5, 300.0, 5400.0, math.inf):
        assert parse_keep_alive(format_keep_alive(seconds)) == seconds


# --- options --------------------------------------------------------------------------------


def test_option_sets() -> None:
    assert set(OPTION_TYPES) == LOAD_OPTIONS | RUNTIME_OPTIONS
    assert not LOAD_OPTIONS & RUNTIME_OPTIONS
    assert {"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread"} <= LOAD_OPTIONS
    assert {"temperature", "top_k", "top_p", "min_p", "stop", "seed", "num_predict", "num_keep"} <= RUNTIME_OPTIONS
    assert not DEPRECATED_OPTIONS & set(OPTION_TYPES)
    assert set(DEFAULTS) <= set(OPTION_TYPES)
    assert DEFAULTS["temperature"] == 0.8 and DEFAULTS["top_k"] == 40 and DEFAULTS["num_predict"] == -1


def test_validate_options_coerces_like_from_map() -> None:
    options, ignored = validate_options(
        {
            "num_ctx": 4096.0,
            "num_predict": 12.9,
            "seed": -3.7,
            "temperature": 0,
            "top_p": 0.5,
            "use_mmap": False,
            "stop": ["\n", "</s>"],
            "top_k": None,
            "mirostat": 2,
            "penalize_newline": True,
            "made_up": "x",
        }
    )
    assert options == {
        "num_ctx": 4096,
        "num_predict": 12,
        "seed": -3,
        "temperature": 0.0,
        "top_p": 0.5,
        "use_mmap": False,
        "stop": ["\n", "</s>"],
    }
    assert isinstance(options["num_ctx"], int) and isinstance(options["temperature"], float)
    assert ignored == ["mirostat", "penalize_newline", "made_up"]
    assert validate_options(None) == ({}, [])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"num_ctx": "4096"}, 'option "num_ctx" must be of type integer'),
        ({"num_ctx": True}, 'option "num_ctx" must be of type integer'),
        ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
        ({"temperature": False}, 'option "temperature" must be of type float32'),
        ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
        ({"stop": "\n"}, 'option "stop" must be of type array'),
        ({"stop": ["a", 1]}, 'option "stop" must be of an array of strings'),
    ],
)
def test_validate_options_errors_are_400(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_options(raw)
    assert info.value.status == 400 and info.value.message == message


def test_merge_options_precedence() -> None:
    merged = merge_options(DEFAULTS, {"temperature": 0.2, "stop": ["x"]}, {"temperature": 1.0}, None)
    assert merged["temperature"] == 1.0 and merged["stop"] == ["x"] and merged["top_k"] == 40


# --- responses: omitempty, order, time, floats ------------------------------------------------


def test_generate_chunk_omits_empty_fields() -> None:
    wire = GenerateResponse(model="m", created_at=T0, response="Hel").to_wire()
    assert wire == {"model": "m", "created_at": "2024-05-01T12:34:56.123456789Z", "response": "Hel", "done": False}
    assert check_wire("generate.chunk", wire) == []


def test_generate_final_in_go_order() -> None:
    wire = GenerateResponse(
        model="m",
        created_at=T0,
        response="",
        thinking="because",
        done=True,
        done_reason="stop",
        context=[1, 2, 3],
        total_duration=10,
        load_duration=0,
        prompt_eval_count=3,
        prompt_eval_duration=4,
        eval_count=5,
        eval_duration=6,
        logprobs=[Logprob(token="a", logprob=-0.5, top_logprobs=[TokenLogprob(token="b", logprob=-1.0)])],
    ).to_wire()
    assert list(wire) == [
        "model",
        "created_at",
        "response",
        "thinking",
        "done",
        "done_reason",
        "context",
        "total_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
        "logprobs",
    ]
    assert wire["logprobs"] == [{"token": "a", "logprob": -0.5, "top_logprobs": [{"token": "b", "logprob": -1.0}]}]
    assert check_wire("generate.final", wire) == []
    # the load answer: empty response kept, context omitted, no metrics
    load = GenerateResponse(model="m", created_at=T0, done=True, done_reason="load", context=[]).to_wire()
    assert list(load) == ["model", "created_at", "response", "done", "done_reason"]


def test_debug_info() -> None:
    wire = GenerateResponse(model="m", created_at=T0, done=True, debug_info=DebugInfo(rendered_template="x")).to_wire()
    assert wire["_debug_info"] == {"rendered_template": "x"}
    wire = ChatResponse(model="m", created_at=T0, debug_info=DebugInfo(rendered_template="y", image_count=2)).to_wire()
    assert wire["_debug_info"] == {"rendered_template": "y", "image_count": 2}


def test_chat_chunks() -> None:
    chunk = ChatResponse(model="m", created_at=T0, message=Message(role="assistant", content="Hi")).to_wire()
    assert chunk == {
        "model": "m",
        "created_at": "2024-05-01T12:34:56.123456789Z",
        "message": {"role": "assistant", "content": "Hi"},
        "done": False,
    }
    thinking = ChatResponse(model="m", message=Message(role="assistant", thinking="hmm")).to_wire()
    assert thinking["message"] == {"role": "assistant", "content": "", "thinking": "hmm"}
    call = ToolCall(id="call_ab12cd34", function=ToolCallFunction(name="f", arguments={"z": 1, "a": [1]}))
    final = ChatResponse(
        model="m",
        created_at=T0,
        message=Message(role="assistant", tool_calls=[call]),
        done=True,
        done_reason="stop",
        total_duration=7,
        eval_count=2,
    ).to_wire()
    assert final["message"]["tool_calls"] == [
        {"id": "call_ab12cd34", "function": {"index": 0, "name": "f", "arguments": {"z": 1, "a": [1]}}}
    ]
    assert list(final) == ["model", "created_at", "message", "done", "done_reason", "total_duration", "eval_count"]
    for name, wire in (("chat.chunk", chunk), ("chat.final", final), ("chat.message", final["message"])):
        assert check_wire(name, wire) == []
    assert check_wire("tool_call", final["message"]["tool_calls"][0]) == []
    assert check_wire("tool_call.function", final["message"]["tool_calls"][0]["function"]) == []
    unload = ChatResponse(model="m", done=True, done_reason="unload").to_wire()
    assert unload["message"] == {"role": "assistant", "content": ""}


def test_embed_responses() -> None:
    wire = EmbedResponse(model="e", embeddings=[[0.1, -0.2, 1.0], []], total_duration=5).to_wire()
    assert list(wire) == ["model", "embeddings", "total_duration"]
    assert dumps(wire) == b'{"model":"e","embeddings":[[0.1,-0.2,1],[]],"total_duration":5}'
    assert dumps(EmbedResponse(model="e")) == b'{"model":"e","embeddings":[]}'
    float32_of_01 = 0.10000000149011612  # what a runner hands over
    assert dumps(EmbedResponse(model="e", embeddings=[[float32_of_01]])) == b'{"model":"e","embeddings":[[0.1]]}'
    # the legacy endpoint holds float64: Ollama prints every digit
    assert dumps(EmbeddingsResponse(embedding=[float32_of_01, 2.0])) == b'{"embedding":[0.10000000149011612,2]}'
    assert dumps(EmbeddingsResponse()) == b'{"embedding":[]}'


def _details() -> ModelDetails:
    return ModelDetails(
        format="gguf", family="llama", families=["llama"], parameter_size="135M", quantization_level="Q4_1"
    )


def test_model_lists() -> None:
    entry = ListModelResponse(
        name="smollm2:135m", model="smollm2:135m", modified_at=T0, size=98, digest="ab" * 32, details=_details()
    )
    tags = ListResponse(models=[entry]).to_wire()
    assert check_wire("tags", tags) == [] and check_wire("tags.model", tags["models"][0]) == []
    assert check_wire("details", tags["models"][0]["details"]) == []
    assert ListResponse().to_wire() == {"models": []}
    assert ModelDetails().to_wire()["families"] is None
    details = ModelDetails(context_length=8192, embedding_length=576).to_wire()
    assert list(details)[-2:] == ["context_length", "embedding_length"]
    ps = ProcessResponse(
        models=[
            ProcessModelResponse(
                name="m",
                model="m",
                size=10,
                digest="d",
                details=_details(),
                expires_at=T0,
                size_vram=0,
                context_length=4096,
            )
        ]
    ).to_wire()
    assert ps["models"][0]["size_vram"] == 0 and ps["models"][0]["context_length"] == 4096
    assert check_wire("ps", ps) == [] and check_wire("ps.model", ps["models"][0]) == []


def test_show_always_has_model_info_sorted() -> None:
    bare = ShowResponse(modified_at=T0).to_wire()
    assert bare == {
        "details": ModelDetails().to_wire(),
        "model_info": None,
        "modified_at": "2024-05-01T12:34:56.123456789Z",
    }
    full = ShowResponse(
        license="MIT",
        modelfile="# Modelfile",
        parameters='stop                           "<|im_end|>"',
        template="{{ .Prompt }}",
        system="sys",
        details=_details(),
        messages=[Message(role="user", content="hi")],
        model_info={
            "llama.context_length": 8192,
            "general.architecture": "llama",
            "llama.rope.freq_base": Float32(1e5),
        },
        capabilities=["completion", "tools"],
        modified_at=T0,
    ).to_wire()
    assert list(full["model_info"]) == ["general.architecture", "llama.context_length", "llama.rope.freq_base"]
    assert b'"llama.rope.freq_base":100000' in dumps(full)
    assert check_wire("show", full) == [] and check_wire("show", bare) == []


def test_small_responses() -> None:
    assert ProgressResponse(status="success").to_wire() == {"status": "success"}
    progress = ProgressResponse(status="pulling abc", digest="sha256:abc", total=10, completed=0).to_wire()
    assert progress == {"status": "pulling abc", "digest": "sha256:abc", "total": 10}
    assert VersionResponse(version="0.32.0").to_wire() == {"version": "0.32.0"}
    assert ErrorResponse(error="x").to_wire() == {"error": "x"}
    for name, wire in (("progress", progress), ("version", {"version": "1"}), ("error", {"error": "x"})):
        assert check_wire(name, wire) == []


def test_responses_reject_unknown_fields() -> None:
    with pytest.raises(ValueError):
        GenerateResponse(model="m", reponse="typo")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (T0, "2024-05-01T12:34:56.123456789Z"),
        (1714566896_000000000, "2024-05-01T12:34:56Z"),
        (1714566896_120000000, "2024-05-01T12:34:56.12Z"),
        (0, "1970-01-01T00:00:00Z"),
        (datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=timezone.utc), "2024-05-01T12:34:56.123456Z"),
        (datetime(2024, 5, 1, 12, 34, 56), "2024-05-01T12:34:56Z"),
        (datetime(2024, 5, 1, 5, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-7))), "2024-05-01T05:00:00.5-07:00"),
        (datetime(2024, 5, 1, 5, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))), "2024-05-01T05:00:00+05:30"),
    ],
)
def test_format_time_is_rfc3339nano(value: datetime | int, text: str) -> None:
    assert format_time(value) == text


def test_created_at_defaults_to_now() -> None:
    stamp = GenerateResponse(model="m").to_wire()["created_at"]
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z", stamp)
    assert match is not None and not (match.group(2) or "").endswith("0")
    parsed = datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 5


# --- dumps: Go's bytes ----------------------------------------------------------------------


def test_dumps_escapes_html_like_go() -> None:
    assert dumps({"a": "<b> & </b>"}) == b'{"a":"\\u003cb\\u003e \\u0026 \\u003c/b\\u003e"}'
    assert dumps("\u2028\u2029") == b'"\\u2028\\u2029"'
    assert dumps("héllo 世界 🙂") == '"héllo 世界 🙂"'.encode()
    assert dumps('tab\tnl\ncr\rq"bs\\\x01\x7f') == b'"tab\\tnl\\ncr\\rq\\"bs\\\\\\u0001\x7f"'
    assert dumps("\ud800x") == '"\ufffdx"'.encode()
    assert ndjson_line({"done": True}) == b'{"done":true}\n'


@pytest.mark.parametrize(
    ("value", "bits", "text"),
    [
        (1.0, 64, "1"),
        (-2.0, 64, "-2"),
        (0.0, 64, "0"),
        (-0.0, 64, "-0"),
        (0.1, 64, "0.1"),
        (1e-5, 64, "0.00001"),
        (1e-6, 64, "0.000001"),
        (1e-7, 64, "1e-7"),
        (1.5e-10, 64, "1.5e-10"),
        (1e20, 64, "100000000000000000000"),
        (1e21, 64, "1e+21"),
        (123456.789, 64, "123456.789"),
        (0.1, 32, "0.1"),
        (0.10000000149011612, 32, "0.1"),
        (1e-6, 32, "0.000001"),
        (9e-7, 32, "9e-7"),
        (16777217.0, 32, "16777216"),
        (3.4028234663852886e38, 32, "3.4028235e+38"),
    ],
)
def test_go_floats(value: float, bits: int, text: str) -> None:
    assert format_go_float(value, bits) == text


def test_dumps_rejects_nan() -> None:
    with pytest.raises(ValueError):
        dumps({"x": math.nan})


def test_go_quote() -> None:
    assert go_quote("abc") == '"abc"'
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("a\nb\tc\x00") == '"a\\nb\\tc\\x00"'
    assert go_quote("héllo") == '"héllo"'
    assert go_quote("\u00a0") == '"\\u00a0"'


# --- golden keys and the official client ----------------------------------------------------


def test_golden_keys_match_checked_in_file() -> None:
    assert json.loads(GOLDEN.read_text()) == GOLDEN_KEYS
    expected = {"generate.chunk", "generate.final", "chat.chunk", "chat.final", "tags", "show", "ps", "version"}
    expected |= {"embed", "embeddings", "progress", "error"}
    assert expected <= set(GOLDEN_KEYS)
    for name, keys in GOLDEN_KEYS.items():
        assert not set(keys["required"]) & set(keys["optional"]), name


def test_check_wire_reports_problems() -> None:
    assert check_wire("version", {}) == ["version: missing 'version'"]
    assert check_wire("error", {"error": "x", "extra": 1}) == ["error: unexpected 'extra'"]
    problems = check_wire("generate.chunk", {"done": False, "model": "m", "created_at": "t", "response": ""})
    assert problems and "order" in problems[0]


def test_official_client_types_parse_our_wire() -> None:
    gen = roundtrip(
        GenerateResponse(model="m", response="hi", thinking="t", done=True, done_reason="stop", context=[1])
    )
    parsed_gen = official.GenerateResponse(**gen)
    assert parsed_gen.response == "hi" and parsed_gen.context == [1] and parsed_gen.done_reason == "stop"

    call = ToolCall(function=ToolCallFunction(name="f", arguments={"x": 1}))
    chat = roundtrip(
        ChatResponse(model="m", message=Message(role="assistant", content="c", tool_calls=[call]), done=True)
    )
    parsed_chat = official.ChatResponse(**chat)
    assert parsed_chat.message.tool_calls is not None
    assert parsed_chat.message.tool_calls[0].function.arguments == {"x": 1}
    logprobs = [Logprob(token="a", logprob=-0.1, top_logprobs=[TokenLogprob(token="b", logprob=-2.0)])]
    assert official.ChatResponse(**roundtrip(ChatResponse(model="m", logprobs=logprobs))).logprobs is not None

    assert official.EmbedResponse(**roundtrip(EmbedResponse(model="e", embeddings=[[0.5]]))).embeddings == [[0.5]]
    assert official.EmbeddingsResponse(**roundtrip(EmbeddingsResponse(embedding=[0.5]))).embedding == [0.5]

    tags = roundtrip(
        ListResponse(
            models=[ListModelResponse(name="a:b", model="a:b", modified_at=T0, size=1, digest="d", details=_details())]
        )
    )
    listed = official.ListResponse(**tags).models[0]
    assert listed.model == "a:b" and listed.details is not None and listed.details.family == "llama"
    assert listed.modified_at is not None and listed.modified_at.year == 2024

    show = official.ShowResponse(**roundtrip(ShowResponse(modified_at=T0, capabilities=["completion"])))
    assert show.modelinfo is None and show.capabilities == ["completion"]

    ps = roundtrip(
        ProcessResponse(
            models=[ProcessModelResponse(name="m", model="m", size=2, digest="d", expires_at=T0, context_length=8)]
        )
    )
    assert official.ProcessResponse(**ps).models[0].context_length == 8

    progress = official.ProgressResponse(**roundtrip(ProgressResponse(status="pulling", total=3, completed=1)))
    assert (progress.status, progress.total, progress.completed) == ("pulling", 3, 1)
