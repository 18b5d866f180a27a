"""Tiny GGUF files for tests, written with the ``gguf`` package: a random llama model and a LoRA for it.

The model has random weights but a real tokenizer (every ``tokenizer.*`` key copied from a bundled
GGUF), so llama.cpp loads it, tokenizes real text and generates tokens. Its dimensions are multiples
of 256 so that the K-quants (Q4_K_M, Q6_K, ...) apply to every matrix rather than falling back.

The LoRA follows llama.cpp's adapter layout (``convert_lora_to_gguf.py``): ``general.type=adapter``,
``adapter.type=lora``, ``adapter.lora.alpha``, and for each adapted weight ``W`` of ggml shape
``[n_in, n_out]`` a pair ``W.lora_a`` of ggml shape ``[n_in, r]`` and ``W.lora_b`` of ggml shape
``[r, n_out]`` (numpy shapes are the reverse), so that llama.cpp adds ``scale * B (A x)`` to ``W x``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType, PoolingType

__all__ = ["TinyLlama", "copy_tokenizer", "write_tiny_llama", "write_tiny_lora"]

ARCH = "llama"


@dataclass(frozen=True)
class TinyLlama:
    """Shape of the model; every matrix dimension is a multiple of 256 (K-quant super-blocks)."""

    n_embd: int = 256
    n_ff: int = 512
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 4
    n_ctx: int = 512

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def copy_tokenizer(writer: GGUFWriter, source: str | Path) -> int:
    """Copy every ``tokenizer.*`` key of ``source`` into ``writer``; return the vocabulary size."""
    reader = GGUFReader(str(source))
    n_vocab = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        value = field.contents()
        if vtype == GGUFValueType.ARRAY:
            writer.add_key_value(key, value, vtype, field.types[-1])
            if key == "tokenizer.ggml.tokens":
                n_vocab = len(value)
        else:
            writer.add_key_value(key, value, vtype)
    if not n_vocab:
        raise ValueError(f"{source}: no tokenizer.ggml.tokens")
    return n_vocab


def _matrix(rng: np.random.Generator, n_out: int, n_in: int, std: float) -> np.ndarray:
    # numpy (n_out, n_in) is ggml [n_in, n_out]: llama.cpp computes W x with x of length n_in.
    return (rng.standard_normal((n_out, n_in)) * std).astype(np.float16)


def write_tiny_llama(path: str | Path, tokenizer_from: str | Path, *, shape: TinyLlama = TinyLlama(),
                     seed: int = 0, name: str = "tiny-random-llama", pooling: PoolingType | None = None) -> Path:
    """A random F16 llama model with the tokenizer of ``tokenizer_from``; returns ``path``.

    With ``pooling`` it carries ``llama.pooling_type``: an embedding model to Ollama (and corral), whose
    vectors llama.cpp pools that way.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), ARCH)
    w.add_type("model")
    w.add_name(name)
    n_vocab = copy_tokenizer(w, tokenizer_from)
    w.add_block_count(shape.n_layer)
    w.add_context_length(shape.n_ctx)
    w.add_embedding_length(shape.n_embd)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_rope_dimension_count(shape.head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(LlamaFileType.MOSTLY_F16)
    if pooling is not None:
        w.add_pooling_type(pooling)

    kv_dim = shape.head_dim * shape.n_head_kv
    # No output.weight: llama.cpp then ties the output projection to token_embd, as SmolLM2 does.
    w.add_tensor("token_embd.weight", _matrix(rng, n_vocab, shape.n_embd, 0.5))
    w.add_tensor("output_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
    for i in range(shape.n_layer):
        blk = f"blk.{i}"
        w.add_tensor(f"{blk}.attn_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
        w.add_tensor(f"{blk}.attn_q.weight", _matrix(rng, shape.n_embd, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.attn_k.weight", _matrix(rng, kv_dim, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.attn_v.weight", _matrix(rng, kv_dim, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.attn_output.weight", _matrix(rng, shape.n_embd, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.ffn_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
        w.add_tensor(f"{blk}.ffn_gate.weight", _matrix(rng, shape.n_ff, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.ffn_up.weight", _matrix(rng, shape.n_ff, shape.n_embd, 0.05))
        w.add_tensor(f"{blk}.ffn_down.weight", _matrix(rng, shape.n_embd, shape.n_ff, 0.05))
    _finish(w)
    return path


def write_tiny_lora(path: str | Path, *, shape: TinyLlama = TinyLlama(), rank: int = 8, alpha: float = 16.0,
                    seed: int = 1, std: float = 0.5) -> Path:
    """A random LoRA (F32) over every attention and feed-forward matrix of a :class:`TinyLlama`."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), ARCH)
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    kv_dim = shape.head_dim * shape.n_head_kv
    targets = {  # tensor suffix -> (n_out, n_in)
        "attn_q": (shape.n_embd, shape.n_embd),
        "attn_k": (kv_dim, shape.n_embd),
        "attn_v": (kv_dim, shape.n_embd),
        "attn_output": (shape.n_embd, shape.n_embd),
        "ffn_gate": (shape.n_ff, shape.n_embd),
        "ffn_up": (shape.n_ff, shape.n_embd),
        "ffn_down": (shape.n_embd, shape.n_ff),
    }
    for i in range(shape.n_layer):
        for suffix, (n_out, n_in) in targets.items():
            base = f"blk.{i}.{suffix}.weight"
            w.add_tensor(f"{base}.lora_a", (rng.standard_normal((rank, n_in)) * std).astype(np.float32))
            w.add_tensor(f"{base}.lora_b", (rng.standard_normal((n_out, rank)) * std).astype(np.float32))
    _finish(w)
    return path


def _finish(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
