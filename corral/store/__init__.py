"""corral.store: the model store, in Ollama's on-disk layout byte for byte.

``$OLLAMA_MODELS/manifests/<host>/<namespace>/<model>/<tag>`` holds a Docker schema 2 manifest;
``$OLLAMA_MODELS/blobs/sha256-<hex>`` holds the layers it names.  A directory written by Ollama
works under corral and the reverse.  See ``docs/architecture.md`` for the contract.
"""

from __future__ import annotations

from corral.store.blobs import BlobStore, BlobWriter, normalize_digest
from corral.store.bundled import BUNDLED, ensure_bundled, installed_bundled
from corral.store.create import create_from_gguf
from corral.store.errors import (
    DigestMismatch,
    GGUFError,
    InvalidDigest,
    InvalidManifest,
    InvalidModelName,
    ModelExists,
    ModelNotFound,
    StoreError,
)
from corral.store.gguf import GGUFMetadata, read_metadata
from corral.store.manifest import ConfigV2, Layer, Manifest
from corral.store.models import LocalModel, Store, default_models_dir
from corral.store.names import ModelName
from corral.store.prune import fix_blob_names, prune_unreferenced

__all__ = [
    "BUNDLED",
    "BlobStore",
    "BlobWriter",
    "ConfigV2",
    "DigestMismatch",
    "GGUFError",
    "GGUFMetadata",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidModelName",
    "Layer",
    "LocalModel",
    "Manifest",
    "ModelExists",
    "ModelName",
    "ModelNotFound",
    "Store",
    "StoreError",
    "create_from_gguf",
    "default_models_dir",
    "ensure_bundled",
    "fix_blob_names",
    "installed_bundled",
    "normalize_digest",
    "prune_unreferenced",
    "read_metadata",
]
