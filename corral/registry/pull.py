"""``pull``: manifest, then each blob, then the manifest written as received (reference §5.1).

Statuses, in Ollama's order: ``pulling manifest``; ``pulling <hex12>`` with digest/total/completed
for each layer and then the config (a blob already present reports completed = total at once);
``verifying sha256 digest``; ``writing manifest``; ``removing unused layers`` when an older
manifest of that name left blobs nothing references (unless ``OLLAMA_NOPRUNE``); ``success``.

Unlike Ollama, blobs served with a plain ``200`` (every filesystem-backed OCI registry) work as
well as redirects, and both Docker and OCI manifests are asked for.
"""

from __future__ import annotations

import hashlib
import logging

import anyio

from corral.registry.client import RegistryClient
from corral.registry.download import fetch_blob
from corral.registry.endpoint import Endpoint, resolve
from corral.registry.errors import RegistryError, RegistryResponseError, RegistryUnreachable
from corral.registry.options import Progress, ProgressFn, RegistryOptions
from corral.store.errors import InvalidDigest, InvalidManifest
from corral.store.manifest import MEDIA_TYPE_MANIFEST, Manifest
from corral.store.models import LocalModel, Store
from corral.store.names import ModelName

__all__ = ["MANIFEST_ACCEPT", "OCI_MANIFEST", "fetch_manifest", "pull_model"]

log = logging.getLogger("corral.registry")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# distribution 2.8 answers 400 to a manifest GET without Accept (it tries a schema1 conversion), and
# 404 to an OCI manifest unless OCI is accepted: both types, always.
MANIFEST_ACCEPT = f"{MEDIA_TYPE_MANIFEST}, {OCI_MANIFEST}"


async def fetch_manifest(client: RegistryClient, endpoint: Endpoint) -> bytes:
    """The manifest bytes exactly as served; errors carry Ollama's ``pull model manifest:`` prefix."""
    try:
        response = await client.request("GET", endpoint.manifest_url(), headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code != 200:
            raise client.error_for(response, manifest=True)
    except (RegistryResponseError, RegistryUnreachable) as e:
        e.args = (f"pull model manifest: {e}",)  # Ollama's prefix; the kind of error stays
        raise
    data = response.content
    served = response.headers.get("docker-content-digest", "")
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if served.startswith("sha256:") and served.lower() != actual:
        raise RegistryError(f"pull model manifest: digest mismatch: the registry says {served}, the bytes are {actual}")
    return data


async def pull_model(store: Store, name: ModelName, *, options: RegistryOptions, progress: ProgressFn,
                     insecure: bool = False, username: str = "", password: str = "") -> LocalModel:
    """Pull ``name`` into ``store``; raise :class:`RegistryError` with the text the user should see."""
    target = store.existing_name(name) or name
    endpoint = resolve(target, insecure=insecure, default_registry=options.default_registry)
    old = store.resolve(target)
    old_digests = set(old.manifest.digests()) if old is not None else set()

    authorization: str | None = None

    def make_client() -> RegistryClient:
        # Blob downloads start their own clients (a download shared by several pulls outlives the pull
        # that began it) with what the manifest request earned, saving each one a 401 round trip.
        return RegistryClient(endpoint, options, username=username, password=password, authorization=authorization)

    progress(Progress("pulling manifest"))
    async with make_client() as client:
        data = await fetch_manifest(client, endpoint)
        authorization = client.authorization
    try:
        manifest = Manifest.parse(data)
        layers = [*manifest.layers, manifest.config]
        for layer in layers:
            store.blobs.path(layer.digest)  # validates the digest before any file name is built from it
    except (InvalidManifest, InvalidDigest) as e:
        raise RegistryError(f"pull model manifest: unsupported manifest: {e}") from None

    for layer in layers:
        await fetch_blob(store.blobs, layer.digest, layer.size, endpoint.blob_url(layer.digest), make_client,
                         options, progress)

    # Each blob was hashed before it was renamed into the store (download.py); this status keeps
    # Ollama's sequence for clients that show it.
    progress(Progress("verifying sha256 digest"))
    progress(Progress("writing manifest"))
    model = await anyio.to_thread.run_sync(store.write_manifest, target, data)
    unused = old_digests - set(manifest.digests())
    if unused and not options.noprune:
        progress(Progress("removing unused layers"))
        removed = await anyio.to_thread.run_sync(store.remove_unreferenced, sorted(unused))
        log.info("pull %s: removed %d unused layers", target.display_shortest(), len(removed))
    progress(Progress("success"))
    return model
