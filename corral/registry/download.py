"""Blob downloads: ranged parts in parallel, resumable, verified before they enter the store.

The files are Ollama's, so a download begun by either resumes under the other:
``blobs/sha256-<hex>-partial`` holds the data (sparse, its final size from the start) and
``blobs/sha256-<hex>-partial-<N>`` the state of part N, ``{"N","Offset","Size","Completed"}``.
A part's state never claims more than what was written before it, so a crash or a dropped
connection costs at most the bytes since the last save.  When every part is complete the data
is hashed; a match is renamed to ``blobs/sha256-<hex>``, a mismatch is deleted with Ollama's
error.  Names that are not digests are what Ollama's start-up prune removes after an hour, and so
does corral's.

A blob is fetched once however many pulls want it at the same time: they share one
:class:`BlobDownload` (keyed by its path) and each reports its progress.  The download stops when
the last of them leaves; its partial data stays for the next pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from corral.registry.client import RegistryClient
from corral.registry.errors import BlobDigestMismatch, RegistryError, RegistryUnreachable
from corral.registry.options import Progress, ProgressFn, RegistryOptions
from corral.store.blobs import BLOB_MODE, BlobStore, hash_file, normalize_digest

__all__ = ["BlobDownload", "fetch_blob", "part_sizes"]

log = logging.getLogger("corral.registry")

_SAVE_INTERVAL = 0.5
_TICK = 0.06  # Ollama's progress ticker


def part_sizes(total: int, options: RegistryOptions) -> list[tuple[int, int]]:
    """(offset, size) of each part: ``total / num_parts`` clamped to [min, max] (Ollama's rule)."""
    size = min(max(total // max(options.num_parts, 1), options.min_part_size), options.max_part_size)
    size = max(size, 1)
    out: list[tuple[int, int]] = []
    offset = 0
    while offset < total:
        out.append((offset, min(size, total - offset)))
        offset += size
    return out


@dataclass
class _Part:
    n: int
    offset: int
    size: int
    completed: int = 0

    def to_json(self) -> bytes:
        # Go's json.Encoder: compact, field order of the struct, a newline.
        return json.dumps({"N": self.n, "Offset": self.offset, "Size": self.size, "Completed": self.completed},
                          separators=(",", ":")).encode() + b"\n"


class _ShortBody(Exception):
    pass


class BlobDownload:
    """One blob on its way into the store; :meth:`run` does the whole job."""

    def __init__(self, blobs: BlobStore, digest: str, total: int, url: str,
                 make_client: Callable[[], RegistryClient], options: RegistryOptions) -> None:
        self.digest = normalize_digest(digest)
        self.final = blobs.path(self.digest)
        self.partial = self.final.with_name(self.final.name + "-partial")
        self.total = total
        self.url = url
        self.completed = 0
        self.transferred = 0
        """Bytes received by this process in this run (resumed data is not counted)."""
        self._make_client = make_client
        self._options = options
        self._parts: list[_Part] = []
        self._fd = -1
        self._saved_at: dict[int, float] = {}
        self.prepared = False
        """True once resumed parts are counted in ``completed`` (progress before that would read 0)."""
        self.refs = 0
        self.task: asyncio.Task[None] | None = None

    # -- part state --------------------------------------------------------------------------

    def _part_path(self, n: int) -> Path:
        return self.partial.with_name(f"{self.partial.name}-{n}")

    def _existing_part_paths(self) -> list[Path]:
        pattern = re.compile(re.escape(self.partial.name) + r"-(\d+)$")
        return [p for p in self.partial.parent.iterdir() if pattern.match(p.name)]

    def _load_parts(self) -> list[_Part] | None:
        """Saved parts that tile the blob exactly, or None (then the download starts over)."""
        parts: list[_Part] = []
        for path in self._existing_part_paths():
            try:
                raw = json.loads(path.read_bytes())
                part = _Part(int(raw["N"]), int(raw["Offset"]), int(raw["Size"]), int(raw["Completed"]))
            except (OSError, ValueError, KeyError, TypeError):
                return None
            parts.append(part)
        parts.sort(key=lambda p: p.offset)
        offset = 0
        for part in parts:
            if part.offset != offset or not 0 <= part.completed <= part.size or part.size <= 0:
                return None
            offset += part.size
        if not parts or offset != self.total:
            return None
        try:
            if self.partial.stat().st_size != self.total:
                return None
        except FileNotFoundError:
            return None
        return parts

    def _save(self, part: _Part, *, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at.get(part.n, 0.0) < _SAVE_INTERVAL:
            return
        self._saved_at[part.n] = now
        path = self._part_path(part.n)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(part.to_json())
        os.replace(tmp, path)

    def _remove_state(self) -> None:
        for path in self._existing_part_paths():
            path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)

    def _prepare(self) -> None:
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        parts = self._load_parts()
        if parts is None:
            self._remove_state()
            parts = [_Part(n, offset, size) for n, (offset, size) in enumerate(part_sizes(self.total, self._options))]
            with open(self.partial, "wb") as f:
                f.truncate(self.total)  # sparse: only written ranges take space
            for part in parts:
                self._save(part)
        else:
            log.info("resuming %s at %d of %d bytes", self.digest[7:19], sum(p.completed for p in parts), self.total)
        self._parts = parts
        self.completed = sum(p.completed for p in parts)
        self.prepared = True

    # -- transfer ----------------------------------------------------------------------------

    async def run(self) -> None:
        await anyio.to_thread.run_sync(self._prepare)
        if self.total > 0:
            log.info("downloading %s in %d part(s)", self.digest[7:19], len(self._parts))
        self._fd = os.open(self.partial, os.O_RDWR)
        try:
            todo = [p for p in self._parts if p.completed < p.size]
            if todo:
                async with self._make_client() as client:
                    await self._fetch_parts(client, todo)
        finally:
            os.close(self._fd)
            self._fd = -1
        await anyio.to_thread.run_sync(self._commit)

    async def _fetch_parts(self, client: RegistryClient, parts: list[_Part]) -> None:
        limit = asyncio.Semaphore(max(1, self._options.max_parallel_parts))
        tasks = [asyncio.ensure_future(self._fetch_part(client, part, limit)) for part in parts]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _fetch_part(self, client: RegistryClient, part: _Part, limit: asyncio.Semaphore) -> None:
        failures = 0
        async with limit:
            while part.completed < part.size:
                before = part.completed
                try:
                    await self._fetch_range(client, part)
                except (httpx.TransportError, RegistryUnreachable, _ShortBody) as e:
                    self._save(part)
                    # Only attempts that bring nothing count: a link that keeps dropping but moves forward
                    # still finishes, a dead one fails after a few quick tries.
                    failures = 0 if part.completed > before else failures + 1
                    if failures > self._options.retries:
                        reason = str(e) or type(e).__name__
                        raise RegistryError(f"download of {self.digest[7:19]} failed: {reason}") from None
                    log.info("%s part %d: %s; retrying", self.digest[7:19], part.n, e or type(e).__name__)
                    await asyncio.sleep(self._options.retry_delay * (2 ** (failures - 1)) if failures else 0)
                finally:
                    self._save(part)

    async def _fetch_range(self, client: RegistryClient, part: _Part) -> None:
        start = part.offset + part.completed
        end = part.offset + part.size - 1
        headers = {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}
        async with client.stream("GET", self.url, headers=headers) as response:
            if response.status_code == 206:
                skip = 0
                content_range = response.headers.get("content-range", "")
                if not content_range.startswith(f"bytes {start}-"):
                    raise RegistryError(f"registry answered range {content_range!r} for bytes {start}-{end}")
            elif response.status_code == 200:
                skip = start  # a server that ignores Range sends the whole blob: skip what we have
            else:
                await response.aread()
                raise client.error_for(response)
            async for chunk in response.aiter_bytes():
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                data = chunk[: part.size - part.completed]
                os.pwrite(self._fd, data, part.offset + part.completed)
                part.completed += len(data)
                self.completed += len(data)
                self.transferred += len(data)
                self._save(part, force=False)
                if part.completed >= part.size:
                    return
        raise _ShortBody(f"the registry closed the body at {part.offset + part.completed} of {end + 1} bytes")

    def _commit(self) -> None:
        """Hash the finished data; rename it into the store, or delete it on a mismatch."""
        got, _size = hash_file(self.partial)
        if got != self.digest:
            self._remove_state()
            raise BlobDigestMismatch(self.digest, got)
        with open(self.partial, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(self.partial, BLOB_MODE)
        os.replace(self.partial, self.final)
        for path in self._existing_part_paths():
            path.unlink(missing_ok=True)


_inflight: dict[str, BlobDownload] = {}


def _forget(key: str, download: BlobDownload, task: asyncio.Task[None]) -> None:
    if _inflight.get(key) is download:
        del _inflight[key]
    if not task.cancelled():
        task.exception()  # retrieved here so asyncio does not warn; each waiter re-raises it


async def fetch_blob(blobs: BlobStore, digest: str, size: int, url: str, make_client: Callable[[], RegistryClient],
                     options: RegistryOptions, progress: ProgressFn) -> BlobDownload | None:
    """Bring one blob into the store, reporting ``pulling <hex12>``; None when it was already there."""
    digest = normalize_digest(digest)
    status = f"pulling {digest[7:19]}"
    path = blobs.path(digest)
    if path.is_file():
        on_disk = path.stat().st_size
        progress(Progress(status, digest, on_disk, on_disk))
        return None
    key = str(path)
    loop = asyncio.get_running_loop()
    download = _inflight.get(key)
    if download is None or download.task is None or download.task.done() or download.task.get_loop() is not loop:
        download = BlobDownload(blobs, digest, size, url, make_client, options)
        download.task = asyncio.ensure_future(download.run())
        _inflight[key] = download
        download.task.add_done_callback(lambda t, d=download: _forget(key, d, t))  # type: ignore[misc]
    task = download.task
    download.refs += 1
    last = -1
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_TICK)
            if (download.prepared and download.completed != last) or done:
                last = download.completed
                progress(Progress(status, digest, download.total, download.completed))
            if done:
                task.result()
                return download
    finally:
        download.refs -= 1
        if download.refs == 0 and not task.done():
            task.cancel()  # the last puller left: stop, keeping the partial data for next time
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(asyncio.wait({task}))
