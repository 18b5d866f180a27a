"""Content-addressed blobs: ``blobs/sha256-<hex>``.

Every write lands in a temporary file inside ``blobs/`` (so the final rename never crosses a
filesystem), is fsynced, and is renamed over its final name: a reader sees a whole blob or none.
The temporary names are not valid digests, so a crash leaves only files that prune removes after
an hour, exactly as Ollama treats its own leftovers.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from corral.store.errors import DigestMismatch, InvalidDigest

__all__ = [
    "BlobStore",
    "BlobWriter",
    "blob_filename",
    "hash_file",
    "is_blob_filename",
    "normalize_digest",
]

_DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-fA-F]{64})$")
_BLOB_NAME_RE = re.compile(r"^sha256-[0-9a-f]{64}$")
_CHUNK = 1 << 20
BLOB_MODE = 0o644
TEMP_PREFIX = ".corral-"
TEMP_SUFFIX = "-partial"


def normalize_digest(digest: str) -> str:
    """``sha256:<hex>`` in lower case; accepts ``sha256:`` and ``sha256-``; else InvalidDigest."""
    match = _DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidDigest(str(digest))
    return "sha256:" + match.group(1).lower()


def blob_filename(digest: str) -> str:
    return normalize_digest(digest).replace(":", "-", 1)


def is_blob_filename(name: str) -> bool:
    return _BLOB_NAME_RE.match(name) is not None


def hash_file(path: str | Path) -> tuple[str, int]:
    """(``sha256:<hex>``, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not every platform lets one open a directory.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _close_quietly(f: BinaryIO) -> None:
    """Close a file whose buffered writes may fail again (a full disk): closing never raises then, and the
    caller removes the file either way. (Python's close flushes first; on ENOSPC it raises after closing the
    descriptor, which used to skip the removal of the temporary file.)"""
    try:
        f.close()
    except OSError:
        pass


class BlobWriter:
    """Streams bytes into a temporary blob, hashing as it goes; :meth:`commit` checks and renames.

    Usable from sync and async code alike (the caller feeds :meth:`write`); as a context manager
    it removes the temporary file unless committed.
    """

    def __init__(self, store: BlobStore, expected_digest: str | None = None) -> None:
        self._store = store
        self.expected = normalize_digest(expected_digest) if expected_digest else None
        store.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=store.root, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        self._file = os.fdopen(fd, "wb")
        self.temp_path = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def commit(self) -> tuple[str, int]:
        """Fsync, verify against the expected digest, rename into place; return (digest, size).

        Whatever fails (a full disk fails the flush, a digest differs), the temporary file is gone after."""
        if self._done:
            raise RuntimeError("blob writer already finished")
        self._done = True
        try:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                _close_quietly(self._file)
            got = self.digest
            if self.expected is not None and got != self.expected:
                raise DigestMismatch(self.expected, got)
            final = self._store.path(got)
            os.chmod(self.temp_path, BLOB_MODE)
            os.replace(self.temp_path, final)
        except BaseException:
            self.temp_path.unlink(missing_ok=True)
            raise
        _fsync_dir(self._store.root)
        return got, self.size

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            _close_quietly(self._file)
        finally:
            self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class BlobStore:
    """The ``blobs/`` directory of a store root (``OLLAMA_MODELS``)."""

    def __init__(self, root: str | Path) -> None:
        # ``root`` is the models root; blobs live in ``root/blobs``.
        self.models_root = Path(root)
        self.root = self.models_root / "blobs"

    def path(self, digest: str) -> Path:
        """Path of a blob; validates the digest (InvalidDigest), whether or not the blob exists."""
        return self.root / blob_filename(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A temporary file in ``blobs/`` for a blob a tool writes (a converter, the quantizer), named so that
        prune removes it after a crash; gone on leaving unless :meth:`adopt` took it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def adopt(self, tmp: Path) -> tuple[str, int, bool]:
        """Hash and fsync a finished scratch file, then rename it to its digest's name; return (digest, size,
        whether that blob already existed, in which case ``tmp`` is left for :meth:`scratch` to remove)."""
        h = hashlib.sha256()
        size = 0
        with open(tmp, "rb+") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
            os.fsync(f.fileno())
        digest = "sha256:" + h.hexdigest()
        final = self.path(digest)
        if final.exists():
            return digest, size, True
        os.chmod(tmp, BLOB_MODE)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        return digest, size, False

    def writer(self, expected_digest: str | None = None) -> BlobWriter:
        return BlobWriter(self, expected_digest)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; return (``sha256:<hex>``, size).  An existing blob is left as is."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, len(data)
        with self.writer(digest) as w:
            w.write(data)
            w.commit()
        return digest, len(data)

    def write_stream(self, expected_digest: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Hash while streaming to a temporary file; rename only if the digest matches.

        Raises :class:`DigestMismatch` (Ollama's text) and leaves nothing behind on mismatch.
        """
        with self.writer(expected_digest) as w:
            for chunk in chunks:
                w.write(chunk)
            return w.commit()

    def import_file(self, src: str | Path, *, link: bool = True, digest: str | None = None) -> tuple[str, int]:
        """Bring a file into the store; return (``sha256:<hex>``, size).

        The file is hashed unless ``digest`` is given (the caller vouches for it: bundled import
        caches digests so a second run does not re-read 100 MB).  With ``link`` it is hard-linked
        when on the same filesystem, which costs no space and no copy; otherwise it is copied to a
        temporary file, fsynced and renamed.  A hard-linked blob shares its inode with ``src``: its
        mode is left alone (a chmod would change ``src`` too) and ``src`` must not be edited in place.
        """
        src = Path(src)
        if digest is None:
            digest, size = hash_file(src)
        else:
            digest = normalize_digest(digest)
            size = src.stat().st_size
        final = self.path(digest)
        if final.exists():
            return digest, size
        self.root.mkdir(parents=True, exist_ok=True)
        if link:
            try:
                os.link(src, final)
                return digest, size
            except FileExistsError:
                return digest, size  # another writer won the race with the same content
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                    raise
        with self.writer(digest) as w, open(src, "rb") as f:
            while chunk := f.read(_CHUNK):
                w.write(chunk)
            w.commit()
        return digest, size

    def remove(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> list[str]:
        """Digests of every well-named blob present."""
        if not self.root.is_dir():
            return []
        return sorted("sha256:" + p.name[len("sha256-") :] for p in self.root.iterdir() if is_blob_filename(p.name))
