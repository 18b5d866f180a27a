"""A header-only GGUF reader: key/value metadata and tensor infos, never tensor data.

The server reads GGUF headers for ``/api/show``, ``/api/tags`` details, capabilities and memory
estimates; it must not pull numpy or map gigabytes to do so.  The header is parsed from a buffer
read from the start of the file (grown and re-parsed in the rare case it is too small).  Arrays of
more than :data:`LAZY_ARRAY_THRESHOLD` items (the vocabulary, merges, scores) are only skipped over
and kept as :class:`GGUFArray` handles that read their values on demand, so a cached header costs
kilobytes, not the tens of megabytes a decoded 262k-token vocabulary would.

Parsed headers are cached by (path, size, mtime): a blob never changes, and a replaced file gets a
new mtime.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.store.errors import GGUFError
from corral.store.ggml_types import (
    FILE_TYPE_NAMES,
    TENSOR_TYPE_NAMES,
    ValueType,
    float32_shortest,
    human_number,
    scalar_formats,
)

__all__ = [
    "FILE_TYPE_NAMES",
    "LAZY_ARRAY_THRESHOLD",
    "TENSOR_TYPE_NAMES",
    "GGUFArray",
    "GGUFMetadata",
    "TensorInfo",
    "ValueType",
    "clear_cache",
    "float32_shortest",
    "human_number",
    "read_metadata",
]

GGUF_MAGIC = b"GGUF"
LAZY_ARRAY_THRESHOLD = 1024
_INITIAL_READ = 8 << 20
_CACHE_SIZE = 64


class _Short(Exception):
    """The buffer ended inside the header: read more and parse again."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def type(self) -> str:
        return TENSOR_TYPE_NAMES.get(self.type_id, f"type_{self.type_id}")

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def to_dict(self) -> dict[str, Any]:
        """``{name, type, shape}`` as ``/api/show`` lists tensors."""
        return {"name": self.name, "type": self.type, "shape": list(self.shape)}


@dataclass(frozen=True)
class GGUFArray:
    """A large array left undecoded: ``count`` items of ``item_type`` at ``offset`` in ``path``."""

    path: str
    item_type: int
    count: int
    offset: int
    nbytes: int
    byte_order: str
    version: int = 3

    def __len__(self) -> int:
        return self.count

    def values(self) -> list[Any]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.nbytes)
        if len(data) != self.nbytes:
            raise GGUFError(f"{self.path}: truncated array")
        parser = _Parser(data, self.byte_order, version=self.version, path=self.path)
        return parser.array_items(self.item_type, self.count)

    def item(self, index: int) -> Any:
        """One item; strings are found by walking the lengths, without decoding the others."""
        if not 0 <= index < self.count:
            raise IndexError(index)
        if self.item_type != ValueType.STRING:
            return self.values()[index]
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.nbytes)
        step = 4 if self.version == 1 else 8
        unpack = struct.Struct(self.byte_order + ("I" if step == 4 else "Q")).unpack_from
        off = 0
        for _ in range(index):
            off += step + unpack(data, off)[0]
        (n,) = unpack(data, off)
        return data[off + step : off + step + n].decode("utf-8", "replace")


class _Parser:
    def __init__(self, buf: bytes, byte_order: str, version: int, path: str) -> None:
        self.buf = buf
        self.off = 0
        self.bo = byte_order
        self.path = path
        self.version = version
        # GGUF v1 used 32-bit counts and string lengths; v2 and v3 use 64-bit ones.
        self.len_fmt = "I" if version == 1 else "Q"
        self.len_size = 4 if version == 1 else 8

    def _unpack(self, fmt: str, size: int) -> Any:
        if self.off + size > len(self.buf):
            raise _Short
        (value,) = struct.unpack_from(self.bo + fmt, self.buf, self.off)
        self.off += size
        return value

    def u32(self) -> int:
        return int(self._unpack("I", 4))

    def length(self) -> int:
        return int(self._unpack(self.len_fmt, self.len_size))

    def string(self) -> str:
        n = self.length()
        end = self.off + n
        if end > len(self.buf):
            raise _Short
        raw = self.buf[self.off : end]
        self.off = end
        # Go keeps invalid UTF-8 and its JSON encoder turns it into U+FFFD; do the same up front.
        return raw.decode("utf-8", "replace")

    def value(self, vtype: int) -> Any:
        if vtype == ValueType.STRING:
            return self.string()
        if vtype == ValueType.ARRAY:
            item_type = self.u32()
            count = self.length()
            if count > LAZY_ARRAY_THRESHOLD:
                start = self.off
                self.skip_items(item_type, count)
                return GGUFArray(self.path, item_type, count, start, self.off - start, self.bo, self.version)
            return self.array_items(item_type, count)
        fmt = scalar_formats.get(vtype)
        if fmt is None:
            raise GGUFError(f"{self.path}: unknown value type {vtype}")
        return self._unpack(fmt, struct.calcsize(fmt))

    def array_items(self, item_type: int, count: int) -> list[Any]:
        fmt = scalar_formats.get(item_type)
        if fmt is not None:
            size = struct.calcsize(fmt) * count
            if self.off + size > len(self.buf):
                raise _Short
            items = list(struct.unpack_from(f"{self.bo}{count}{fmt}", self.buf, self.off))
            self.off += size
            return items
        if item_type == ValueType.STRING:
            return [self.string() for _ in range(count)]
        if item_type == ValueType.ARRAY:
            # Nested arrays are always decoded: they are rare and small.
            out = []
            for _ in range(count):
                inner_type = self.u32()
                inner_count = self.length()
                out.append(self.array_items(inner_type, inner_count))
            return out
        raise GGUFError(f"{self.path}: unknown array item type {item_type}")

    def skip_items(self, item_type: int, count: int) -> None:
        fmt = scalar_formats.get(item_type)
        if fmt is not None:
            self.off += struct.calcsize(fmt) * count
        elif item_type == ValueType.STRING:
            # The hot loop of the whole reader (262k tokens for Gemma): keep it tight.
            buf, off = self.buf, self.off
            unpack = struct.Struct(self.bo + self.len_fmt).unpack_from
            step = self.len_size
            end = len(buf)
            for _ in range(count):
                if off + step > end:
                    raise _Short
                off += step + unpack(buf, off)[0]
            self.off = off
        elif item_type == ValueType.ARRAY:
            for _ in range(count):
                inner_type = self.u32()
                self.skip_items(inner_type, self.length())
        else:
            raise GGUFError(f"{self.path}: unknown array item type {item_type}")
        if self.off > len(self.buf):
            raise _Short


class GGUFMetadata:
    """Everything in a GGUF header, plus the facts Ollama derives from it."""

    def __init__(
        self,
        path: str,
        version: int,
        byte_order: str,
        kv: dict[str, Any],
        kv_types: dict[str, int],
        tensor_infos: list[TensorInfo],
        data_offset: int,
    ) -> None:
        self.path = path
        self.version = version
        self.byte_order = byte_order
        self.kv = kv
        self.kv_types = kv_types
        self.tensor_infos = tensor_infos
        self.data_offset = data_offset
        self._token_cache: dict[int, str | None] = {}

    # -- raw access ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """A value, with large arrays decoded (not cached: they can be megabytes)."""
        value = self.kv.get(key, default)
        if isinstance(value, GGUFArray):
            return value.values()
        return value

    def __contains__(self, key: str) -> bool:
        return key in self.kv

    def arch_key(self, key: str) -> str:
        return f"{self.architecture}.{key}"

    def arch_get(self, key: str, default: Any = None) -> Any:
        """``<architecture>.<key>``, e.g. ``arch_get("context_length")``."""
        return self.get(self.arch_key(key), default)

    def _arch_int(self, key: str) -> int | None:
        value = self.kv.get(self.arch_key(key))
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    # -- derived facts ------------------------------------------------------------------------

    @property
    def architecture(self) -> str:
        return str(self.kv.get("general.architecture", "unknown"))

    @property
    def parameter_count(self) -> int:
        """Sum of tensor element counts (what Ollama reports as general.parameter_count)."""
        return sum(t.n_elements for t in self.tensor_infos)

    @property
    def parameter_size(self) -> str:
        return human_number(self.parameter_count)

    @property
    def file_type(self) -> int | None:
        value = self.kv.get("general.file_type")
        return value if isinstance(value, int) else None

    @property
    def file_type_name(self) -> str:
        ft = self.file_type
        return "unknown" if ft is None else FILE_TYPE_NAMES.get(ft, "unknown")

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def head_count(self) -> int | list[int] | None:
        # Some architectures (OpenELM) store one count per layer.
        value: int | list[int] | None = self.arch_get("attention.head_count")
        return value

    @property
    def head_count_kv(self) -> int | list[int] | None:
        value: int | list[int] | None = self.arch_get("attention.head_count_kv")
        return value

    @property
    def key_length(self) -> int | None:
        return self._arch_int("attention.key_length")

    @property
    def value_length(self) -> int | None:
        return self._arch_int("attention.value_length")

    @property
    def sliding_window(self) -> int | None:
        return self._arch_int("attention.sliding_window")

    @property
    def pooling_type(self) -> int | None:
        return self._arch_int("pooling_type")

    @property
    def is_embedding(self) -> bool:
        """Ollama treats any model with ``<arch>.pooling_type`` as embedding-only."""
        return self.arch_key("pooling_type") in self.kv

    @property
    def has_vision(self) -> bool:
        return self.arch_key("vision.block_count") in self.kv

    @property
    def has_audio(self) -> bool:
        return self.arch_key("audio.block_count") in self.kv

    @property
    def chat_template(self) -> str | None:
        value = self.kv.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def bos_token_id(self) -> int | None:
        value = self.kv.get("tokenizer.ggml.bos_token_id")
        return value if isinstance(value, int) else None

    @property
    def eos_token_id(self) -> int | None:
        value = self.kv.get("tokenizer.ggml.eos_token_id")
        return value if isinstance(value, int) else None

    @property
    def eos_token_ids(self) -> list[int]:
        """``eos_token_id`` plus any ``eos_token_ids`` / ``eot_token_id`` (no duplicates)."""
        ids: list[int] = []
        for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
            value = self.kv.get(key)
            if isinstance(value, int) and value not in ids:
                ids.append(value)
        extra = self.get("tokenizer.ggml.eos_token_ids") or []
        ids.extend(v for v in extra if isinstance(v, int) and v not in ids)
        return ids

    @property
    def add_bos_token(self) -> bool | None:
        value = self.kv.get("tokenizer.ggml.add_bos_token")
        return value if isinstance(value, bool) else None

    @property
    def vocab_size(self) -> int | None:
        tokens = self.kv.get("tokenizer.ggml.tokens")
        return len(tokens) if tokens is not None else self._arch_int("vocab_size")

    def token(self, token_id: int) -> str | None:
        """The text of one vocabulary entry (cached), e.g. for ``bos_token`` in a Jinja template."""
        if token_id in self._token_cache:
            return self._token_cache[token_id]
        tokens = self.kv.get("tokenizer.ggml.tokens")
        text: str | None = None
        if isinstance(tokens, GGUFArray):
            if 0 <= token_id < tokens.count:
                text = tokens.item(token_id)
        elif isinstance(tokens, list) and 0 <= token_id < len(tokens):
            text = tokens[token_id]
        self._token_cache[token_id] = text
        return text

    @property
    def bos_token(self) -> str | None:
        return None if self.bos_token_id is None else self.token(self.bos_token_id)

    @property
    def eos_token(self) -> str | None:
        return None if self.eos_token_id is None else self.token(self.eos_token_id)

    # -- API shapes ---------------------------------------------------------------------------

    def model_info(self, verbose: bool = False) -> dict[str, Any]:
        """The ``model_info`` map of ``/api/show``.

        All KV pairs minus ``general.name`` and ``tokenizer.chat_template`` (as Ollama's show
        handler deletes them), plus ``general.parameter_count``; unless ``verbose``, arrays of more
        than 5 items become ``[]`` (as Ollama documents).  Keys are sorted, like a Go map in JSON;
        float32 values are given as their shortest float32 decimal, as Go prints them.
        """
        info: dict[str, Any] = {}
        for key, value in self.kv.items():
            if key in ("general.name", "tokenizer.chat_template"):
                continue
            if isinstance(value, (list, GGUFArray)):
                if not verbose and len(value) > 5:
                    info[key] = []
                    continue
                items = value.values() if isinstance(value, GGUFArray) else list(value)
                info[key] = items
            elif self.kv_types.get(key) == ValueType.FLOAT32:
                info[key] = float32_shortest(value)
            else:
                info[key] = value
        info["general.parameter_count"] = self.parameter_count
        return dict(sorted(info.items()))

    def tensors(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.tensor_infos]


def _parse(path: str, buf: bytes) -> GGUFMetadata:
    if len(buf) < 8:
        raise _Short
    if buf[:4] != GGUF_MAGIC:
        raise GGUFError(f"{path}: not a GGUF file (bad magic)")
    (version,) = struct.unpack_from("<I", buf, 4)
    byte_order = "<"
    if version & 0xFFFF == 0:
        # A big-endian file: the version reads byte-swapped.
        byte_order = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in (1, 2, 3):
        raise GGUFError(f"{path}: unsupported GGUF version {version}")
    p = _Parser(buf, byte_order, version, path)
    p.off = 8
    n_tensors = p.length()
    n_kv = p.length()

    kv: dict[str, Any] = {}
    kv_types: dict[str, int] = {}
    for _ in range(n_kv):
        key = p.string()
        vtype = p.u32()
        kv[key] = p.value(vtype)
        kv_types[key] = vtype

    infos: list[TensorInfo] = []
    dim_fmt, dim_size = ("I", 4) if version == 1 else ("Q", 8)
    for _ in range(n_tensors):
        name = p.string()
        n_dims = p.u32()
        if p.off + n_dims * dim_size > len(buf):
            raise _Short
        dims = struct.unpack_from(f"{byte_order}{n_dims}{dim_fmt}", buf, p.off)
        p.off += n_dims * dim_size
        type_id = p.u32()
        offset = int(p._unpack("Q", 8))
        infos.append(TensorInfo(name, tuple(int(d) for d in dims), type_id, offset))

    alignment = kv.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_offset = (p.off + alignment - 1) // alignment * alignment
    return GGUFMetadata(path, version, byte_order, kv, kv_types, infos, data_offset)


def _read(path: str, file_size: int) -> GGUFMetadata:
    size = min(_INITIAL_READ, file_size)
    with open(path, "rb") as f:
        while True:
            f.seek(0)
            buf = f.read(size)
            try:
                return _parse(path, buf)
            except _Short:
                if size >= file_size:
                    raise GGUFError(f"{path}: truncated GGUF header") from None
                size = min(size * 4, file_size)
            except (struct.error, OverflowError, MemoryError) as e:
                raise GGUFError(f"{path}: corrupt GGUF header: {e}") from e


_cache: OrderedDict[tuple[str, int, int], GGUFMetadata] = OrderedDict()
_cache_lock = threading.Lock()


def read_metadata(path: str | Path) -> GGUFMetadata:
    """Parse (or fetch from the cache) the header of the GGUF file at ``path``."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError as e:
        raise GGUFError(f"{path}: {e.strerror or e}") from e
    key = (real, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    meta = _read(real, st.st_size)
    with _cache_lock:
        _cache[key] = meta
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return meta


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
