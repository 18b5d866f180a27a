"""Hugging Face folders (safetensors weights, config.json, tokenizer.json) converted to one F16 GGUF.

This is ``/api/create`` with a ``files`` map that is a model folder rather than a GGUF: Ollama's "converting
model" step. The result has llama.cpp's tensor names, layouts and metadata for the architecture, 2-D weights
in F16 and vectors in F32 (``general.file_type`` MOSTLY_F16), so the store can quantize it afterwards.

::

    convert_folder(files, out)     files: name in the folder -> path on disk; writes the GGUF at out
     ├── folder.py                 file names checked, JSON read
     ├── safetensors.py            the weights: headers validated, tensors memory-mapped one at a time
     ├── arch/                     per architecture: tensor names, shapes, transforms, metadata
     │    (llama.py: Llama/Mistral, Qwen2; gemma3.py; bert.py)
     ├── tokenizer.py              tokenizer.json as llama.cpp's vocabulary (gpt2, llama or bert)
     └── writer.py                 the GGUF, streamed tensor by tensor

Every bad input is a :class:`ConvertError` naming the file, tensor or architecture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from corral.store.convert.arch import detect
from corral.store.convert.errors import ConvertError
from corral.store.convert.folder import HFFolder
from corral.store.convert.safetensors import open_weights
from corral.store.convert.tokenizer import check_tokenizer_files, load_vocab
from corral.store.convert.writer import write_gguf

__all__ = ["ConvertError", "ConvertInfo", "convert_folder", "is_hf_folder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertInfo:
    architecture: str  # general.architecture: "llama", "qwen2", "gemma3", "bert"
    parameter_count: int
    file_type: str  # "F16"
    embedding_only: bool


def is_hf_folder(names: Iterable[str]) -> bool:
    """True when a create's ``files`` map is a Hugging Face folder (has config.json or any ``*.safetensors``),
    False for GGUF uploads."""
    return any(name == "config.json" or name.endswith(".safetensors") for name in names)


def convert_folder(files: Mapping[str, Path], out: Path, *,
                   progress: Callable[[str], None] | None = None) -> ConvertInfo:
    """Convert the folder whose files are ``files`` (name relative to the folder -> readable path) into one
    GGUF written at ``out``. On a ConvertError ``out`` may be partly written: the caller removes it."""
    if progress is not None:
        progress("converting model")
    folder = HFFolder(files)
    if "config.json" not in folder:
        raise ConvertError("the folder has no config.json")
    raw = folder.json_object("config.json")
    arch = detect(raw, folder)
    check_tokenizer_files(folder, wordpiece=arch.wordpiece)
    weights = open_weights(folder)
    try:
        tensors = arch.plan(weights)
        n_vocab = arch.vocab_rows(weights)
        vocab = load_vocab(folder, raw if not isinstance(raw.get("text_config"), dict) else
                           {**raw["text_config"], **{k: v for k, v in raw.items() if k.endswith("_token_id")}},
                           n_vocab=n_vocab, wordpiece=arch.wordpiece)
        metadata = [*arch.metadata(vocab), *vocab.metadata()]
        write_gguf(out, arch.gguf_arch, metadata, tensors)
    finally:
        weights.close()
    log.info("converted a %s model: %d tensors", arch.name, len(tensors))
    return ConvertInfo(architecture=arch.gguf_arch, parameter_count=sum(t.n_elements for t in tensors),
                       file_type="F16", embedding_only=arch.embedding_only)
