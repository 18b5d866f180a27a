"""The wire contract (corral.api), responses: key order, omitempty, JSON bytes, golden keys, the official client."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ollama import _types as official

from corral.api import (
    GOLDEN_KEYS,
    ChatResponse,
    DebugInfo,
    EmbeddingsResponse,
    EmbedResponse,
    ErrorResponse,
    Float32,
    GenerateResponse,
    ListModelResponse,
    ListResponse,
    Logprob,
    Message,
    ModelDetails,
    ProcessModelResponse,
    ProcessResponse,
    ProgressResponse,
    ShowResponse,
    TokenLogprob,
    ToolCall,
    ToolCallFunction,
    VersionResponse,
    check_wire,
    dumps,
    format_time,
    go_quote,
    ndjson_line,
)
from corral.api.wire import format_go_float

GOLDEN = Path(__file__).parent / "golden" / "keys.json"
T0 = 1714566896123456789  # 2024-05-01T12:34:56.123456789Z


def roundtrip(obj: Any) -> Any:
    return json.loads(dumps(obj))


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
