"""A blob fetched from the corral server into a node's folder, checked as a pull checks it.

The server answers ``GET /api/blobs/sha256:<hex>`` with the file. The bytes are hashed as they arrive into a
temporary file beside the destination; only a matching digest is renamed into place, so the folder holds
verified blobs or nothing. Every failure removes the temporary file. Standard library only: this runs on
cluster nodes inside a Ray worker.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class BlobFetchError(Exception):
    """The blob could not be fetched, or what arrived is not the blob asked for."""


def blob_name(digest: str) -> str:
    return digest.replace(":", "-", 1)


def digest_of(path: str | Path) -> str | None:
    """The digest a store's blob file is named by (``…/sha256-<hex>``), None for any other file."""
    name = Path(path).name
    return name.replace("-", ":", 1) if DIGEST.fullmatch(name.replace("-", ":", 1)) else None


def fetch_blob(url: str, digest: str, folder: Path, headers: dict[str, str] | None = None,
               timeout: float = 60.0) -> Path:
    """The path of ``digest`` in ``folder``, fetched from the server at ``url`` unless already there."""
    if not DIGEST.fullmatch(digest):
        raise BlobFetchError(f"invalid digest {digest!r}")
    dest = folder / blob_name(digest)
    if dest.is_file():
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    source = f"{url.rstrip('/')}/api/blobs/{digest}"
    fd, tmp = tempfile.mkstemp(prefix=blob_name(digest) + ".", suffix=".partial", dir=folder)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(source, headers=headers or {})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    while chunk := response.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                raise BlobFetchError(f"fetching {digest} from {source}: HTTP {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                raise BlobFetchError(f"fetching {digest} from {source}: {getattr(exc, 'reason', exc)}") from None
            out.flush()
            os.fsync(out.fileno())
        got = "sha256:" + h.hexdigest()
        if got != digest:
            raise BlobFetchError(f"digest mismatch fetching {digest} from {source}: the bytes hash to {got}")
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
