"""The wire contract (corral.api): the façade, request decoding, error texts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ollama import _types as official

import corral.api
from corral.api import (
    APIError,
    BadRequest,
    ChatRequest,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    PullRequest,
    ShowRequest,
    Tool,
    dumps,
    errors,
    parse_body,
)


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def bad(model_cls: type, raw: bytes) -> str:
    with pytest.raises(BadRequest) as info:
        parse_body(model_cls, raw)
    assert info.value.status == 400
    return info.value.message


# --- the façade -----------------------------------------------------------------------------


def test_all_matches_public_names() -> None:
    public = {n for n in dir(corral.api) if not n.startswith("_")}
    modules = {"chat", "duration", "embed", "errors", "generate", "golden", "messages", "models", "options"}
    modules |= {"parse", "tokens", "wire", "annotations", "openai", "anthropic"}
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
        (b'{"keep_alive": NaN}', "invalid JSON: line 1 column 16"),
        (b'{"x": 1,\n "y": -Infinity}', "invalid JSON: line 2 column 7"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b'"hello"', "request body must be a JSON object"),
        (b"42", "request body must be a JSON object"),
    ],
)
def test_malformed_bodies(raw: bytes, message: str) -> None:
    assert bad(GenerateRequest, raw) == message


def test_only_the_first_json_value_is_read_like_go() -> None:
    assert parse_body(ChatRequest, b'{"model": "x"}\n{"model": "y"}').model == "x"
    assert parse_body(ChatRequest, b' {"model": "x"} and then some').model == "x"


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
