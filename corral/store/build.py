"""The store half of ``POST /api/create`` (reference §3.2): layers in, manifest out.

``build_model`` follows Ollama's ``CreateHandler``/``createModel``: base layers come either from an
existing model (every layer kept, ``from`` set to the base's short name) or from uploaded GGUF blobs
(``files``, ``adapters``); then the request's template and system replace earlier ones, licenses are
appended, parameters are merged over the inherited ones (new keys win, old keys stay), messages replace
the old ones only when given.  The config blob and the manifest follow, and blobs only the replaced
manifest used are removed.  Progress goes through a callback with Ollama's status texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corral.store.blobs import normalize_digest
from corral.store.create import messages_bytes, params_bytes
from corral.store.errors import GGUFError, StoreError
from corral.store.gguf import GGUFMetadata, read_metadata
from corral.store.manifest import (
    MEDIA_TYPE_ADAPTER,
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_DRAFT,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_PROJECTOR,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    ConfigV2,
    Layer,
    Manifest,
)
from corral.store.models import LocalModel, Store
from corral.store.names import ModelName

__all__ = ["CreateError", "build_model", "gguf_media_type"]

log = logging.getLogger(__name__)

GGML_TYPES = (MEDIA_TYPE_MODEL, MEDIA_TYPE_PROJECTOR, MEDIA_TYPE_ADAPTER)
ERR_NOT_GGUF = "supplied file was not in GGUF format"
ERR_ONE_ADAPTER = "only one adapter is currently supported"

Progress = Callable[[str], None]


class CreateError(StoreError, ValueError):
    """A create request the client got wrong (the route answers 400 with this text)."""


def gguf_media_type(meta: GGUFMetadata) -> str:
    """model, adapter or projector, from the GGUF's own keys (Ollama's ``ggufLayers``)."""
    kind = meta.get("general.type")
    if kind == "adapter":
        return MEDIA_TYPE_ADAPTER
    if kind == "projector" or (not meta.block_count and meta.arch_get("vision.block_count")):
        return MEDIA_TYPE_PROJECTOR
    return MEDIA_TYPE_MODEL


def _touch(store: Store, digest: str) -> None:
    # Ollama refreshes a reused blob's mtime, so start-up pruning (older than 1 h) never races a create.
    try:
        os.utime(store.blobs.path(digest))
    except OSError:
        pass


def _blob_layer(store: Store, data: bytes, media_type: str, statuses: dict[int, str]) -> Layer:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    existed = store.blobs.exists(digest)
    digest, size = store.blobs.put_bytes(data)
    if existed:
        _touch(store, digest)
    layer = Layer(media_type, digest, size)
    statuses[id(layer)] = f"{'using existing' if existed else 'creating new'} layer {digest}"
    return layer


def _file_layers(store: Store, files: Mapping[str, str], progress: Progress, *, adapter: bool) -> list[
        tuple[Layer, GGUFMetadata]]:
    out: list[tuple[Layer, GGUFMetadata]] = []
    for fname in sorted(files):
        digest = normalize_digest(files[fname])
        progress("parsing GGUF")
        if not store.blobs.exists(digest):
            raise CreateError(f"blob {digest} not found: upload it first with POST /api/blobs/{digest}")
        path = store.blobs.path(digest)
        try:
            meta = read_metadata(path)
        except GGUFError:
            raise CreateError(ERR_NOT_GGUF) from None
        _touch(store, digest)
        media = MEDIA_TYPE_ADAPTER if adapter else gguf_media_type(meta)
        out.append((Layer(media, digest, path.stat().st_size), meta))
    return out


def build_model(
    store: Store,
    name: ModelName,
    *,
    base: LocalModel | None = None,
    files: Mapping[str, str] | None = None,
    adapters: Mapping[str, str] | None = None,
    drafts: Mapping[str, str] | None = None,
    template: str = "",
    system: str = "",
    licenses: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    renderer: str = "",
    parser: str = "",
    requires: str = "",
    progress: Progress | None = None,
    prune: bool = True,
) -> LocalModel:
    """Create or replace model ``name``; see the module docstring.  Raises :class:`CreateError`."""
    report: Progress = progress or (lambda _status: None)
    statuses: dict[int, str] = {}
    layers: list[Layer] = []
    ggml: list[GGUFMetadata] = []
    config = ConfigV2(model_format="", model_families=[])

    if base is not None:
        from_name = base.short_name
        for layer in base.manifest.layers:
            new = Layer(layer.media_type, layer.digest, layer.size, from_=from_name, name=layer.name)
            statuses[id(new)] = f"using existing layer {layer.digest}"
            _touch(store, layer.digest)
            layers.append(new)
            if layer.media_type in GGML_TYPES:
                try:
                    ggml.append(read_metadata(store.blobs.path(layer.digest)))
                except (GGUFError, OSError) as e:
                    log.warning("base layer %s of %s unreadable: %s", layer.digest, from_name, e)
        for key in ("renderer", "parser", "requires", "capabilities"):
            if base.config.get(key):
                setattr(config, key, base.config[key])
    elif files:
        for layer, meta in _file_layers(store, files, report, adapter=False):
            statuses[id(layer)] = f"using existing layer {layer.digest}"
            layers.append(layer)
            ggml.append(meta)
    if adapters:
        if len(adapters) > 1:
            raise CreateError(ERR_ONE_ADAPTER)
        for layer, meta in _file_layers(store, adapters, report, adapter=True):
            statuses[id(layer)] = f"using existing layer {layer.digest}"
            layers.append(layer)
            ggml.append(meta)

    if drafts:
        # A DRAFT model for speculative decoding: stored (one layer per file, replacing older ones) and
        # shown; the runner does not use it yet.
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_DRAFT]
        for layer, _meta in _file_layers(store, drafts, report, adapter=False):
            draft = Layer(MEDIA_TYPE_DRAFT, layer.digest, layer.size)
            statuses[id(draft)] = f"using existing layer {layer.digest}"
            layers.append(draft)

    for meta in ggml:
        config.model_format = config.model_format or "gguf"
        config.model_family = config.model_family or meta.architecture
        config.model_type = config.model_type or meta.parameter_size
        config.file_type = config.file_type or meta.file_type_name
        if config.model_families is not None and meta.architecture not in config.model_families:
            config.model_families.append(meta.architecture)
    config.renderer = renderer or config.renderer
    config.parser = parser or config.parser
    config.requires = requires or config.requires

    if template:
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_TEMPLATE]
        layers.append(_blob_layer(store, template.encode(), MEDIA_TYPE_TEMPLATE, statuses))
    if system:
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_SYSTEM]
        layers.append(_blob_layer(store, system.encode(), MEDIA_TYPE_SYSTEM, statuses))
    for text in licenses:
        if text:
            layers.append(_blob_layer(store, text.encode(), MEDIA_TYPE_LICENSE, statuses))

    merged: dict[str, Any] = dict(params or {})
    for layer in layers:
        if layer.media_type == MEDIA_TYPE_PARAMS:
            try:
                old = json.loads(store.blobs.read_bytes(layer.digest))
            except (OSError, ValueError):
                continue
            if isinstance(old, dict):
                for key, value in old.items():
                    merged.setdefault(key, value)
    if merged:
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_PARAMS]
        layers.append(_blob_layer(store, params_bytes(merged), MEDIA_TYPE_PARAMS, statuses))
    if messages:
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_MESSAGES]
        layers.append(_blob_layer(store, messages_bytes(messages), MEDIA_TYPE_MESSAGES, statuses))

    config.diff_ids = [x.digest for x in layers]
    config_digest, config_size = store.blobs.put_bytes(config.to_bytes(newline=True))
    for layer in layers:
        if id(layer) in statuses:
            report(statuses[id(layer)])

    previous = store.resolve(name)
    report("writing manifest")
    manifest = Manifest(config=Layer(MEDIA_TYPE_CONFIG, config_digest, config_size), layers=tuple(layers))
    model = store.write_manifest(name, manifest)
    if previous is not None and prune:
        store.remove_unreferenced(previous.manifest.digests())
    report("success")
    return model
