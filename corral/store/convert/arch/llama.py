"""Llama (Llama 2 and 3, SmolLM, Mistral) and Qwen2: decoder-only transformers with RMSNorm, rotary
attention with grouped key/value heads and a SwiGLU feed-forward.

Llama's rotary embedding pairs dimension i with i + d/2 in Hugging Face's layout, llama.cpp's llama
graph pairs 2i with 2i + 1: so the rows of each head of q and k are permuted (:func:`permute_qk`). Qwen2 is
evaluated by llama.cpp in Hugging Face's own layout ("NeoX" rope), so its rows stay as they are; it adds
biases to q, k and v.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from corral.store.convert.arch.base import Architecture, Config
from corral.store.convert.errors import ConvertError
from corral.store.convert.tokenizer import Metadata, Vocab

__all__ = ["Llama", "Qwen2", "llama3_rope_factors", "permute_qk", "rope_scaling_metadata"]

log = logging.getLogger(__name__)


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a q or k projection from Hugging Face's rotary layout to llama.cpp's: within each head, the
    first half and the second half of the rows are interleaved (row j of the first half, then row j of the
    second, for each j)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_settings(config: Config) -> tuple[float, dict[str, Any]]:
    """rope theta and the scaling dict, from ``rope_theta``/``rope_scaling`` or (transformers 5)
    ``rope_parameters``."""
    params = config.get("rope_parameters")
    params = params if isinstance(params, dict) else {}
    theta = config.get("rope_theta", params.get("rope_theta", 10000.0))
    if not isinstance(theta, (int, float)) or isinstance(theta, bool) or theta <= 0:
        raise ConvertError(f"config.json: rope_theta must be a positive number, not {theta!r}")
    scaling = config.get("rope_scaling") or params
    return float(theta), scaling if isinstance(scaling, dict) else {}


def rope_scaling_metadata(arch: Architecture, scaling: dict[str, Any]) -> Metadata:
    """The rope scaling keys llama.cpp reads (linear and YaRN); llama 3's kind is a tensor, written apart."""
    kind = str(scaling.get("rope_type", scaling.get("type", "default"))).lower()
    factor = scaling.get("factor")
    if kind in ("default", "llama3"):
        return []
    if kind in ("linear", "yarn") and isinstance(factor, (int, float)) and factor > 0:
        kv = [arch.kv_str("rope.scaling.type", kind), arch.kv_f32("rope.scaling.factor", factor)]
        original = scaling.get("original_max_position_embeddings")
        if kind == "yarn" and isinstance(original, int):
            kv.append(arch.kv_u32("rope.scaling.original_context_length", original))
        return kv
    # "dynamic" (NTK) and others have no llama.cpp equivalent: the model runs at its trained context
    log.warning("rope scaling %r is not converted; the model keeps its trained context", kind)
    return []


def llama3_rope_factors(scaling: dict[str, Any], theta: float, head_dim: int) -> np.ndarray:
    """Llama 3.1's frequency-dependent rope scaling as the per-frequency factors llama.cpp reads from the
    ``rope_freqs.weight`` tensor: long wavelengths are slowed by ``factor``, short ones kept, those between
    blended."""
    factor = float(scaling.get("factor", 8.0))
    low = float(scaling.get("low_freq_factor", 1.0))
    high = float(scaling.get("high_freq_factor", 4.0))
    original = float(scaling.get("original_max_position_embeddings", 8192))
    out = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * math.pi * theta ** (i / head_dim)
        if wavelength < original / high:
            out.append(1.0)
        elif wavelength > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# HF names -> GGUF names shared by the decoder-only families (a layer's names are under model.layers.N.)
DECODER_GLOBALS = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
ATTENTION = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
}
GATED_FFN = {
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


class Llama(Architecture):
    gguf_arch = "llama"
    permutes = True
    globals_: ClassVar[dict[str, str]] = DECODER_GLOBALS
    layer: ClassVar[dict[str, str]] = {
        **ATTENTION,
        "post_attention_layernorm.weight": "ffn_norm.weight",
        **GATED_FFN,
    }
    # without lm_head llama.cpp uses the token embedding as the output projection
    optional = frozenset({"output.weight"})
    dropped = (r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq",)

    def __init__(self, name: str, config: Config) -> None:
        super().__init__(name, config)
        self.hidden = config.int("hidden_size")
        self.n_head = config.int("num_attention_heads")
        self.n_kv = config.int("num_key_value_heads", self.n_head)
        self.ffn = config.int("intermediate_size")
        self.head_dim = config.int("head_dim", self.hidden // self.n_head)
        if self.n_head % self.n_kv:
            raise ConvertError(f"config.json: num_attention_heads ({self.n_head}) is not a multiple of "
                               f"num_key_value_heads ({self.n_kv})")
        if self.permutes and self.head_dim % 2:
            raise ConvertError(f"config.json: the head dimension ({self.head_dim}) must be even")
        self.tied = bool(config.get("tie_word_embeddings", False))
        self.rope_theta, self.rope_scaling = rope_settings(config)

    def gguf_name(self, hf_name: str) -> str | None:
        if self.tied and self.normalize(hf_name) == "lm_head.weight":
            return None  # a tied model's saved lm_head is the embedding again
        return super().gguf_name(hf_name)

    def expected_shapes(self, n_vocab: int) -> dict[str, tuple[int, ...]]:
        h, q, kv, f = self.hidden, self.n_head * self.head_dim, self.n_kv * self.head_dim, self.ffn
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (n_vocab, h)}
        per_layer = {
            "attn_norm.weight": (h,), "attn_q.weight": (q, h), "attn_k.weight": (kv, h),
            "attn_v.weight": (kv, h), "attn_output.weight": (h, q), "ffn_norm.weight": (h,),
            "ffn_gate.weight": (f, h), "ffn_up.weight": (f, h), "ffn_down.weight": (h, f),
            **self.biases(q, kv),
        }  # fmt: skip
        for i in range(self.n_layers):
            shapes.update({f"blk.{i}.{k}": v for k, v in per_layer.items()})
        shapes["output_norm.weight"] = (h,)
        shapes["output.weight"] = (n_vocab, h)
        return shapes

    def biases(self, q: int, kv: int) -> dict[str, tuple[int, ...]]:
        return {}

    def transform(self, name: str, values: np.ndarray) -> np.ndarray:
        if self.permutes and name.endswith(".attn_q.weight"):
            return permute_qk(values, self.n_head)
        if self.permutes and name.endswith(".attn_k.weight"):
            return permute_qk(values, self.n_kv)
        return values

    def extra_tensors(self) -> list[tuple[str, np.ndarray]]:
        kind = str(self.rope_scaling.get("rope_type", self.rope_scaling.get("type", ""))).lower()
        if kind == "llama3":
            return [("rope_freqs.weight", llama3_rope_factors(self.rope_scaling, self.rope_theta, self.head_dim))]
        return []

    def metadata(self, vocab: Vocab) -> Metadata:
        c = self.config
        kv: Metadata = [
            self.kv_u32("context_length", c.int("max_position_embeddings", 2048)),
            self.kv_u32("embedding_length", self.hidden),
            self.kv_u32("block_count", self.n_layers),
            self.kv_u32("feed_forward_length", self.ffn),
            self.kv_u32("attention.head_count", self.n_head),
            self.kv_u32("attention.head_count_kv", self.n_kv),
            self.kv_f32("rope.freq_base", self.rope_theta),
            self.kv_f32("attention.layer_norm_rms_epsilon", c.float("rms_norm_eps", 1e-6)),
            self.kv_u32("rope.dimension_count", self.head_dim),
        ]
        if self.gguf_arch == "llama":
            kv.append(self.kv_u32("vocab_size", len(vocab.tokens)))
        if c.get("head_dim") is not None:
            kv += [self.kv_u32("attention.key_length", self.head_dim),
                   self.kv_u32("attention.value_length", self.head_dim)]
        return kv + rope_scaling_metadata(self, self.rope_scaling)


class Qwen2(Llama):
    gguf_arch = "qwen2"
    permutes = False
    layer: ClassVar[dict[str, str]] = {
        **Llama.layer,
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.bias": "attn_v.bias",
    }

    def biases(self, q: int, kv: int) -> dict[str, tuple[int, ...]]:
        return {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
