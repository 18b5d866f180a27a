"""``push``: every blob the registry lacks, then the manifest bytes (reference §5.2).

For each layer and then the config: ``HEAD`` the blob (present: done); else open an upload, asking
to mount it from another repository of the same registry that has it (``?mount=&from=``; a 201
means no byte moves); else send it in ``PATCH`` chunks (``Content-Range: <start>-<end>``), each
to the newest ``Location`` the registry gave (it carries the upload state), and close with
``PUT <location>&digest=``.  The manifest goes last, byte for byte as the store holds it, so its
digest on the registry is the one ``/api/tags`` shows; both digests the registry reports are checked.

Statuses: ``retrieving manifest``; ``pushing <hex12>`` with digest/total/completed per blob;
``pushing manifest``; ``success``.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import urlencode, urlsplit

import anyio

from corral.registry.client import RegistryClient
from corral.registry.endpoint import Endpoint, resolve
from corral.registry.errors import RegistryError
from corral.registry.options import Progress, ProgressFn, RegistryOptions
from corral.store.blobs import normalize_digest
from corral.store.errors import InvalidModelName
from corral.store.manifest import MEDIA_TYPE_MANIFEST, Layer
from corral.store.models import LocalModel, Store
from corral.store.names import ModelName

__all__ = ["mount_sources", "push_model"]

log = logging.getLogger("corral.registry")


def mount_sources(store: Store, model: LocalModel, layer: Layer) -> list[str]:
    """Repositories on the same registry that should hold ``layer``: its ``from`` model, then any
    other local model of that host that references the digest (``cp a host/other/a`` then push)."""
    digest = normalize_digest(layer.digest)
    own = model.name.repository.lower()
    host = model.name.host.lower()
    found: list[str] = []
    if layer.from_:
        try:
            source = ModelName.parse(layer.from_)
        except InvalidModelName:
            source = None
        if source is not None and source.host.lower() == host and source.repository.lower() != own:
            found.append(source.repository)
    for other in store.list():
        if other.name.host.lower() != host or other.name.repository.lower() == own:
            continue
        if digest in other.manifest.digests() and other.name.repository not in found:
            found.append(other.name.repository)
    return found


def _with_query(url: str, **params: str) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}{urlencode(params)}"


def _read_chunk(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


async def _upload_blob(client: RegistryClient, endpoint: Endpoint, store: Store, layer: Layer,
                       sources: list[str], options: RegistryOptions, progress: ProgressFn) -> None:
    digest = normalize_digest(layer.digest)
    status = f"pushing {digest[7:19]}"
    path = store.blobs.path(digest)
    size = path.stat().st_size if path.is_file() else -1
    if size < 0:
        raise RegistryError(f"blob {digest} of the model is missing from the store")

    head = await client.request("HEAD", endpoint.blob_url(digest))
    if head.status_code == 200:
        progress(Progress(status, digest, size, size))
        return
    if head.status_code != 404:
        raise client.error_for(head)

    url = endpoint.uploads_url()
    if sources:
        url = _with_query(url, mount=digest, **{"from": sources[0]})
    started = await client.request("POST", url)
    if started.status_code == 201:
        log.info("mounted %s from %s", digest[7:19], sources[0])
        progress(Progress(status, digest, size, size))
        return
    if started.status_code != 202:
        raise client.error_for(started)
    location = started.headers.get("docker-upload-location") or started.headers.get("location")
    if not location:
        raise RegistryError("the registry opened an upload without a Location")
    location = client.absolute(location)

    progress(Progress(status, digest, size, 0))
    offset = 0
    chunk_size = max(1, options.upload_chunk_size)
    while offset < size:
        data = await anyio.to_thread.run_sync(_read_chunk, str(path), offset, chunk_size)
        end = offset + len(data) - 1
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                   "Content-Range": f"{offset}-{end}", "X-Redirect-Uploads": "1"}
        response = await client.request("PATCH", location, headers=headers, content=data, follow_redirects=False)
        if response.status_code == 307 and response.headers.get("location"):
            # Ollama's registry sends the bytes to presigned storage: PUT them there (no credentials go
            # to another host), then carry on at the registry's next upload URL.
            sent = await client.request("PUT", client.absolute(response.headers["location"]), content=data,
                                        headers={"Content-Type": "application/octet-stream"})
            if sent.status_code >= 400:
                raise client.error_for(sent)
            next_location = response.headers.get("docker-upload-location") or location
        elif response.status_code == 202:
            next_location = response.headers.get("docker-upload-location") or response.headers.get("location")
        else:
            raise client.error_for(response)
        if not next_location:
            raise RegistryError("the registry accepted a chunk without a Location")
        location = client.absolute(next_location)
        offset += len(data)
        progress(Progress(status, digest, size, offset))

    done = await client.request("PUT", _with_query(location, digest=digest), headers={"Content-Length": "0"},
                                content=b"")
    if done.status_code not in (201, 204):
        raise client.error_for(done)
    reported = done.headers.get("docker-content-digest", "")
    if reported and reported.lower() != digest:
        raise RegistryError(f"the registry stored {digest[7:19]} as {reported}")


async def push_model(store: Store, model: LocalModel, *, options: RegistryOptions, progress: ProgressFn,
                     insecure: bool = False, username: str = "", password: str = "") -> None:
    """Push ``model`` to the registry its name points at; raise :class:`RegistryError` on failure."""
    progress(Progress("retrieving manifest"))
    endpoint = resolve(model.name, insecure=insecure, default_registry=options.default_registry)
    data = await anyio.to_thread.run_sync(model.manifest_path.read_bytes)
    manifest = model.manifest
    async with RegistryClient(endpoint, options, username=username, password=password) as client:
        for layer in [*manifest.layers, manifest.config]:
            sources = await anyio.to_thread.run_sync(mount_sources, store, model, layer)
            await _upload_blob(client, endpoint, store, layer, sources, options, progress)

        progress(Progress("pushing manifest"))
        media_type = manifest.media_type or MEDIA_TYPE_MANIFEST
        response = await client.request("PUT", endpoint.manifest_url(), content=data,
                                        headers={"Content-Type": media_type})
        if response.status_code not in (200, 201):
            raise client.error_for(response)
        expected = "sha256:" + hashlib.sha256(data).hexdigest()
        reported = response.headers.get("docker-content-digest", "")
        if reported and reported.lower() != expected:
            raise RegistryError(f"the registry stored the manifest as {reported}, expected {expected}")
    progress(Progress("success"))
