"""corral.store.convert on tiny Hugging Face folders built here with numpy: names, shapes, types and values of
the GGUF written, llama.cpp loading and running it, the tokenizers, and every bad input refused by name.

(tests/test_convert.py converts real models end to end through the server.)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

import corral.store.convert as convert
from corral.store.convert import ConvertError, ConvertInfo, convert_folder, is_hf_folder
from corral.store.convert.tokenizer import TokenType
from tests.tinyhf import (
    BPE_MERGES,
    FFN,
    HEAD_DIM,
    LAYERS,
    N_BPE,
    N_HEAD,
    N_KV,
    N_ROWS,
    SPM_PIECES,
    WORDPIECE,
    H,
    bpe_tokenizer,
    byte_chars,
    convert_files,
    decoder_weights,
    field,
    hf_permute,
    llama_files,
    run_llama_cpp,
    safetensors_bytes,
    spm_tokenizer,
    tensors_of,
    to_bf16_bits,
    w,
    wordpiece_tokenizer,
    write_folder,
)

# --- the public surface ------------------------------------------------------------------------------------------


def test_all_is_the_public_api() -> None:
    assert sorted(convert.__all__) == ["ConvertError", "ConvertInfo", "convert_folder", "is_hf_folder"]
    from corral.store.errors import StoreError

    assert issubclass(ConvertError, StoreError)


def test_is_hf_folder() -> None:
    assert is_hf_folder(["config.json", "tokenizer.json"])
    assert is_hf_folder(["model-00001-of-00002.safetensors"])
    assert not is_hf_folder(["model.gguf"])
    assert not is_hf_folder([])


# --- llama ---------------------------------------------------------------------------------------------------------


def test_llama_tensors_types_and_permutation(tmp_path: Path) -> None:
    weights = decoder_weights(N_ROWS)
    out, info = convert_files(tmp_path, llama_files(weights))
    assert info == ConvertInfo("llama", sum(a.size for a in weights.values()), "F16", False)
    reader = gguf.GGUFReader(out)
    assert field(reader, "general.architecture") == "llama"
    assert field(reader, "general.file_type") == 1
    assert field(reader, "llama.block_count") == LAYERS
    assert field(reader, "llama.attention.head_count_kv") == N_KV
    assert field(reader, "llama.rope.dimension_count") == HEAD_DIM
    assert field(reader, "llama.context_length") == 256
    assert field(reader, "llama.vocab_size") == N_ROWS
    ts = tensors_of(out)
    assert ts["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert list(ts["token_embd.weight"].shape) == [H, N_ROWS]  # GGUF lists dimensions innermost first
    assert ts["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert ts["output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert ts["output.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert len(ts) == 2 + 1 + 9 * LAYERS
    for i in range(LAYERS):
        q = weights[f"model.layers.{i}.self_attn.q_proj.weight"]
        k = weights[f"model.layers.{i}.self_attn.k_proj.weight"]
        v = weights[f"model.layers.{i}.self_attn.v_proj.weight"]
        got_q = np.array(ts[f"blk.{i}.attn_q.weight"].data).reshape(q.shape)
        got_k = np.array(ts[f"blk.{i}.attn_k.weight"].data).reshape(k.shape)
        got_v = np.array(ts[f"blk.{i}.attn_v.weight"].data).reshape(v.shape)
        np.testing.assert_array_equal(got_q, hf_permute(q, N_HEAD).astype(np.float16))
        np.testing.assert_array_equal(got_k, hf_permute(k, N_KV).astype(np.float16))
        np.testing.assert_array_equal(got_v, v.astype(np.float16))
    norm = np.array(ts["blk.1.ffn_norm.weight"].data)
    np.testing.assert_array_equal(norm, weights["model.layers.1.post_attention_layernorm.weight"])


def test_tied_llama_has_no_output_tensor(tmp_path: Path) -> None:
    weights = decoder_weights(N_ROWS)
    out, _ = convert_files(tmp_path, llama_files(weights, tie_word_embeddings=True))
    assert "output.weight" not in tensors_of(out)  # a saved lm_head of a tied model is dropped
    weights.pop("lm_head.weight")
    out, _ = convert_files(tmp_path, llama_files(weights, tie_word_embeddings=True), "nohead")
    assert "output.weight" not in tensors_of(out)


def test_llama_runs_in_llama_cpp(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, llama_files())
    tokens, logits = run_llama_cpp(out)
    assert tokens and np.isfinite(logits).all() and logits.shape == (len(tokens), N_ROWS)


def test_bf16_and_f16_sources_equal_f32(tmp_path: Path) -> None:
    weights = decoder_weights(N_ROWS)
    rounded = {k: (to_bf16_bits(v).astype(np.uint32) << 16).view(np.float32) for k, v in weights.items()}
    from_bf16, _ = convert_files(tmp_path, llama_files(weights, "BF16"), "bf16")
    from_f32, _ = convert_files(tmp_path, llama_files(rounded, "F32"), "f32")
    assert from_bf16.read_bytes() == from_f32.read_bytes()
    from_f16, _ = convert_files(tmp_path, llama_files(weights, "F16"), "f16")
    halves = {k: v.astype(np.float16).astype(np.float32) for k, v in weights.items()}
    assert from_f16.read_bytes() == convert_files(tmp_path, llama_files(halves, "F32"), "halves")[0].read_bytes()
    original, _ = convert_files(tmp_path, llama_files(weights, "F32"), "orig")
    b, c = tensors_of(original), tensors_of(from_bf16)
    np.testing.assert_allclose(np.array(c["blk.0.ffn_up.weight"].data, dtype=np.float32),
                               np.array(b["blk.0.ffn_up.weight"].data, dtype=np.float32), rtol=1 / 128, atol=1e-6)


def test_sharded_folder_equals_single_file(tmp_path: Path) -> None:
    weights = decoder_weights(N_ROWS)
    files = llama_files(weights)
    single, _ = convert_files(tmp_path, files, "single")
    names = list(weights)
    parts = [dict(list(weights.items())[: len(names) // 2]), dict(list(weights.items())[len(names) // 2:])]
    sharded = {k: v for k, v in files.items() if k != "model.safetensors"}
    weight_map = {}
    for n, part in enumerate(parts, 1):
        shard = f"model-0000{n}-of-00002.safetensors"
        sharded[shard] = safetensors_bytes(part)
        weight_map |= dict.fromkeys(part, shard)
    sharded["model.safetensors.index.json"] = {"metadata": {}, "weight_map": weight_map}
    out, _ = convert_files(tmp_path, sharded, "sharded")
    assert out.read_bytes() == single.read_bytes()


def test_llama3_rope_scaling_writes_rope_factors(tmp_path: Path) -> None:
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}
    out, _ = convert_files(tmp_path, llama_files(rope_scaling=scaling, rope_theta=500000.0))
    factors = np.array(tensors_of(out)["rope_freqs.weight"].data)
    assert factors.shape == (HEAD_DIM // 2,) and factors[0] == 1.0 and factors[-1] == 8.0


# --- the byte-level BPE tokenizer --------------------------------------------------------------------------------


def test_bpe_vocabulary(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, llama_files())
    reader = gguf.GGUFReader(out)
    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert field(reader, "tokenizer.ggml.pre") == "smollm"
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == N_ROWS and tokens[N_BPE - 1] == "<|endoftext|>" and tokens[-1] == f"[PAD{N_ROWS - 1}]"
    assert types[N_BPE - 1] == TokenType.CONTROL and types[0] == TokenType.NORMAL and types[-1] == TokenType.UNUSED
    assert field(reader, "tokenizer.ggml.merges") == [" ".join(m) for m in BPE_MERGES]
    assert field(reader, "tokenizer.ggml.bos_token_id") == N_BPE - 1
    assert field(reader, "tokenizer.ggml.add_bos_token") is False
    assert field(reader, "tokenizer.chat_template").startswith("{% for m in messages %}")


def test_llama_cpp_tokenizes_with_the_merges(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, llama_files())
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    chars = byte_chars()
    ids = {c: i for i, c in enumerate(chars)} | {a + b: 256 + n for n, (a, b) in enumerate(BPE_MERGES)}
    assert model.tokenize(b"hello world", add_bos=False) == [ids["hello"], ids["\u0120wor"], ids["l"], ids["d"]]
    assert model.tokenize(b"hell7", add_bos=False) == [ids["hell"], ids["7"]]
    assert model.tokenize(b"<|endoftext|>", add_bos=False, special=True) == [N_BPE - 1]


@pytest.mark.parametrize(("pre", "name"), [
    ({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}, "gpt-2"),
    ({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?"
                                               r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}, "qwen2"),
    ({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                                               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, "llama-bpe"),
    ({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\w+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}, "default"),
])  # fmt: skip
def test_pre_tokenizer_names(tmp_path: Path, pre: dict[str, Any], name: str) -> None:
    from corral.store.convert.folder import HFFolder
    from corral.store.convert.tokenizer import load_vocab

    tj, tc = bpe_tokenizer(pre)
    folder = HFFolder(write_folder(tmp_path, {"tokenizer.json": tj, "tokenizer_config.json": tc}))
    assert load_vocab(folder, {}, n_vocab=N_BPE).pre == name


# --- qwen2 ---------------------------------------------------------------------------------------------------------


def qwen2_files(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    files = llama_files(weights, architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=True)
    return files


def test_qwen2_keeps_rows_and_biases(tmp_path: Path) -> None:
    weights = decoder_weights(N_ROWS, qkv_bias=True, lm_head=False)
    out, info = convert_files(tmp_path, qwen2_files(weights))
    assert info.architecture == "qwen2"
    ts = tensors_of(out)
    assert "output.weight" not in ts
    assert ts["blk.0.attn_q.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    q = weights["model.layers.0.self_attn.q_proj.weight"]
    np.testing.assert_array_equal(np.array(ts["blk.0.attn_q.weight"].data).reshape(q.shape), q.astype(np.float16))
    np.testing.assert_array_equal(np.array(ts["blk.1.attn_k.bias"].data),
                                  weights["model.layers.1.self_attn.k_proj.bias"])


def test_qwen2_runs_in_llama_cpp(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, qwen2_files(decoder_weights(N_ROWS, qkv_bias=True, lm_head=False)))
    tokens, logits = run_llama_cpp(out)
    assert np.isfinite(logits).all() and logits.shape == (len(tokens), N_ROWS)


# --- gemma3 --------------------------------------------------------------------------------------------------------

G_HEADS, G_KV, G_HEAD_DIM = 2, 1, 32
N_SPM = 4 + 256 + len(SPM_PIECES)


def gemma3_files(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    tj, tc = spm_tokenizer()
    config = {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": H,
              "intermediate_size": FFN, "num_attention_heads": G_HEADS, "num_key_value_heads": G_KV,
              "head_dim": G_HEAD_DIM, "num_hidden_layers": LAYERS, "max_position_embeddings": 512,
              "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
              "sliding_window": 32, "query_pre_attn_scalar": G_HEAD_DIM, "final_logit_softcapping": None,
              "attn_logit_softcapping": None, "vocab_size": N_SPM, "hidden_activation": "gelu_pytorch_tanh"}
    return {"config.json": config, "model.safetensors": safetensors_bytes(weights, "BF16"),
            "tokenizer.json": tj, "tokenizer_config.json": tc}


def gemma3_weights() -> dict[str, np.ndarray]:
    return decoder_weights(N_SPM, gemma=True, lm_head=False, n_head=G_HEADS, n_kv=G_KV, head_dim=G_HEAD_DIM)


def test_gemma3_norms_metadata_and_vocabulary(tmp_path: Path) -> None:
    weights = gemma3_weights()
    out, info = convert_files(tmp_path, gemma3_files(weights))
    assert info.architecture == "gemma3" and not info.embedding_only
    reader = gguf.GGUFReader(out)
    assert field(reader, "gemma3.attention.sliding_window") == 32
    assert field(reader, "gemma3.attention.key_length") == G_HEAD_DIM
    assert field(reader, "gemma3.rope.freq_base") == 1000000.0
    assert "gemma3.final_logit_softcapping" not in reader.fields
    ts = tensors_of(out)
    assert "output.weight" not in ts
    bf16 = (to_bf16_bits(weights["model.layers.0.self_attn.q_norm.weight"]).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_allclose(np.array(ts["blk.0.attn_q_norm.weight"].data), bf16 + 1, rtol=0, atol=1e-7)
    q = (to_bf16_bits(weights["model.layers.0.self_attn.q_proj.weight"]).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(np.array(ts["blk.0.attn_q.weight"].data).reshape(q.shape), q.astype(np.float16))
    assert field(reader, "tokenizer.ggml.model") == "llama"
    assert field(reader, "tokenizer.ggml.add_space_prefix") is False
    assert field(reader, "tokenizer.ggml.add_bos_token") is True  # from the post-processor's template
    assert field(reader, "tokenizer.chat_template") == "DEFAULT"
    types = field(reader, "tokenizer.ggml.token_type")
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert types[:4] == [TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.UNKNOWN]
    assert types[4] == TokenType.BYTE and tokens[4] == "<0x00>"
    scores = field(reader, "tokenizer.ggml.scores")
    assert scores[tokens.index("he")] > scores[tokens.index("hello")]  # earlier merges score higher
    assert (field(reader, "tokenizer.ggml.bos_token_id"), field(reader, "tokenizer.ggml.eos_token_id")) == (2, 1)


def test_gemma3_runs_and_tokenizes_in_llama_cpp(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, gemma3_files(gemma3_weights()))
    tokens, logits = run_llama_cpp(out, b"hello hello")
    assert np.isfinite(logits).all()
    ids = {t: 4 + 256 + i for i, t in enumerate(SPM_PIECES)}
    assert tokens == [ids["hello"], ids["▁hello"]]
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=str(out), vocab_only=True, verbose=False)
    assert model.tokenize("hé".encode(), add_bos=False) == [ids["h"], 4 + 0xC3, 4 + 0xA9]  # byte fallback


def test_multimodal_gemma3_converts_its_language_model(tmp_path: Path) -> None:
    weights = {("language_model." + k): v for k, v in gemma3_weights().items()}
    weights["vision_tower.vision_model.embeddings.patch_embedding.weight"] = w(4, 3)
    weights["multi_modal_projector.mm_input_projection_weight"] = w(4, 4)
    files = gemma3_files(weights)
    text = {k: v for k, v in files["config.json"].items() if k not in ("architectures", "model_type")}
    files["config.json"] = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                            "text_config": {**text, "model_type": "gemma3_text"}, "vision_config": {}}
    out, info = convert_files(tmp_path, files)
    ts = tensors_of(out)
    assert info.architecture == "gemma3" and not any(n.startswith(("v.", "mm.")) for n in ts)
    assert "blk.1.post_ffw_norm.weight" in ts


# --- bert ----------------------------------------------------------------------------------------------------------

B_H, B_HEADS, B_FFN, B_POS = 32, 2, 64, 16


def bert_weights() -> dict[str, np.ndarray]:
    t = {"embeddings.word_embeddings.weight": w(len(WORDPIECE), B_H),
         "embeddings.position_embeddings.weight": w(B_POS, B_H),
         "embeddings.token_type_embeddings.weight": w(2, B_H),
         "embeddings.LayerNorm.weight": 1 + w(B_H), "embeddings.LayerNorm.bias": w(B_H),
         "embeddings.position_ids": np.arange(B_POS, dtype=np.float32)[None],
         "pooler.dense.weight": w(B_H, B_H), "pooler.dense.bias": w(B_H)}
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name, rows, cols in (("attention.self.query", B_H, B_H), ("attention.self.key", B_H, B_H),
                                 ("attention.self.value", B_H, B_H), ("attention.output.dense", B_H, B_H),
                                 ("intermediate.dense", B_FFN, B_H), ("output.dense", B_H, B_FFN)):
            t[p + name + ".weight"] = w(rows, cols)
            t[p + name + ".bias"] = w(rows)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + norm + ".weight"] = 1 + w(B_H)
            t[p + norm + ".bias"] = w(B_H)
    return t


def bert_files(pooling: str | None = "mean") -> dict[str, Any]:
    tj, tc = wordpiece_tokenizer()
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": B_H,
              "num_attention_heads": B_HEADS, "intermediate_size": B_FFN, "num_hidden_layers": LAYERS,
              "max_position_embeddings": B_POS, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
              "vocab_size": len(WORDPIECE), "hidden_act": "gelu", "position_embedding_type": "absolute"}
    files: dict[str, Any] = {"config.json": config, "model.safetensors": safetensors_bytes(bert_weights()),
                             "tokenizer.json": tj, "tokenizer_config.json": tc}
    if pooling is not None:
        files["modules.json"] = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        files["1_Pooling/config.json"] = {"word_embedding_dimension": B_H,
                                          "pooling_mode_cls_token": pooling == "cls",
                                          "pooling_mode_mean_tokens": pooling == "mean"}
    return files


@pytest.mark.parametrize(("pooling", "expected"), [("mean", 1), ("cls", 2), (None, 1)])
def test_bert_tensors_pooling_and_vocabulary(tmp_path: Path, pooling: str | None, expected: int) -> None:
    out, info = convert_files(tmp_path, bert_files(pooling))
    assert info.architecture == "bert" and info.embedding_only
    reader = gguf.GGUFReader(out)
    assert field(reader, "bert.pooling_type") == expected
    assert field(reader, "bert.attention.causal") is False
    ts = tensors_of(out)
    assert not any("pooler" in n or "position_ids" in n for n in ts)
    assert ts["position_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert ts["token_types.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert ts["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert ts["blk.1.layer_output_norm.bias"].tensor_type == gguf.GGMLQuantizationType.F32
    assert len(ts) == 5 + 16 * LAYERS
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert tokens[:7] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁hello", "▁world"]
    assert tokens[7] == "s"  # "##s" continues a word: llama.cpp's phantom-space spelling
    assert field(reader, "tokenizer.ggml.model") == "bert"
    assert field(reader, "tokenizer.ggml.cls_token_id") == 2
    assert field(reader, "tokenizer.ggml.seperator_token_id") == 3
    assert field(reader, "tokenizer.ggml.token_type_count") == 2


def test_bert_embeds_in_llama_cpp(tmp_path: Path) -> None:
    out, _ = convert_files(tmp_path, bert_files("mean"))
    tokens, embedding = run_llama_cpp(out, b"hellos, world", embedding=True)
    assert tokens == [2, 5, 7, 11, 6, 3]  # [CLS] hello ##s , world [SEP]
    assert embedding.shape == (B_H,) and np.isfinite(embedding).all()


# --- bad inputs ----------------------------------------------------------------------------------------------------


def _without(files: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in files.items() if k not in names}


def _with_weights(blob: bytes) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda files: {**files, "model.safetensors": blob}


def _header(entries: dict[str, Any], data: bytes = b"\0" * 64) -> bytes:
    text = json.dumps(entries).encode()
    return struct.pack("<Q", len(text)) + text + data


def _raw_header(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text + b"\0" * 8


SMALL = {"model.embed_tokens.weight": np.zeros((4, 4), np.float32)}

BAD_CASES: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "no config": (lambda f: _without(f, "config.json"), "config.json"),
    "unknown architecture": (lambda f: {**f, "config.json": {**f["config.json"],
                                                            "architectures": ["FrobnicatorForCausalLM"]}},
                             '"FrobnicatorForCausalLM"'),
    "no tokenizer": (lambda f: _without(f, "tokenizer.json"), "tokenizer"),
    "no weights": (lambda f: _without(f, "model.safetensors"), "safetensors"),
    "truncated": (lambda f: {**f, "model.safetensors": f["model.safetensors"][:-7]}, "model.safetensors"),
    "truncated header": (lambda f: {**f, "model.safetensors": f["model.safetensors"][:20]}, "truncated"),
    "tiny file": (_with_weights(b"\x01\x02"), "not a safetensors file"),
    "huge header length": (_with_weights(struct.pack("<Q", 1 << 60) + b"{}"), "header length"),
    "header not json": (_with_weights(struct.pack("<Q", 4) + b"{{{{"), "not valid JSON"),
    "header not object": (_with_weights(struct.pack("<Q", 2) + b"[]"), "not a JSON object"),
    "lying header": (_with_weights(safetensors_bytes(SMALL, patch={"model.norm.weight": {
        "dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}})), "model.norm.weight"),
    "size mismatch": (_with_weights(_header({"model.norm.weight": {"dtype": "F32", "shape": [8],
                                                                   "data_offsets": [0, 16]}})), "needs 32 bytes"),
    "offset outside": (_with_weights(_header({"model.norm.weight": {"dtype": "F32", "shape": [4],
                                                                    "data_offsets": [60, 76]}})), "outside"),
    "negative shape": (_with_weights(_header({"model.norm.weight": {"dtype": "F32", "shape": [-4],
                                                                    "data_offsets": [0, 16]}})), "invalid shape"),
    "bad dtype": (_with_weights(_header({"model.norm.weight": {"dtype": "F17", "shape": [4],
                                                               "data_offsets": [0, 16]}})), "unknown dtype"),
    "overlap": (_with_weights(_header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                       "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})), "overlap"),
    "duplicate key": (_with_weights(_raw_header(b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                                b'"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')),
                      "duplicate"),
    "escaping tensor name": (_with_weights(safetensors_bytes({"../../../../etc/passwd": np.zeros(4)})), "passwd"),
    "integer weights": (_with_weights(_header({"model.norm.weight": {"dtype": "I32", "shape": [H],
                                                                     "data_offsets": [0, 4 * H]}}, b"\0" * 4 * H)),
                        "I32"),
    "missing tensor": (lambda f: {**f, "model.safetensors": safetensors_bytes(
        {k: v for k, v in decoder_weights(N_ROWS).items() if k != "model.layers.1.mlp.up_proj.weight"})},
        "model.layers.1.mlp.up_proj.weight"),
    "wrong shape": (lambda f: {**f, "model.safetensors": safetensors_bytes(
        {**decoder_weights(N_ROWS), "model.layers.0.self_attn.k_proj.weight": w(H, H)})},
        "model.layers.0.self_attn.k_proj.weight"),
    "layer beyond config": (lambda f: {**f, "model.safetensors": safetensors_bytes(
        {**decoder_weights(N_ROWS), "model.layers.7.mlp.up_proj.weight": w(FFN, H)})}, "layer 7"),
    "config not json": (lambda f: {**f, "config.json": "{"}, "config.json"),
    "config missing key": (lambda f: {**f, "config.json": _without(f["config.json"], "hidden_size")},
                           "hidden_size"),
    "tokenizer larger than model": (lambda f: {**f, "model.safetensors": safetensors_bytes(
        {**decoder_weights(N_ROWS), "model.embed_tokens.weight": w(100, H), "lm_head.weight": w(100, H)})},
        "token embedding has only 100 rows"),
    "index names a missing shard": (lambda f: {**f, "model.safetensors.index.json": {"weight_map": {
        "model.norm.weight": "model-00002-of-00002.safetensors"}}}, "model-00002-of-00002.safetensors"),
    "index lies about a tensor": (lambda f: {**f, "model.safetensors.index.json": {"weight_map": {
        "model.nothing.weight": "model.safetensors"}}}, "model.nothing.weight"),
    "lone surrogate token": (lambda f: {**f, "tokenizer.json": {**f["tokenizer.json"], "added_tokens": [
        {"id": N_BPE - 1, "content": "\ud800", "special": True}]}}, "not valid Unicode"),
    "bad chat template": (lambda f: {**f, "tokenizer_config.json": {"chat_template": 7}}, "chat_template"),
    "only tokenizer.model": (lambda f: {**_without(f, "tokenizer.json"), "tokenizer.model": b"\n\x03abc"},
                             "tokenizer.model"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_a_convert_error_naming_the_problem(tmp_path: Path, case: str) -> None:
    make, words = BAD_CASES[case]
    files = make(llama_files())
    with pytest.raises(ConvertError) as caught:
        convert_files(tmp_path, files)
    assert words in str(caught.value), str(caught.value)


@pytest.mark.parametrize("name", ["../config.json", "/etc/config.json", "a/../../config.json", "a\\config.json",
                                  "./config.json", "", "C:config.json", "a//b"])
def test_file_names_leaving_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    paths = write_folder(tmp_path, llama_files())
    paths[name] = paths["config.json"]
    with pytest.raises(ConvertError, match="file name"):
        convert_folder(paths, tmp_path / "out.gguf")


def test_progress_and_nothing_left_behind(tmp_path: Path) -> None:
    paths = write_folder(tmp_path / "src", llama_files())
    statuses: list[str] = []
    (tmp_path / "out").mkdir()
    convert_folder(paths, tmp_path / "out" / "model.gguf", progress=statuses.append)
    assert statuses[0] == "converting model"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.gguf"]
