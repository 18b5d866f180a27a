from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store.blobs import BlobStore, blob_filename, hash_file, is_blob_filename, normalize_digest
from corral.store.errors import DigestMismatch, InvalidDigest

HEX = hashlib.sha256(b"hello").hexdigest()


def leftovers(store: BlobStore) -> list[str]:
    return [p.name for p in store.root.iterdir() if not is_blob_filename(p.name)]


@pytest.mark.parametrize("digest", [f"sha256:{HEX}", f"sha256-{HEX}", f"sha256:{HEX.upper()}"])
def test_digest_forms(tmp_path: Path, digest: str) -> None:
    store = BlobStore(tmp_path)
    assert normalize_digest(digest) == f"sha256:{HEX}"
    assert store.path(digest) == tmp_path / "blobs" / f"sha256-{HEX}"
    assert blob_filename(digest) == f"sha256-{HEX}"


@pytest.mark.parametrize(
    "digest",
    ["", HEX, f"sha256:{HEX[:-1]}", f"sha256:{HEX}0", f"sha512:{HEX}", f"sha256:{'g' * 64}", f"sha256:../{HEX}"],
)
def test_invalid_digest(tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidDigest, match="invalid digest format"):
        BlobStore(tmp_path).path(digest)


def test_put_bytes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest, size = store.put_bytes(b"hello")
    assert (digest, size) == (f"sha256:{HEX}", 5)
    path = store.path(digest)
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert store.exists(digest)
    assert store.put_bytes(b"hello") == (digest, 5)  # idempotent
    assert store.digests() == [digest]
    assert leftovers(store) == []


def test_write_stream_ok(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert store.write_stream(f"sha256-{HEX}", [b"he", b"", b"llo"]) == (f"sha256:{HEX}", 5)
    assert store.path(f"sha256:{HEX}").read_bytes() == b"hello"


def test_write_stream_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as info:
        store.write_stream(wrong, [b"hello"])
    assert str(info.value) == f'digest mismatch, expected "{wrong}", got "sha256:{HEX}"'
    assert list(store.root.iterdir()) == []


def test_write_stream_error_midway_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    def chunks() -> Iterator[bytes]:
        yield b"hel"
        raise ConnectionError("peer went away")

    with pytest.raises(ConnectionError):
        store.write_stream(f"sha256:{HEX}", chunks())
    assert list(store.root.iterdir()) == []


def test_import_file_hard_links(tmp_path: Path) -> None:
    src = tmp_path / "weights.gguf"
    src.write_bytes(b"hello")
    store = BlobStore(tmp_path / "models")
    digest, size = store.import_file(src)
    assert (digest, size) == (f"sha256:{HEX}", 5)
    assert store.path(digest).stat().st_ino == src.stat().st_ino
    # Again: nothing to do, and no temporary file left behind.
    assert store.import_file(src) == (digest, size)
    assert leftovers(store) == []


def test_import_file_copy(tmp_path: Path) -> None:
    src = tmp_path / "weights.gguf"
    src.write_bytes(b"hello")
    os.chmod(src, 0o600)
    store = BlobStore(tmp_path / "models")
    digest, _ = store.import_file(src, link=False)
    blob = store.path(digest)
    assert blob.stat().st_ino != src.stat().st_ino
    assert blob.read_bytes() == b"hello"
    assert stat.S_IMODE(blob.stat().st_mode) == 0o644
    assert leftovers(store) == []


def test_import_file_with_known_digest_skips_hashing(tmp_path: Path) -> None:
    src = tmp_path / "w"
    src.write_bytes(b"hello")
    store = BlobStore(tmp_path / "models")
    assert store.import_file(src, digest=f"sha256-{HEX}") == (f"sha256:{HEX}", 5)
    # A wrong digest is caught when the bytes are actually copied.
    other = tmp_path / "x"
    other.write_bytes(b"other")
    with pytest.raises(DigestMismatch):
        store.import_file(other, link=False, digest="sha256:" + "1" * 64)
    assert leftovers(store) == []


def test_hash_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    assert hash_file(path) == (f"sha256:{HEX}", 5)


def test_writer_context_aborts(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.writer() as w:
        w.write(b"partial")
        assert w.temp_path.exists()
    assert not w.temp_path.exists()
    assert list(store.root.iterdir()) == []
