"""A safetensors reader that trusts nothing in the file, and the weight set of a folder (one file or shards).

A safetensors file is an 8-byte little-endian header length, a JSON header mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the data section that follows the
header), and the data. The header is checked whole before any tensor is read: its length within the file,
every dtype known, every shape a list of non-negative integers, every byte range inside the data section,
as long as the shape says, and not overlapping another. Tensors are then read through a memory map, one at
a time, so a model is never held in memory whole.

Tensor names are dictionary keys only; they never become paths.
"""

from __future__ import annotations

import itertools
import json
import math
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from corral.store.convert.errors import ConvertError
from corral.store.convert.folder import HFFolder

__all__ = ["DTYPE_SIZES", "SafetensorsFile", "TensorRef", "WeightSet", "bf16_to_f32", "open_weights"]

MAX_HEADER_BYTES = 100 << 20  # the format's own reference implementation refuses more
INDEX_NAME = "model.safetensors.index.json"

# every dtype the format defines, with its size in bytes; only the float ones can be converted
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_NUMPY_FLOATS = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) as float32: a bfloat16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True)
class TensorRef:
    """One tensor of one file: where its bytes are, not the bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: SafetensorsFile
    begin: int  # absolute offset in the file
    nbytes: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    def load(self) -> np.ndarray:
        """The tensor as a new float32 array (a copy: the memory map is not kept alive by it)."""
        if self.dtype == "BF16":
            raw = self.file.view(self.begin, self.nbytes, "<u2")
            out = bf16_to_f32(raw)
        elif self.dtype in _NUMPY_FLOATS:
            out = self.file.view(self.begin, self.nbytes, _NUMPY_FLOATS[self.dtype]).astype(np.float32)
        else:
            raise ConvertError(f"{self.file.name}: tensor {self.name!r} has dtype {self.dtype}; "
                               "only F32, F16, BF16 and F64 weights can be converted")
        return out.reshape(self.shape)


class SafetensorsFile:
    """One validated safetensors file; its data is mapped on first use and unmapped by :meth:`close`."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._map: mmap.mmap | None = None
        self._fh: Any = None
        self.tensors: dict[str, TensorRef] = {}
        self._read_header()

    def _fail(self, why: str) -> ConvertError:
        return ConvertError(f"{self.name}: {why}")

    def _read_header(self) -> None:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as fh:
                prefix = fh.read(8)
                if len(prefix) < 8:
                    raise self._fail(f"not a safetensors file (only {size} bytes)")
                (length,) = struct.unpack("<Q", prefix)
                if length < 2 or length > MAX_HEADER_BYTES:
                    raise self._fail(f"not a safetensors file (header length {length})")
                if 8 + length > size:
                    raise self._fail(f"truncated: its header says {length} bytes but the file has {size - 8}")
                header_bytes = fh.read(length)
        except OSError as e:
            raise self._fail(f"cannot read: {e.strerror or e}") from None
        if len(header_bytes) != length:
            raise self._fail("truncated while reading its header")
        try:
            header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise self._fail(f"its header is not valid JSON: {e}") from None
        if not isinstance(header, dict):
            raise self._fail("its header is not a JSON object")
        data_start = 8 + length
        data_size = size - data_start
        spans: list[tuple[int, int, str]] = []
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            dtype, shape, begin, end = self._check_entry(name, entry, data_size)
            if end > begin:
                spans.append((begin, end, name))
            self.tensors[name] = TensorRef(name, dtype, shape, self, data_start + begin, end - begin)
        spans.sort()
        for (_, prev_end, prev), (begin, _, name) in itertools.pairwise(spans):
            if begin < prev_end:
                raise self._fail(f"tensors {prev!r} and {name!r} overlap")

    def _check_entry(self, name: str, entry: Any, data_size: int) -> tuple[str, tuple[int, ...], int, int]:
        if not isinstance(entry, dict):
            raise self._fail(f"tensor {name!r}: its header entry is not an object")
        dtype = entry.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise self._fail(f"tensor {name!r} has an unknown dtype {dtype!r}")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise self._fail(f"tensor {name!r} has an invalid shape {shape!r}")
        offsets = entry.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
            raise self._fail(f"tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if begin > end or end > data_size:
            raise self._fail(f"tensor {name!r} lies outside the file (bytes {begin}..{end} of a data section of "
                             f"{data_size}): the file is truncated or its header is wrong")
        expected = math.prod(shape) * DTYPE_SIZES[dtype]
        if end - begin != expected:
            raise self._fail(f"tensor {name!r}: shape {shape} of {dtype} needs {expected} bytes, "
                             f"its data_offsets give {end - begin}")
        return dtype, tuple(shape), begin, end

    def view(self, begin: int, nbytes: int, dtype: str) -> np.ndarray:
        if self._map is None:
            try:
                self._fh = self.path.open("rb")
                self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as e:
                raise self._fail(f"cannot map: {e}") from None
            if len(self._map) < begin + nbytes:  # the file shrank since its header was checked
                raise self._fail("truncated")
        item = np.dtype(dtype).itemsize
        return np.frombuffer(self._map, dtype=dtype, count=nbytes // item, offset=begin)

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # an array still points into it; the map goes with the last of them
                pass
            self._map = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class WeightSet:
    """Every tensor of a folder's weights, by name, whichever file it is in."""

    def __init__(self, files: list[SafetensorsFile]) -> None:
        self.files = files
        self.tensors: dict[str, TensorRef] = {}
        for f in files:
            for name, ref in f.tensors.items():
                if name in self.tensors:
                    raise ConvertError(f"tensor {name!r} is in both {self.tensors[name].file.name} and {f.name}")
                self.tensors[name] = ref

    def __iter__(self) -> Iterator[TensorRef]:
        return iter(self.tensors.values())

    def close(self) -> None:
        for f in self.files:
            f.close()


def open_weights(folder: HFFolder) -> WeightSet:
    """The folder's safetensors weights: the shards its ``model.safetensors.index.json`` names (each must be
    there, and hold what the index says), else every ``*.safetensors`` at the top of the folder."""
    if INDEX_NAME in folder:
        index = folder.json_object(INDEX_NAME)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConvertError(f"{INDEX_NAME} has no weight_map")
        shards: list[str] = []
        for tensor, shard in weight_map.items():
            if not isinstance(shard, str):
                raise ConvertError(f"{INDEX_NAME}: tensor {tensor!r} maps to {shard!r}, not a file name")
            if shard not in folder:
                raise ConvertError(f"{INDEX_NAME} names the shard {shard!r}, which is not in the folder")
            if shard not in shards:
                shards.append(shard)
        weights = WeightSet([SafetensorsFile(s, folder.path(s)) for s in sorted(shards)])
        for tensor, shard in weight_map.items():
            ref = weights.tensors.get(tensor)
            if ref is None or ref.file.name != shard:
                weights.close()
                raise ConvertError(f"{INDEX_NAME} puts tensor {tensor!r} in {shard}, which does not hold it")
        return weights
    names = folder.top_level(".safetensors")
    if len(names) > 1:
        # Mistral's repositories also carry their own-format consolidated.safetensors beside the HF shards
        names = [n for n in names if not n.startswith("consolidated")] or names
    if not names:
        raise ConvertError("the folder has no weights: no *.safetensors file")
    return WeightSet([SafetensorsFile(n, folder.path(n)) for n in names])


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out
