"""The architectures corral converts, chosen from config.json."""

from __future__ import annotations

from typing import Any

from corral.store.convert.arch.base import Architecture, Config, PlannedTensor
from corral.store.convert.arch.bert import Bert, pooling_type
from corral.store.convert.arch.gemma3 import Gemma3, gemma3_text_config
from corral.store.convert.arch.llama import Llama, Qwen2, permute_qk
from corral.store.convert.errors import ConvertError
from corral.store.convert.folder import HFFolder

__all__ = ["Architecture", "Config", "PlannedTensor", "detect", "permute_qk"]

_CAUSAL: dict[str, type[Architecture]] = {
    "LlamaForCausalLM": Llama,
    "MistralForCausalLM": Llama,
    "Qwen2ForCausalLM": Qwen2,
    "Gemma3ForCausalLM": Gemma3,
}
_BY_MODEL_TYPE = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                  "gemma3_text": "Gemma3ForCausalLM"}


def detect(raw: dict[str, Any], folder: HFFolder) -> Architecture:
    """The architecture of config.json's ``architectures[0]`` (or, without it, its ``model_type``)."""
    names = raw.get("architectures")
    model_type = raw.get("model_type")
    if isinstance(names, list) and names and isinstance(names[0], str):
        name = names[0]
    elif isinstance(model_type, str) and model_type in _BY_MODEL_TYPE:
        name = _BY_MODEL_TYPE[model_type]
    elif model_type == "bert":
        name = "BertModel"
    else:
        raise ConvertError("config.json names no architecture (no \"architectures\" and no known \"model_type\")")
    if name in _CAUSAL:
        return _CAUSAL[name](name, Config(raw))
    if name == "Gemma3ForConditionalGeneration":
        return Gemma3(name, gemma3_text_config(raw))
    if model_type == "bert" and name.startswith("Bert"):
        return Bert(name, Config(raw), pooling_type(folder))
    raise ConvertError(f"unsupported architecture \"{name}\": corral converts Llama, Mistral, Qwen2, Gemma 3 "
                       "and BERT models")
