"""Create a model from a local GGUF file: weights blob, small layers, config blob, manifest.

This is the minimal path bundled import and tests need; the full ``/api/create`` (Modelfiles,
``from`` a base model, quantize, safetensors) builds on the same pieces.  Layer bytes follow Ollama's
``json.Encoder`` output exactly (sorted keys for the params map, a trailing newline) so that the
same model created here and by Ollama shares blobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from corral.store import gojson
from corral.store.errors import ModelExists
from corral.store.gguf import read_metadata
from corral.store.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    ConfigV2,
    Layer,
    Manifest,
)
from corral.store.models import LocalModel, Store
from corral.store.names import ModelName

__all__ = ["create_from_gguf", "messages_bytes", "params_bytes"]


def params_bytes(params: Mapping[str, Any]) -> bytes:
    """The params blob: a Go ``map[string]any`` through ``json.Encoder`` (sorted, newline)."""
    return gojson.dumps(dict(params), sort_keys=True, newline=True)


def messages_bytes(messages: Sequence[Mapping[str, Any]]) -> bytes:
    """The messages blob: ``[]api.Message`` through ``json.Encoder``.

    ``role`` and ``content`` come first, as Go's struct order writes them; other fields follow in
    the order given, and empty ones are left out (``omitempty``).
    """
    items = []
    for message in messages:
        item: dict[str, Any] = {"role": message.get("role", ""), "content": message.get("content", "")}
        for key, value in message.items():
            if key not in item and value not in (None, "", [], {}):
                item[key] = value
        items.append(item)
    return gojson.dumps(items, newline=True)


def _text_layer(store: Store, text: str, media_type: str) -> Layer:
    digest, size = store.blobs.put_bytes(text.encode("utf-8"))
    return Layer(media_type, digest, size)


def create_from_gguf(
    store: Store,
    name: str | ModelName,
    gguf_path: str | Path,
    *,
    template: str | None = None,
    system: str | None = None,
    params: Mapping[str, Any] | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    license: str | Sequence[str] | None = None,
    link: bool = True,
    overwrite: bool = True,
    digest: str | None = None,
    prune_replaced: bool = True,
) -> LocalModel:
    """Import ``gguf_path`` as model ``name`` and return it.

    ``digest`` (``sha256:<hex>`` of the file) skips hashing when the caller already knows it.
    With ``overwrite=False`` an existing name raises :class:`ModelExists`.  When a manifest is
    replaced, blobs only it referenced are removed unless ``prune_replaced`` is false (the caller
    passes ``not OLLAMA_NOPRUNE``).
    """
    model_name = name if isinstance(name, ModelName) else ModelName.parse(name)
    previous = store.resolve(model_name)
    if previous is not None and not overwrite:
        raise ModelExists(model_name.display_shortest())

    meta = read_metadata(gguf_path)  # also proves the file is a GGUF before anything is written
    weights_digest, weights_size = store.blobs.import_file(gguf_path, link=link, digest=digest)
    layers = [Layer(MEDIA_TYPE_MODEL, weights_digest, weights_size)]

    # Ollama's order: template, system, license, params, messages.
    if template is not None:
        layers.append(_text_layer(store, template, MEDIA_TYPE_TEMPLATE))
    if system is not None:
        layers.append(_text_layer(store, system, MEDIA_TYPE_SYSTEM))
    licenses = [license] if isinstance(license, str) else list(license or [])
    layers.extend(_text_layer(store, text, MEDIA_TYPE_LICENSE) for text in licenses)
    if params:
        digest_p, size_p = store.blobs.put_bytes(params_bytes(params))
        layers.append(Layer(MEDIA_TYPE_PARAMS, digest_p, size_p))
    if messages:
        digest_m, size_m = store.blobs.put_bytes(messages_bytes(messages))
        layers.append(Layer(MEDIA_TYPE_MESSAGES, digest_m, size_m))

    family = meta.architecture
    config = ConfigV2(
        model_format="gguf",
        model_family=family,
        model_families=[family],
        model_type=meta.parameter_size,
        file_type=meta.file_type_name,
        diff_ids=[layer.digest for layer in layers],
    )
    config_digest, config_size = store.blobs.put_bytes(config.to_bytes(newline=True))
    manifest = Manifest(config=Layer(MEDIA_TYPE_CONFIG, config_digest, config_size), layers=tuple(layers))
    model = store.write_manifest(model_name, manifest)

    if previous is not None and prune_replaced:
        store.remove_unreferenced(previous.manifest.digests())
    return model
