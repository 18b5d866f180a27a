"""BERT encoders (sentence-transformers' embedding models: all-MiniLM, bge, ...) for embeddings only.

Token, position and token-type embeddings with a LayerNorm, then post-norm layers of biased attention and a
GELU feed-forward. The pooler and the pre-training heads are dropped: llama.cpp pools the last hidden states
itself, the way the sentence-transformers Pooling module says (mean when there is none).
"""

from __future__ import annotations

from typing import ClassVar

from gguf import GGUFValueType

from corral.store.convert.arch.base import Architecture, Config
from corral.store.convert.errors import ConvertError
from corral.store.convert.folder import HFFolder
from corral.store.convert.tokenizer import Metadata, Vocab

__all__ = ["Bert", "pooling_type"]

POOLING_MEAN, POOLING_CLS, POOLING_LAST = 1, 2, 3  # llama.cpp's enum llama_pooling_type


def pooling_type(folder: HFFolder) -> int:
    """The pooling of the folder's sentence-transformers Pooling module (``modules.json`` names its folder,
    usually ``1_Pooling``); mean when the folder has none."""
    path = "1_Pooling"
    if "modules.json" in folder:
        modules = folder.json("modules.json")
        if not isinstance(modules, list):
            raise ConvertError("modules.json must hold a list of modules")
        for module in modules:
            if isinstance(module, dict) and module.get("type") == "sentence_transformers.models.Pooling":
                path = str(module.get("path") or "").strip("/")
                break
    name = f"{path}/config.json" if path else "config.json"
    if path == "" or name not in folder:
        return POOLING_MEAN
    pooling = folder.json_object(name)
    if pooling.get("pooling_mode_mean_tokens"):
        return POOLING_MEAN
    if pooling.get("pooling_mode_cls_token"):
        return POOLING_CLS
    if pooling.get("pooling_mode_lasttoken"):
        return POOLING_LAST
    raise ConvertError(f"{name}: only mean, CLS and last-token pooling can be converted")


class Bert(Architecture):
    gguf_arch = "bert"
    embedding_only = True
    wordpiece = True
    layer_prefix = "encoder.layer."
    embedding = "embeddings.word_embeddings.weight"
    globals_: ClassVar[dict[str, str]] = {
        "embeddings.word_embeddings.weight": "token_embd.weight",
        "embeddings.position_embeddings.weight": "position_embd.weight",
        "embeddings.token_type_embeddings.weight": "token_types.weight",
        "embeddings.LayerNorm.weight": "token_embd_norm.weight",
        "embeddings.LayerNorm.bias": "token_embd_norm.bias",
    }
    layer: ClassVar[dict[str, str]] = {
        f"{hf}.{part}": f"{gguf}.{part}"
        for hf, gguf in (
            ("attention.self.query", "attn_q"), ("attention.self.key", "attn_k"),
            ("attention.self.value", "attn_v"), ("attention.output.dense", "attn_output"),
            ("attention.output.LayerNorm", "attn_output_norm"), ("intermediate.dense", "ffn_up"),
            ("output.dense", "ffn_down"), ("output.LayerNorm", "layer_output_norm"),
        )
        for part in ("weight", "bias")
    }  # fmt: skip
    # the pooler and the heads of BertForMaskedLM, BertForPreTraining and the like
    dropped = (r"embeddings\.position_ids", r"pooler\..*", r"cls\..*", r"classifier\..*", r"qa_outputs\..*")

    def __init__(self, name: str, config: Config, pooling: int = POOLING_MEAN) -> None:
        super().__init__(name, config)
        self.hidden = config.int("hidden_size")
        self.n_head = config.int("num_attention_heads")
        self.ffn = config.int("intermediate_size")
        self.n_positions = config.int("max_position_embeddings")
        self.n_types = config.int("type_vocab_size", 2)
        self.pooling = pooling
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ConvertError(f"config.json: position_embedding_type {config.get('position_embedding_type')!r} "
                               "cannot be converted (only absolute)")
        if self.hidden % self.n_head:
            raise ConvertError(f"config.json: hidden_size ({self.hidden}) is not a multiple of "
                               f"num_attention_heads ({self.n_head})")

    def normalize(self, hf_name: str) -> str:
        name = hf_name[len("bert."):] if hf_name.startswith("bert.") else hf_name
        # checkpoints from TensorFlow days call LayerNorm's weight and bias gamma and beta
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
        return name

    def expected_shapes(self, n_vocab: int) -> dict[str, tuple[int, ...]]:
        h, f = self.hidden, self.ffn
        shapes: dict[str, tuple[int, ...]] = {
            "token_embd.weight": (n_vocab, h), "position_embd.weight": (self.n_positions, h),
            "token_types.weight": (self.n_types, h), "token_embd_norm.weight": (h,), "token_embd_norm.bias": (h,),
        }  # fmt: skip
        per_layer: dict[str, tuple[int, ...]] = {}
        for name, rows, cols in (("attn_q", h, h), ("attn_k", h, h), ("attn_v", h, h), ("attn_output", h, h),
                                 ("ffn_up", f, h), ("ffn_down", h, f)):
            per_layer[f"{name}.weight"] = (rows, cols)
            per_layer[f"{name}.bias"] = (rows,)
        for norm in ("attn_output_norm", "layer_output_norm"):
            per_layer[f"{norm}.weight"] = (h,)
            per_layer[f"{norm}.bias"] = (h,)
        for i in range(self.n_layers):
            shapes.update({f"blk.{i}.{k}": v for k, v in per_layer.items()})
        return shapes

    def metadata(self, vocab: Vocab) -> Metadata:
        return [
            self.kv_u32("context_length", self.n_positions),
            self.kv_u32("embedding_length", self.hidden),
            self.kv_u32("feed_forward_length", self.ffn),
            self.kv_u32("block_count", self.n_layers),
            self.kv_u32("attention.head_count", self.n_head),
            self.kv_f32("attention.layer_norm_epsilon", self.config.float("layer_norm_eps", 1e-12)),
            self.kv_bool("attention.causal", False),
            (f"{self.gguf_arch}.pooling_type", self.pooling, GGUFValueType.UINT32),
        ]
