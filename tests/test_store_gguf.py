from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from corral.store import gguf as gguf_mod
from corral.store.bundled import BUNDLED
from corral.store.errors import GGUFError
from corral.store.gguf import GGUFArray, ValueType, float32_shortest, human_number, read_metadata
from corral.store.testing import default_cache_dir, write_gguf

gguf = pytest.importorskip("gguf")  # the reference reader, allowed in tests only


def _bundled_path(name: str) -> Path:
    spec = BUNDLED[name]
    if not spec.is_installed():
        pytest.skip(f"{spec.distribution} is not installed")
    path, _digest = spec.locate(default_cache_dir())
    return path


@pytest.fixture(scope="module", params=["smollm2:135m", "gemma3:270m"])
def bundled_gguf(request: pytest.FixtureRequest) -> Path:
    return _bundled_path(request.param)


@pytest.fixture(scope="module")
def reference(bundled_gguf: Path) -> Any:
    # GGUFReader builds a numpy view per vocabulary entry: seconds for Gemma's 262k tokens, so one
    # reader per model serves every comparison.
    return gguf.GGUFReader(bundled_gguf)


@pytest.mark.slow
def test_kv_matches_reference_reader(bundled_gguf: Path, reference: Any) -> None:
    ours = read_metadata(bundled_gguf)
    ref_fields = {k: f for k, f in reference.fields.items() if not k.startswith("GGUF.")}
    assert list(ours.kv) == list(ref_fields)
    for key, field in ref_fields.items():
        expected = field.contents()
        got = ours.get(key)
        assert ours.kv_types[key] == int(field.types[0]), key
        if isinstance(expected, list):
            assert len(got) == len(expected), key
            # float32 arrays compare exactly: both sides widen the same float32 values.
            assert got == [type(g)(e) for g, e in zip(got, expected, strict=True)], key
        else:
            assert got == expected, key


@pytest.mark.slow
def test_tensors_match_reference_reader(bundled_gguf: Path, reference: Any) -> None:
    ours = read_metadata(bundled_gguf)
    assert len(ours.tensor_infos) == len(reference.tensors)
    for mine, theirs in zip(ours.tensor_infos, reference.tensors, strict=True):
        assert mine.name == theirs.name
        assert list(mine.shape) == [int(d) for d in theirs.shape]
        assert mine.type == theirs.tensor_type.name
        assert mine.n_elements == int(theirs.n_elements)
        assert ours.data_offset + mine.offset == int(theirs.data_offset)
    assert ours.parameter_count == sum(int(t.n_elements) for t in reference.tensors)


def test_header_parse_is_fast(bundled_gguf: Path) -> None:
    gguf_mod.clear_cache()
    start = time.perf_counter()
    read_metadata(bundled_gguf)
    assert time.perf_counter() - start < 1.0


def test_smollm2_facts() -> None:
    meta = read_metadata(_bundled_path("smollm2:135m"))
    assert meta.architecture == "llama"
    assert meta.parameter_count == 134_515_008
    assert meta.parameter_size == "134.52M"
    assert meta.file_type_name == "Q4_1"
    assert meta.context_length == 8192
    assert meta.embedding_length == 576
    assert meta.block_count == 30
    assert meta.head_count == 9
    assert meta.head_count_kv == 3
    assert meta.pooling_type is None and not meta.is_embedding
    assert meta.bos_token == "<|im_start|>"
    assert meta.eos_token == "<|im_end|>"
    assert meta.eos_token_ids == [2]
    assert meta.chat_template is not None and "<|im_start|>" in meta.chat_template
    assert meta.vocab_size == 49152
    assert meta.tensors()[0] == {"name": "token_embd.weight", "type": "Q8_0", "shape": [576, 49152]}


def test_gemma3_facts() -> None:
    meta = read_metadata(_bundled_path("gemma3:270m"))
    assert meta.architecture == "gemma3"
    assert meta.parameter_size == "268.10M"
    assert meta.file_type_name == "Q4_K_M"
    assert meta.context_length == 32768
    assert meta.embedding_length == 640
    assert meta.sliding_window == 512
    assert meta.key_length == 256
    assert meta.chat_template is None  # the base model: no chat template in the GGUF
    assert (meta.bos_token, meta.eos_token) == ("<bos>", "<eos>")
    assert meta.add_bos_token is True
    assert meta.token(106) == "<end_of_turn>"


def test_model_info_shape(bundled_gguf: Path) -> None:
    meta = read_metadata(bundled_gguf)
    info = meta.model_info()
    assert "general.name" not in info
    assert "tokenizer.chat_template" not in info
    assert info["general.parameter_count"] == meta.parameter_count
    assert list(info) == sorted(info)
    assert info["tokenizer.ggml.tokens"] == []
    assert all(not isinstance(v, list) or len(v) <= 5 for v in info.values())
    verbose = meta.model_info(verbose=True)
    assert len(verbose["tokenizer.ggml.tokens"]) == meta.vocab_size
    # float32 values read as Go prints them, not as the widened double.
    key = f"{meta.architecture}.attention.layer_norm_rms_epsilon"
    assert info[key] in (1e-05, 1e-06)


def test_human_number() -> None:
    # Ollama's format.HumanNumber test cases.
    cases = {
        0: "0",
        999: "999",
        1000: "1K",
        1_000_000: "1M",
        125_000_000: "125M",
        500_500_000: "500.50M",
        500_550_000: "500.55M",
        1_000_000_000: "1B",
        2_800_000_000: "2.8B",
        2_850_000_000: "2.9B",
        8_030_261_248: "8.0B",
        1_000_000_000_000: "1000B",
    }
    for n, text in cases.items():
        assert human_number(n) == text, n


def test_float32_shortest() -> None:
    assert float32_shortest(9.999999747378752e-06) == 1e-05
    assert float32_shortest(100000.0) == 100000.0
    assert float32_shortest(0.1) == 0.1


def test_synthetic_all_value_types(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "t.gguf",
        {
            "general.architecture": "bert",
            "general.name": "tiny",
            "bert.pooling_type": 1,
            "bert.context_length": 512,
            "u8": (ValueType.UINT8, 255),
            "i8": (ValueType.INT8, -1),
            "u16": (ValueType.UINT16, 65535),
            "i16": (ValueType.INT16, -2),
            "i32": (ValueType.INT32, -3),
            "u64": (ValueType.UINT64, 2**40),
            "i64": (ValueType.INT64, -(2**40)),
            "f32": (ValueType.FLOAT32, 0.5),
            "f64": (ValueType.FLOAT64, 0.1),
            "b": True,
            "nested": (ValueType.ARRAY, [[1, 2], [3]], ValueType.ARRAY),
            "strings": ["a", "é", "<s>"],
            "big": (ValueType.ARRAY, list(range(3000)), ValueType.INT32),
            "tokenizer.ggml.tokens": [f"t{i}" for i in range(2000)],
            "tokenizer.ggml.bos_token_id": 1999,
        },
        tensors=[("a.weight", (4, 3), 0), ("b.bias", (5,), 1)],
    )
    meta = read_metadata(path)
    assert meta.get("u8") == 255 and meta.get("i8") == -1 and meta.get("u16") == 65535
    assert meta.get("i16") == -2 and meta.get("i32") == -3
    assert meta.get("u64") == 2**40 and meta.get("i64") == -(2**40)
    assert meta.get("f32") == 0.5 and meta.get("f64") == 0.1 and meta.get("b") is True
    assert meta.get("nested") == [[1, 2], [3]]
    assert meta.get("strings") == ["a", "é", "<s>"]
    assert isinstance(meta.kv["big"], GGUFArray)  # large arrays stay on disk until asked for
    assert meta.get("big") == list(range(3000))
    assert meta.bos_token == "t1999"
    assert meta.is_embedding and meta.pooling_type == 1
    assert meta.parameter_count == 17
    assert meta.parameter_size == "17"
    assert meta.file_type_name == "unknown"
    assert [t["type"] for t in meta.tensors()] == ["F32", "F16"]
    ref = gguf.GGUFReader(path)
    assert [str(t.name) for t in ref.tensors] == ["a.weight", "b.bias"]
    assert ref.fields["nested"].types[:2] == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.ARRAY]


def test_cache_by_size_and_mtime(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "c.gguf", {"general.architecture": "llama"})
    first = read_metadata(path)
    assert read_metadata(path) is first
    write_gguf(path, {"general.architecture": "qwen2", "extra": 1})
    later = time.time() + 5
    os.utime(path, (later, later))
    second = read_metadata(path)
    assert second is not first
    assert second.architecture == "qwen2"
    gguf_mod.clear_cache()
    assert read_metadata(path) is not second


def test_header_larger_than_first_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_mod, "_INITIAL_READ", 64)
    path = write_gguf(tmp_path / "l.gguf", {"general.architecture": "llama", "s": "x" * 1000})
    assert read_metadata(path).get("s") == "x" * 1000


@pytest.mark.parametrize(
    "data",
    [b"", b"GGU", b"GGML\x03\x00\x00\x00" + b"\0" * 16, b"GGUF\x09\x00\x00\x00" + b"\0" * 16],
)
def test_not_gguf(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError):
        read_metadata(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "t.gguf", {"general.architecture": "llama", "s": "x" * 100})
    data = path.read_bytes()
    path.write_bytes(data[:40])
    with pytest.raises(GGUFError, match="truncated"):
        read_metadata(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GGUFError):
        read_metadata(tmp_path / "nope.gguf")
