"""The test fixtures for Hugging Face folders check out: tests/hfmaker.py (a LlamaForCausalLM folder made from the
bundled SmolLM2 GGUF) and tests/bert_reference.py (a numpy all-MiniLM-L6-v2)."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from corral.store.testing import make_temp_store
from tests.bert_reference import bert_embed, bert_token_ids, minilm_folder
from tests.hfmaker import (
    TensorSpec,
    bf16_bits_to_f32,
    f32_to_bf16_bits,
    gguf_to_hf_name,
    load_hf_tensors,
    permute_qk,
    read_safetensors,
    read_safetensors_header,
    unpermute_qk,
    write_hf_folder,
    write_hf_tokenizer,
    write_safetensors,
)

TOKENIZER_TEXTS = [
    "Hello, world! This is a test.",
    "你好，世界",
    "🦙👍",
    "def f(x):\n    return x**2  # 123456",
    "3.14159 and 1,000,000 and 2024-12-04",
    "١٢٣ ४५६ ½ Ⅻ",
    "  leading spaces\ttabs\n\n\nnewlines  ",
    "I'm can't we'll THEY'RE",
    "Ünïcödé café naïve Ωμέγα привет мир",
    "a  b   c",
    " ",
    "",
]


@pytest.fixture(scope="module")
def smollm_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_temp_store(tmp_path_factory.mktemp("hf-store"), names=["smollm2:135m"]).get("smollm2:135m").model_path
    assert path is not None
    return path


@pytest.fixture(scope="module")
def vocab_llama(smollm_gguf: Path) -> Any:
    import llama_cpp

    return llama_cpp.Llama(model_path=str(smollm_gguf), vocab_only=True, verbose=False)


# --- pure helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "cols", "n_head"), [(576, 7, 9), (192, 5, 3), (64, 0, 1), (576, None, 9)])
def test_unpermute_inverts_llama_cpp_permute(rows: int, cols: int | None, n_head: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((rows,) if cols is None else (rows, cols)).astype(np.float32)
    assert np.array_equal(permute_qk(unpermute_qk(w, n_head), n_head), w)
    assert np.array_equal(unpermute_qk(permute_qk(w, n_head), n_head), w)
    if w.size:
        assert not np.array_equal(unpermute_qk(w, n_head), w)


def test_permute_pairs_rope_halves_into_neighbours() -> None:
    # Hugging Face rotates row i with row i + head_dim/2 of each head; GGUF (llama.cpp's "normal" rope) rotates
    # neighbours 2i and 2i+1. The permutation takes one layout to the other, head by head.
    n_head, head_dim = 3, 8
    rows = np.arange(n_head * head_dim, dtype=np.float32)
    gguf_rows = permute_qk(rows, n_head)
    expected = [h * head_dim + r for h in range(n_head) for i in range(head_dim // 2) for r in (i, i + head_dim // 2)]
    assert gguf_rows.tolist() == expected


def test_bf16_rounds_to_nearest_even() -> None:
    one = 1.0
    values = np.array([one, one + 2**-8, one + 3 * 2**-8, one + 2**-8 + 2**-20, -2.5, 0.0, -0.0,
                       np.inf, -np.inf, np.nan, 3.4e38, 1e-40], dtype=np.float32)
    bits = f32_to_bf16_bits(values)
    assert bits[:4].tolist() == [0x3F80, 0x3F80, 0x3F82, 0x3F81]  # ties to even; above a tie rounds up
    back = bf16_bits_to_f32(bits)
    assert back[4] == -2.5 and back[5] == 0.0 and np.signbit(back[6])
    assert back[7] == np.inf and back[8] == -np.inf and np.isnan(back[9])
    assert back[10] == np.inf or abs(back[10] - 3.4e38) / 3.4e38 < 2**-8  # the largest float32s round up to inf
    rng = np.random.default_rng(1)
    x = rng.standard_normal(10_000).astype(np.float32) * 10.0 ** rng.integers(-5, 5, 10_000)
    y = bf16_bits_to_f32(f32_to_bf16_bits(x))
    assert np.all(np.abs(y - x) <= np.abs(x) * 2**-8)


def test_safetensors_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    arrays = {"b.weight": rng.standard_normal((3, 5)).astype(np.float32), "a.bias": np.arange(7, dtype=np.float32)}
    def const(a: np.ndarray) -> Callable[[], np.ndarray]:
        return lambda: a

    specs = [TensorSpec(name, a.shape, const(a)) for name, a in arrays.items()]
    for dtype, tol in (("F32", 0.0), ("F16", 2**-11), ("BF16", 2**-8)):
        path = tmp_path / f"{dtype}.safetensors"
        size = write_safetensors(path, specs, dtype=dtype)
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        assert n % 8 == 0 and size == len(raw) - 8 - n
        header, start = read_safetensors_header(path)
        assert header["__metadata__"] == {"format": "pt"} and start == 8 + n
        assert header["a.bias"]["data_offsets"][0] == 0  # laid out in name order
        got = read_safetensors(path)
        assert set(got) == set(arrays)
        for name, a in arrays.items():
            assert got[name].dtype == np.float32 and got[name].shape == a.shape
            np.testing.assert_allclose(got[name], a, rtol=tol, atol=0)


def test_gguf_names() -> None:
    assert gguf_to_hf_name("blk.12.attn_q.weight") == "model.layers.12.self_attn.q_proj.weight"
    assert gguf_to_hf_name("blk.0.ffn_norm.weight") == "model.layers.0.post_attention_layernorm.weight"
    assert gguf_to_hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert gguf_to_hf_name("output.weight") == "lm_head.weight"
    with pytest.raises(ValueError):
        gguf_to_hf_name("blk.0.attn_qkv.weight")


# --- the tokenizer --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_tokenizer(smollm_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hf_tokenizer(smollm_gguf, tmp_path_factory.mktemp("hf-tok"))


@pytest.mark.parametrize("text", TOKENIZER_TEXTS)
def test_tokenizer_json_agrees_with_llama_cpp(hf_tokenizer: Path, vocab_llama: Any, text: str) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(hf_tokenizer / "tokenizer.json"))
    ids = tok.encode(text).ids
    assert ids == vocab_llama.tokenize(text.encode(), add_bos=False, special=False)
    assert tok.decode(ids) == text


def test_tokenizer_special_tokens(hf_tokenizer: Path, vocab_llama: Any) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(hf_tokenizer / "tokenizer.json"))
    text = "<|im_start|>user\nhi<|im_end|>\n"
    assert tok.encode(text).ids == vocab_llama.tokenize(text.encode(), add_bos=False, special=True)
    assert tok.encode(text).ids[0] == 1
    tok.encode_special_tokens = True  # the text of a special token, as text
    assert tok.encode(text).ids == vocab_llama.tokenize(text.encode(), add_bos=False, special=False)

    config = json.loads((hf_tokenizer / "tokenizer_config.json").read_text())
    assert config["bos_token"] == "<|im_start|>" and config["eos_token"] == "<|im_end|>"
    assert config["unk_token"] == "<|endoftext|>" and config["pad_token"] == "<|im_end|>"
    assert config["add_bos_token"] is False
    assert config["chat_template"].startswith("{% for message in messages %}")
    assert config["added_tokens_decoder"]["2"]["content"] == "<|im_end|>"
    assert config["added_tokens_decoder"]["2"]["special"] is True
    special = json.loads((hf_tokenizer / "special_tokens_map.json").read_text())
    assert special["eos_token"]["content"] == "<|im_end|>"
    assert "<file_sep>" in special["additional_special_tokens"]


# --- the weights (seconds each: 135M parameters dequantized and written) -----------------------------------


@pytest.fixture(scope="module")
def hf_f32(smollm_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = write_hf_folder(smollm_gguf, tmp_path_factory.mktemp("hf-f32"))
    yield folder
    (folder / "model.safetensors").unlink()  # 540 MB: not kept after the module


@pytest.fixture(scope="module")
def f32_tensors(hf_f32: Path) -> dict[str, np.ndarray]:
    return load_hf_tensors(hf_f32)


@pytest.mark.slow
def test_folder_matches_gguf(hf_f32: Path, f32_tensors: dict[str, np.ndarray], smollm_gguf: Path) -> None:
    import gguf

    config = json.loads((hf_f32 / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    expected = {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                "num_key_value_heads": 3, "rms_norm_eps": 1e-05, "rope_theta": 100000.0,
                "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": True,
                "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
    assert {k: config[k] for k in expected} == expected
    generation = json.loads((hf_f32 / "generation_config.json").read_text())
    assert generation["eos_token_id"] == 2
    assert (hf_f32 / "tokenizer.json").is_file() and not (hf_f32 / "model.safetensors.index.json").exists()

    reader = gguf.GGUFReader(smollm_gguf)
    assert len(f32_tensors) == len(reader.tensors) == 272
    assert "lm_head.weight" not in f32_tensors  # tied embeddings
    for t in reader.tensors:
        hf = f32_tensors[gguf_to_hf_name(t.name)]
        assert hf.dtype == np.float32 and hf.shape == tuple(int(d) for d in reversed(t.shape))
        if t.name.startswith(("blk.0.", "blk.29.", "output_norm", "token_embd")):
            w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(hf.shape)
            if t.name.endswith("attn_q.weight"):
                w = unpermute_qk(w, 9)
            elif t.name.endswith("attn_k.weight"):
                w = unpermute_qk(w, 3)
            assert np.array_equal(hf, w), t.name


@pytest.mark.slow
def test_folder_computes_what_the_gguf_computes(hf_f32: Path, f32_tensors: dict[str, np.ndarray],
                                                smollm_gguf: Path) -> None:
    """A numpy LlamaForCausalLM (Hugging Face's rope: rotate_half) over the folder gives llama.cpp's logits on
    the GGUF: the q/k rows are in Hugging Face's layout."""
    import llama_cpp

    config = json.loads((hf_f32 / "config.json").read_text())
    llm = llama_cpp.Llama(model_path=str(smollm_gguf), n_ctx=64, logits_all=True, verbose=False)
    ids = llm.tokenize(b"The capital of France is Paris. The capital of Germany is", add_bos=False)
    llm.eval(ids)
    ref = np.asarray(llm.scores[: len(ids)])
    logits = _llama_forward(f32_tensors, config, ids)
    assert np.array_equal(logits.argmax(-1), ref.argmax(-1))
    assert min(float(np.corrcoef(a, b)[0, 1]) for a, b in zip(logits, ref, strict=True)) > 0.99
    assert llm.detokenize([int(logits[-1].argmax())]) == b" Berlin"


def _llama_forward(w: dict[str, np.ndarray], cfg: dict[str, Any], ids: list[int]) -> np.ndarray:
    hidden, n_head, n_kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim, eps, n = hidden // n_head, cfg["rms_norm_eps"], len(ids)

    def rms(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.asarray(x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g)

    angles = np.arange(n)[:, None] * cfg["rope_theta"] ** (-np.arange(0, head_dim, 2) / head_dim)[None]
    cos = np.cos(np.concatenate([angles, angles], -1))[:, None]
    sin = np.sin(np.concatenate([angles, angles], -1))[:, None]

    def rope(x: np.ndarray) -> np.ndarray:
        return np.asarray(x * cos + np.concatenate([-x[..., head_dim // 2:], x[..., : head_dim // 2]], -1) * sin)

    x = w["model.embed_tokens.weight"][ids].astype(np.float64)
    causal = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, n_head, head_dim))
        k = np.repeat(rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, n_kv, head_dim)), n_head // n_kv, 1)
        v = np.repeat((h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, n_kv, head_dim), n_head // n_kv, 1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim) + causal
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", s, v).reshape(n, hidden) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["model.embed_tokens.weight"].T


@pytest.fixture(scope="module", params=[("BF16", 3), ("F16", 2), ("BF16", 1)], ids=lambda p: f"{p[0]}x{p[1]}")
def hf_variant(request: pytest.FixtureRequest, smollm_gguf: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    dtype, shards = request.param
    folder = write_hf_folder(smollm_gguf, tmp_path_factory.mktemp(f"hf-{dtype}x{shards}"), dtype=dtype, shards=shards)
    yield dtype, shards, folder
    for f in folder.glob("*.safetensors"):  # 270-540 MB each: not kept for the rest of the session
        f.unlink()


@pytest.mark.slow
def test_dtype_and_shard_variants_hold_the_f32_tensors(hf_variant: tuple[str, int, Path],
                                                        f32_tensors: dict[str, np.ndarray]) -> None:
    dtype, shards, folder = hf_variant
    config = json.loads((folder / "config.json").read_text())
    assert config["torch_dtype"] == {"BF16": "bfloat16", "F16": "float16"}[dtype]
    index_path = folder / "model.safetensors.index.json"
    if shards == 1:
        assert (folder / "model.safetensors").is_file() and not index_path.exists()
    else:
        index = json.loads(index_path.read_text())
        files = [f"model-{k:05d}-of-{shards:05d}.safetensors" for k in range(1, shards + 1)]
        assert sorted(set(index["weight_map"].values())) == files
        assert set(index["weight_map"]) == set(f32_tensors)
        total = 0
        for name in files:
            header, _ = read_safetensors_header(folder / name)
            names = {n for n in header if n != "__metadata__"}
            assert names == {n for n, f in index["weight_map"].items() if f == name}
            infos = [info for n, info in header.items() if n != "__metadata__"]
            assert {info["dtype"] for info in infos} == {dtype}
            total += sum(info["data_offsets"][1] - info["data_offsets"][0] for info in infos)
        assert index["metadata"]["total_size"] == total == sum(a.size for a in f32_tensors.values()) * 2
        assert not (folder / "model.safetensors").exists()

    raw = load_hf_tensors(folder, raw=True)
    assert set(raw) == set(f32_tensors)
    for name, ref in f32_tensors.items():
        got = raw[name]
        assert got.shape == ref.shape, name
        if dtype == "BF16":
            assert np.array_equal(got, f32_to_bf16_bits(ref)), name
            assert np.all(np.abs(bf16_bits_to_f32(got) - ref) <= np.abs(ref) * 2**-8), name
        else:
            assert got.dtype == np.float16 and np.array_equal(got, ref.astype(np.float16)), name


# --- the BERT reference ---------------------------------------------------------------------------------------


def test_minilm_folder_is_a_bert_folder() -> None:
    folder = minilm_folder()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "bert"
    assert bert_token_ids(folder, ["A man is eating food."]) == [[101, 1037, 2158, 2003, 5983, 2833, 1012, 102]]
    assert len(bert_token_ids(folder, ["many words " * 300])[0]) == 256  # sentence_bert_config's max_seq_length


def test_bert_reference_gives_all_minilm_embeddings() -> None:
    sentences = ["A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome.",
                 "A man is eating food.", "The cat sits outside", "The dog plays in the garden",
                 "The new movie is awesome", "The new movie is so great"]
    e = bert_embed(minilm_folder(), sentences)
    assert e.shape == (len(sentences), 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-12)
    cos = e @ e.T
    assert cos[0, 3] == pytest.approx(1.0, abs=1e-12)  # the same sentence
    assert cos[0, 1] > 0.7 and cos[0, 1] > 5 * max(cos[0, 2], cos[1, 2], 0.1)  # related vs unrelated
    # sentence-transformers' README example for all-MiniLM-L6-v2 (scores 0.2838 and 0.8939)
    assert cos[4, 5] == pytest.approx(0.2838, abs=5e-4)
    assert cos[6, 7] == pytest.approx(0.8939, abs=5e-4)
    unnormalised = bert_embed(minilm_folder(), sentences[:1], normalize=False)
    np.testing.assert_allclose(unnormalised / np.linalg.norm(unnormalised), e[:1], atol=1e-12)
