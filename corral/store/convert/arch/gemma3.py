"""Gemma 3, text only: a decoder with RMSNorm before and after both attention and feed-forward, norms on q
and k, local (sliding-window) and global attention layers, and tied embeddings.

Gemma's RMSNorm multiplies by ``1 + weight``; llama.cpp multiplies by the stored weight, so 1 is added to
every norm here. llama.cpp scales the token embeddings by sqrt(hidden size) itself, evaluates rope in Hugging
Face's own layout (no q/k permutation), and lays the local and global layers out itself (every sixth layer
global). A multimodal checkpoint (``Gemma3ForConditionalGeneration``) converts to its language model: its
settings are under ``text_config``, its vision tower and projector are left out.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from corral.store.convert.arch.base import Architecture, Config
from corral.store.convert.arch.llama import ATTENTION, DECODER_GLOBALS, GATED_FFN, rope_scaling_metadata
from corral.store.convert.errors import ConvertError
from corral.store.convert.tokenizer import Metadata, Vocab

__all__ = ["Gemma3", "gemma3_text_config"]

log = logging.getLogger(__name__)

# Gemma3TextConfig's defaults: a multimodal config.json leaves many of them out of text_config
_TEXT_DEFAULTS: dict[str, Any] = {
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0, "sliding_window": 4096,
    "max_position_embeddings": 131072, "query_pre_attn_scalar": 256, "tie_word_embeddings": True,
}  # fmt: skip


def gemma3_text_config(raw: dict[str, Any]) -> Config:
    """The language model's settings of a multimodal Gemma 3 config.json."""
    text = raw.get("text_config")
    if not isinstance(text, dict):
        raise ConvertError("config.json: Gemma3ForConditionalGeneration needs a text_config object")
    return Config({**_TEXT_DEFAULTS, **{k: v for k, v in text.items() if v is not None}}, "config.json text_config")


class Gemma3(Architecture):
    gguf_arch = "gemma3"
    globals_: ClassVar[dict[str, str]] = DECODER_GLOBALS
    layer: ClassVar[dict[str, str]] = {
        **ATTENTION,
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "post_attention_layernorm.weight": "post_attention_norm.weight",
        "pre_feedforward_layernorm.weight": "ffn_norm.weight",
        "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
        **GATED_FFN,
    }
    optional = frozenset({"output.weight"})
    dropped = (r"(model\.)?(vision_tower|multi_modal_projector)\..*",)

    def __init__(self, name: str, config: Config) -> None:
        super().__init__(name, config)
        if config.get("attn_logit_softcapping") is not None:
            raise ConvertError("config.json: attn_logit_softcapping is set, which Gemma 3 does not have")
        self.hidden = config.int("hidden_size")
        self.ffn = config.int("intermediate_size")
        self.n_head = config.int("num_attention_heads", 8)
        self.n_kv = config.int("num_key_value_heads", 4)
        self.head_dim = config.int("head_dim", 256)
        self.tied = bool(config.get("tie_word_embeddings", True))
        scalar = config.get("query_pre_attn_scalar")
        if scalar is not None and scalar not in (self.head_dim, self.hidden // self.n_head):
            # llama.cpp scales attention by 1/sqrt(head_dim) (by hidden/heads for the 27B model) and reads no
            # key for anything else
            log.warning("query_pre_attn_scalar %r is neither head_dim nor hidden_size/heads: llama.cpp will "
                        "scale attention by 1/sqrt(head_dim)", scalar)

    def normalize(self, hf_name: str) -> str:
        # the language model of a multimodal checkpoint: "language_model.model.x" (transformers < 4.52) or
        # "model.language_model.x", "language_model.lm_head.weight"
        if hf_name.startswith("model.language_model."):
            return "model." + hf_name[len("model.language_model."):]
        if hf_name.startswith("language_model."):
            return hf_name[len("language_model."):]
        return hf_name

    def gguf_name(self, hf_name: str) -> str | None:
        if self.tied and self.normalize(hf_name) == "lm_head.weight":
            return None
        return super().gguf_name(hf_name)

    def expected_shapes(self, n_vocab: int) -> dict[str, tuple[int, ...]]:
        h, q, kv, f, d = self.hidden, self.n_head * self.head_dim, self.n_kv * self.head_dim, self.ffn, self.head_dim
        per_layer = {
            "attn_norm.weight": (h,), "attn_q.weight": (q, h), "attn_k.weight": (kv, h), "attn_v.weight": (kv, h),
            "attn_output.weight": (h, q), "attn_q_norm.weight": (d,), "attn_k_norm.weight": (d,),
            "post_attention_norm.weight": (h,), "ffn_norm.weight": (h,), "post_ffw_norm.weight": (h,),
            "ffn_gate.weight": (f, h), "ffn_up.weight": (f, h), "ffn_down.weight": (h, f),
        }  # fmt: skip
        shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (n_vocab, h)}
        for i in range(self.n_layers):
            shapes.update({f"blk.{i}.{k}": v for k, v in per_layer.items()})
        shapes["output_norm.weight"] = (h,)
        shapes["output.weight"] = (n_vocab, h)
        return shapes

    def transform(self, name: str, values: np.ndarray) -> np.ndarray:
        if name.endswith("norm.weight"):
            return values + np.float32(1.0)
        return values

    def metadata(self, vocab: Vocab) -> Metadata:
        c = self.config
        kv: Metadata = [
            self.kv_u32("context_length", c.int("max_position_embeddings", 131072)),
            self.kv_u32("embedding_length", self.hidden),
            self.kv_u32("block_count", self.n_layers),
            self.kv_u32("feed_forward_length", self.ffn),
            self.kv_u32("attention.head_count", self.n_head),
            self.kv_u32("attention.head_count_kv", self.n_kv),
            self.kv_f32("attention.layer_norm_rms_epsilon", c.float("rms_norm_eps", 1e-6)),
            self.kv_u32("attention.key_length", self.head_dim),
            self.kv_u32("attention.value_length", self.head_dim),
            self.kv_f32("rope.freq_base", c.float("rope_theta", 1_000_000.0)),
            self.kv_f32("rope.freq_base_swa", c.float("rope_local_base_freq", 10_000.0)),
        ]
        if c.get("final_logit_softcapping") is not None:
            kv.append(self.kv_f32("final_logit_softcapping", c.float("final_logit_softcapping")))
        if c.get("sliding_window_pattern") != 1 and c.get("sliding_window") is not None:
            kv.append(self.kv_u32("attention.sliding_window", c.int("sliding_window")))
        scaling = c.get("rope_scaling")
        if isinstance(scaling, dict):
            kv += rope_scaling_metadata(self, scaling)
        return kv
