"""Helpers for tests that need a populated store (plain functions, not pytest fixtures).

``make_temp_store(tmp_path)`` imports the bundled models into a fresh store under ``tmp_path`` with
hard links, so it costs milliseconds and no disk.  The links point into a per-machine cache
(``CORRAL_TEST_CACHE``, default ``$TMPDIR/corral-test-cache-<uid>``), never at the installed package
files: the gemma GGUF is assembled there once, and the smollm2 GGUF is copied there once.  So a
test that damages a blob in place (``write_bytes`` on a blob path writes through the shared inode)
damages only the cache copy, and the next ``make_temp_store`` notices the changed file by its
mtime, re-hashes it and restores it.  Tests should still replace blobs rather than edit them.

``write_gguf`` writes tiny synthetic GGUF files (header and zero-filled tensors) for tests of the
reader and of capabilities (embedding models, vision keys) that no bundled model covers.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.store.bundled import BUNDLED, BundledModel, cached_digest, import_bundled
from corral.store.gguf import ValueType
from corral.store.models import LocalModel, Store

__all__ = ["alias", "default_cache_dir", "make_temp_store", "write_gguf"]


def default_cache_dir() -> Path:
    env = os.environ.get("CORRAL_TEST_CACHE")
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"corral-test-cache-{uid}"


def _staged(spec: BundledModel) -> BundledModel:
    """``spec`` with its GGUF served from a copy in the cache dir, not from the package."""
    if spec.name != "smollm2:135m":
        return spec  # gemma's GGUF already lives in the cache dir (assembled there)

    def locate(cache_dir: Path) -> tuple[Path, str | None]:
        source, digest = spec.locate(cache_dir)
        staged = cache_dir / f"staged-{source.name}"
        if not staged.exists() or cached_digest(cache_dir, staged) != digest:
            fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".staging-")
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, staged)
            cached_digest(cache_dir, staged, known=digest)
        return staged, digest

    return dataclasses.replace(spec, locate=locate)


def make_temp_store(
    tmp_path: str | Path, *, names: Iterable[str] | None = None, cache_dir: str | Path | None = None
) -> Store:
    """A store at ``tmp_path/models`` holding the installed bundled models (hard-linked).

    Without ``names``, the GGUF ones: a folder one (``all-minilm``) is converted on import, which takes
    seconds, so a test that wants it names it."""
    store = Store(Path(tmp_path) / "models")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for name in names if names is not None else [n for n, spec in BUNDLED.items() if not spec.folder]:
        import_bundled(store, _staged(BUNDLED[name]), cache_dir=cache)
    return store


def alias(store: Store, src: str, dst: str) -> LocalModel:
    """Another name for ``src``'s manifest (e.g. the tutorial's ``llama3.2``), sharing all blobs."""
    return store.copy(src, dst)


# -- tiny GGUF writer --------------------------------------------------------------------------

_FORMATS = {
    ValueType.UINT8: "B",
    ValueType.INT8: "b",
    ValueType.UINT16: "H",
    ValueType.INT16: "h",
    ValueType.UINT32: "I",
    ValueType.INT32: "i",
    ValueType.FLOAT32: "f",
    ValueType.BOOL: "?",
    ValueType.UINT64: "Q",
    ValueType.INT64: "q",
    ValueType.FLOAT64: "d",
}


def _guess(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return ValueType.BOOL, value
    if isinstance(value, int):
        return (ValueType.UINT32 if 0 <= value < 2**32 else ValueType.INT64), value
    if isinstance(value, float):
        return ValueType.FLOAT32, value
    if isinstance(value, str):
        return ValueType.STRING, value
    if isinstance(value, (list, tuple)):
        return ValueType.ARRAY, list(value)
    raise TypeError(f"cannot store {type(value).__name__} in GGUF")


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: int, value: Any, item_type: int | None = None) -> bytes:
    if vtype == ValueType.STRING:
        return _string(value)
    if vtype == ValueType.ARRAY:
        items = list(value)
        if item_type is None:
            item_type = _guess(items[0])[0] if items else ValueType.UINT32
        body = b"".join(_value(item_type, item) for item in items)
        return struct.pack("<IQ", item_type, len(items)) + body
    return struct.pack("<" + _FORMATS[vtype], value)


def write_gguf(
    path: str | Path,
    kv: Mapping[str, Any],
    tensors: Sequence[tuple[str, Sequence[int], int]] = (),
    *,
    alignment: int = 32,
) -> Path:
    """Write a GGUF v3 file.  ``kv`` values are Python values (types guessed: int -> UINT32,
    float -> FLOAT32) or explicit ``(ValueType.X, value)`` / ``(ValueType.ARRAY, items, item_type)``
    tuples; ``tensors`` are ``(name, shape, ggml_type)``, written as F32-sized zero data.
    """
    out = bytearray(b"GGUF")
    out += struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, spec in kv.items():
        if isinstance(spec, tuple) and spec and isinstance(spec[0], int) and not isinstance(spec[0], bool):
            vtype, value, *rest = spec
            item_type = rest[0] if rest else None
        else:
            vtype, value = _guess(spec)
            item_type = None
        out += _string(key) + struct.pack("<I", vtype) + _value(vtype, value, item_type)
    offset = 0
    sizes = []
    for name, shape, ggml_type in tensors:
        n = 1
        for d in shape:
            n *= d
        size = (n * 4 + alignment - 1) // alignment * alignment
        out += _string(name) + struct.pack("<I", len(shape))
        out += struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<IQ", ggml_type, offset)
        offset += size
        sizes.append(size)
    out += b"\0" * ((-len(out)) % alignment)
    out += b"\0" * sum(sizes)
    target = Path(path)
    target.write_bytes(bytes(out))
    return target
