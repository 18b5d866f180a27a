"""Tiny Hugging Face folders built with numpy for tests/test_convert_unit.py: a safetensors writer, byte-level
BPE, SentencePiece-style and WordPiece tokenizers, decoder and BERT weights, and ways to read and run what
corral.store.convert writes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from corral.store.convert import ConvertInfo, convert_folder

RNG = np.random.default_rng(0)


# --- a tiny safetensors writer -------------------------------------------------------------------------------


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, rounded to nearest even."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def safetensors_bytes(tensors: dict[str, np.ndarray], dtype: str = "F32",
                      patch: dict[str, Any] | None = None) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, arr in tensors.items():
        if dtype == "BF16":
            raw = to_bf16_bits(arr).tobytes()
        else:
            raw = np.ascontiguousarray(arr, dtype={"F32": "<f4", "F16": "<f2"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header.update(patch or {})
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


# --- tokenizers ----------------------------------------------------------------------------------------------


def byte_chars() -> list[str]:
    """GPT-2's printable stand-in for each byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return [chars[b] for b in range(256)]


BPE_MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or")]


def bpe_tokenizer(pre: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A byte-level BPE tokenizer.json (every byte, a few merges, one special token) and its config."""
    vocab = {c: i for i, c in enumerate(byte_chars())}
    for a, b in BPE_MERGES:
        vocab[a + b] = len(vocab)
    eot = len(vocab)
    tj = {
        "version": "1.0",
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": pre or {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [list(m) for m in BPE_MERGES]},
    }
    config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": False,
              "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}
    return tj, config


SPM_PIECES = ["▁", "h", "e", "l", "o", "he", "ll", "hell", "hello", "▁hello"]
SPM_MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("▁", "hello")]


def spm_tokenizer() -> tuple[dict[str, Any], dict[str, Any]]:
    """A SentencePiece-style BPE tokenizer.json as Gemma's: byte fallback, "▁" for spaces, no prefix space."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for p in SPM_PIECES:
        vocab[p] = len(vocab)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(specials)]
    tj = {
        "version": "1.0", "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                          "invert": False},
        "post_processor": {"type": "TemplateProcessing", "single": [
            {"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [" ".join(m) for m in SPM_MERGES]},
    }  # fmt: skip
    config = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>",
              "chat_template": [{"name": "default", "template": "DEFAULT"}, {"name": "tool_use", "template": "T"}]}
    return tj, config


WORDPIECE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "un", "##aff", "##able", ","]


def wordpiece_tokenizer() -> tuple[dict[str, Any], dict[str, Any]]:
    vocab = {t: i for i, t in enumerate(WORDPIECE)}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(WORDPIECE[:5])]
    tj = {
        "version": "1.0", "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [], "special_tokens": {}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }  # fmt: skip
    config = {"cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
              "mask_token": "[MASK]", "do_lower_case": True}
    return tj, config


# --- tiny models -----------------------------------------------------------------------------------------------

H, N_HEAD, N_KV, HEAD_DIM, FFN, LAYERS = 64, 4, 2, 16, 128, 2


def w(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.05).astype(np.float32)


def decoder_weights(n_vocab: int, *, qkv_bias: bool = False, gemma: bool = False, lm_head: bool = True,
                    n_head: int = N_HEAD, n_kv: int = N_KV, head_dim: int = HEAD_DIM) -> dict[str, np.ndarray]:
    q, kv = n_head * head_dim, n_kv * head_dim
    t = {"model.embed_tokens.weight": w(n_vocab, H), "model.norm.weight": 1 + w(H)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t |= {p + "input_layernorm.weight": 1 + w(H), p + "post_attention_layernorm.weight": 1 + w(H),
              p + "self_attn.q_proj.weight": w(q, H), p + "self_attn.k_proj.weight": w(kv, H),
              p + "self_attn.v_proj.weight": w(kv, H), p + "self_attn.o_proj.weight": w(H, q),
              p + "mlp.gate_proj.weight": w(FFN, H), p + "mlp.up_proj.weight": w(FFN, H),
              p + "mlp.down_proj.weight": w(H, FFN)}
        if qkv_bias:
            t |= {p + "self_attn.q_proj.bias": w(q), p + "self_attn.k_proj.bias": w(kv),
                  p + "self_attn.v_proj.bias": w(kv)}
        if gemma:
            t |= {p + "self_attn.q_norm.weight": w(head_dim), p + "self_attn.k_norm.weight": w(head_dim),
                  p + "pre_feedforward_layernorm.weight": w(H), p + "post_feedforward_layernorm.weight": w(H)}
    if lm_head:
        t["lm_head.weight"] = w(n_vocab, H)
    return t


def llama_config(n_vocab: int, **extra: Any) -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
            "intermediate_size": FFN, "num_attention_heads": N_HEAD, "num_key_value_heads": N_KV,
            "num_hidden_layers": LAYERS, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "vocab_size": n_vocab, "tie_word_embeddings": False, "bos_token_id": 0,
            "eos_token_id": 0, **extra}


def write_folder(root: Path, files: dict[str, bytes | str | dict[str, Any] | list[Any]]) -> dict[str, Path]:
    """Write each file (bytes as they are, str as text, JSON values as JSON) and return the name -> path map."""
    out = {}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        out[name] = path
    return out


N_BPE = 256 + len(BPE_MERGES) + 1  # bytes, merges, <|endoftext|>
N_ROWS = N_BPE + 3  # the embedding has a few rows the tokenizer does not use


def llama_files(weights: dict[str, np.ndarray] | None = None, dtype: str = "F32",
                **config: Any) -> dict[str, bytes | str | dict[str, Any] | list[Any]]:
    tj, tc = bpe_tokenizer()
    weights = weights if weights is not None else decoder_weights(N_ROWS)
    return {"config.json": llama_config(N_ROWS, **config), "model.safetensors": safetensors_bytes(weights, dtype),
            "tokenizer.json": tj, "tokenizer_config.json": tc}


def convert_files(tmp_path: Path, files: dict[str, Any], name: str = "model") -> tuple[Path, ConvertInfo]:
    paths = write_folder(tmp_path / f"{name}-src", files)
    out = tmp_path / f"{name}.gguf"
    info = convert_folder(paths, out)
    return out, info


def tensors_of(path: Path) -> dict[str, Any]:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def field(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


def hf_permute(wt: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute, written out: rows of each head, halves interleaved."""
    rows = wt.shape[0]
    head = rows // n_head
    out = np.empty_like(wt)
    for h in range(n_head):
        for j in range(head // 2):
            out[h * head + 2 * j] = wt[h * head + j]
            out[h * head + 2 * j + 1] = wt[h * head + head // 2 + j]
    return out


def run_llama_cpp(path: Path, text: bytes = b"hello world", *, embedding: bool = False) -> tuple[list[int], Any]:
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, verbose=False, embedding=embedding,
                            logits_all=not embedding)
    tokens = model.tokenize(text, add_bos=embedding, special=False)
    if embedding:
        return tokens, np.array(model.embed(text.decode()))
    model.eval(tokens)
    logits = np.array(model.scores[: len(tokens)])
    return tokens, logits
