"""What every architecture shares: reading config.json, mapping tensor names, checking shapes, choosing types.

An architecture is a table: Hugging Face tensor names (whole names for the embeddings and final norm, suffixes
after ``<prefix><i>.`` for a layer's tensors) against llama.cpp's GGUF names, the shape llama.cpp expects of
each, the names to drop, and the metadata it writes. :meth:`Architecture.plan` checks a folder's tensors
against the table before anything is written: a name outside it, a duplicate, a missing tensor or a wrong
shape is a :class:`ConvertError` that names the tensor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gguf import GGUFValueType

from corral.store.convert.errors import ConvertError
from corral.store.convert.safetensors import TensorRef, WeightSet
from corral.store.convert.tokenizer import Metadata, Vocab

__all__ = ["Architecture", "Config", "PlannedTensor"]

_MISSING: Any = object()
# tensors llama.cpp's converter keeps in F32 whatever the output type (besides 1-D ones and norms)
_ALWAYS_F32 = ("position_embd.weight", "token_types.weight", "rope_freqs.weight")


class Config:
    """config.json's values, read with checks: a wrong type is a ConvertError naming the key."""

    def __init__(self, raw: dict[str, Any], source: str = "config.json") -> None:
        self.raw = raw
        self.source = source

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def int(self, key: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        value = self.raw.get(key)
        if value is None:
            if default is _MISSING:
                raise ConvertError(f"{self.source} has no {key}")
            return int(default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConvertError(f"{self.source}: {key} must be an integer of at least {minimum}, not {value!r}")
        return value

    def float(self, key: str, default: Any = _MISSING) -> float:
        value = self.raw.get(key)
        if value is None:
            if default is _MISSING:
                raise ConvertError(f"{self.source} has no {key}")
            return float(default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConvertError(f"{self.source}: {key} must be a number, not {value!r}")
        return float(value)


@dataclass
class PlannedTensor:
    """One tensor of the output: its GGUF name, shape (numpy order), type, and how to compute its values."""

    name: str
    shape: tuple[int, ...]
    f32: bool
    values: Callable[[], np.ndarray]  # float32, already transformed

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


class Architecture:
    """A model family's conversion rules; subclasses fill in the tables and the metadata."""

    gguf_arch: ClassVar[str]
    embedding_only: ClassVar[bool] = False
    wordpiece: ClassVar[bool] = False  # the tokenizer must be BERT's WordPiece
    layer_prefix: ClassVar[str] = "model.layers."
    embedding: ClassVar[str] = "model.embed_tokens.weight"  # its rows are the vocabulary
    globals_: ClassVar[dict[str, str]] = {}  # HF name -> GGUF name
    layer: ClassVar[dict[str, str]] = {}  # HF suffix -> GGUF suffix (after blk.<i>.)
    optional: ClassVar[frozenset[str]] = frozenset()  # GGUF names or suffixes that may be absent
    dropped: ClassVar[tuple[str, ...]] = ()  # regexes of HF names left out

    def __init__(self, name: str, config: Config) -> None:
        self.name = name
        self.config = config
        self.n_layers = config.int("num_hidden_layers")

    # --- names ------------------------------------------------------------------------------------------

    def normalize(self, hf_name: str) -> str:
        """An HF name as the tables spell it (a subclass strips prefixes some checkpoints add)."""
        return hf_name

    def gguf_name(self, hf_name: str) -> str | None:
        """The GGUF name of a tensor, None for one to drop; a ConvertError for one the model cannot have."""
        name = self.normalize(hf_name)
        if any(re.fullmatch(p, name) for p in self.dropped):
            return None
        if name in self.globals_:
            return self.globals_[name]
        if name.startswith(self.layer_prefix):
            index, _, suffix = name[len(self.layer_prefix):].partition(".")
            if index.isdigit() and suffix in self.layer and str(int(index)) == index:
                if int(index) >= self.n_layers:
                    raise ConvertError(f"tensor {hf_name!r} is in layer {index}, but config.json says "
                                       f"num_hidden_layers is {self.n_layers}")
                return f"blk.{index}.{self.layer[suffix]}"
        raise ConvertError(f"unexpected tensor {hf_name!r} for {self.name}")

    def _hf_name_of(self, gguf: str) -> str:
        for hf, g in self.globals_.items():
            if g == gguf:
                return hf
        _, index, suffix = gguf.split(".", 2)
        for hf, g in self.layer.items():
            if g == suffix:
                return f"{self.layer_prefix}{index}.{hf}"
        return gguf

    # --- shapes, types, values ----------------------------------------------------------------------------

    def expected_shapes(self, n_vocab: int) -> dict[str, tuple[int, ...]]:
        """Every GGUF tensor the model may have, with its shape (numpy order, as in safetensors)."""
        raise NotImplementedError

    def transform(self, name: str, values: np.ndarray) -> np.ndarray:
        """Values as llama.cpp wants them (a permutation, an offset); float32 in and out."""
        return values

    def extra_tensors(self) -> list[tuple[str, np.ndarray]]:
        """Tensors computed from the config rather than read (llama 3's rope factors)."""
        return []

    def metadata(self, vocab: Vocab) -> Metadata:
        raise NotImplementedError

    def vocab_rows(self, weights: WeightSet) -> int:
        ref = self._find(weights, self.embedding)
        if ref is None:
            raise ConvertError(f"missing tensor {self.embedding!r}")
        if len(ref.shape) != 2 or ref.shape[0] == 0:
            raise ConvertError(f"tensor {ref.name!r} has shape {list(ref.shape)}, not [vocabulary, hidden size]")
        return ref.shape[0]

    def _find(self, weights: WeightSet, normalized: str) -> TensorRef | None:
        for ref in weights:
            if self.normalize(ref.name) == normalized:
                return ref
        return None

    def map_names(self, weights: WeightSet) -> dict[str, TensorRef]:
        """The tensors to convert by GGUF name; a ConvertError for a name or dtype the model cannot have."""
        mapped: dict[str, TensorRef] = {}
        for ref in weights:
            name = self.gguf_name(ref.name)
            if name is None:
                continue
            if name in mapped:
                raise ConvertError(f"tensors {mapped[name].name!r} and {ref.name!r} are the same tensor")
            if ref.dtype not in ("F32", "F16", "BF16", "F64"):
                raise ConvertError(f"{ref.file.name}: tensor {ref.name!r} has dtype {ref.dtype}; only F32, F16, "
                                   "BF16 and F64 weights can be converted")
            mapped[name] = ref
        return mapped

    def plan(self, weights: WeightSet) -> list[PlannedTensor]:
        """Every output tensor, checked against the table: none missing, every shape as config.json implies."""
        mapped = self.map_names(weights)
        expected = self.expected_shapes(self.vocab_rows(weights))
        out: list[PlannedTensor] = []
        for name, shape in expected.items():
            found = mapped.pop(name, None)
            if found is None:
                if name in self.optional or name.split(".", 2)[-1] in self.optional:
                    continue
                raise ConvertError(f"missing tensor {self._hf_name_of(name)!r} for {self.name}")
            if found.shape != shape:
                raise ConvertError(f"{found.file.name}: tensor {found.name!r} has shape {list(found.shape)}, "
                                   f"config.json implies {list(shape)}")
            out.append(PlannedTensor(name, shape, self._is_f32(name, shape), self._reader(name, found)))
        if mapped:  # a name the table maps but the shapes do not list: a bug in the table, not the input
            raise ConvertError(f"unexpected tensor {next(iter(mapped.values())).name!r} for {self.name}")
        for name, values in self.extra_tensors():
            out.append(PlannedTensor(name, values.shape, True, _constant(values)))
        return out

    def _reader(self, name: str, ref: TensorRef) -> Callable[[], np.ndarray]:
        return lambda: self.transform(name, ref.load())

    @staticmethod
    def _is_f32(name: str, shape: tuple[int, ...]) -> bool:
        return len(shape) <= 1 or name.endswith("_norm.weight") or name in _ALWAYS_F32

    # --- metadata helpers ---------------------------------------------------------------------------------

    def kv_u32(self, key: str, value: int) -> tuple[str, Any, GGUFValueType]:
        return f"{self.gguf_arch}.{key}", int(value), GGUFValueType.UINT32

    def kv_f32(self, key: str, value: float) -> tuple[str, Any, GGUFValueType]:
        return f"{self.gguf_arch}.{key}", float(value), GGUFValueType.FLOAT32

    def kv_bool(self, key: str, value: bool) -> tuple[str, Any, GGUFValueType]:
        return f"{self.gguf_arch}.{key}", bool(value), GGUFValueType.BOOL

    def kv_str(self, key: str, value: str) -> tuple[str, Any, GGUFValueType]:
        return f"{self.gguf_arch}.{key}", str(value), GGUFValueType.STRING


def _constant(values: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: values
