"""The wire contract (corral.api), values: keep_alive durations and options."""

from __future__ import annotations

import math
from typing import Any

import pytest

from corral.api import (
    BadRequest,
    ChatRequest,
    EmbeddingsRequest,
    GenerateRequest,
    format_go_duration,
    format_keep_alive,
    parse_body,
    parse_go_duration,
    parse_keep_alive,
    parse_keep_alive_env,
    validate_options,
)
from corral.api.options import DEFAULTS, DEPRECATED_OPTIONS, LOAD_OPTIONS, OPTION_TYPES, RUNTIME_OPTIONS, merge_options
from tests.test_api_models import bad, body

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
