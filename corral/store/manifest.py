"""Manifests (Docker schema 2) and config blobs (``ConfigV2``), byte-compatible with Ollama.

The manifest digest that ``/api/tags`` shows is the sha256 of the manifest file, and registries
address manifests by the same digest, so serialisation must reproduce Ollama's bytes: compact JSON,
Go struct field order, ``omitempty`` where Go has it.  Pulled manifests are stored verbatim; these
serialisers are for manifests and configs that corral writes itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from corral.store import gojson
from corral.store.blobs import normalize_digest
from corral.store.errors import InvalidDigest, InvalidManifest

__all__ = [
    "MEDIA_TYPE_ADAPTER",
    "MEDIA_TYPE_CONFIG",
    "MEDIA_TYPE_DRAFT",
    "MEDIA_TYPE_EMBED",
    "MEDIA_TYPE_JSON",
    "MEDIA_TYPE_LICENSE",
    "MEDIA_TYPE_MANIFEST",
    "MEDIA_TYPE_MESSAGES",
    "MEDIA_TYPE_MODEL",
    "MEDIA_TYPE_PARAMS",
    "MEDIA_TYPE_PROJECTOR",
    "MEDIA_TYPE_PROMPT",
    "MEDIA_TYPE_SYSTEM",
    "MEDIA_TYPE_TEMPLATE",
    "MEDIA_TYPE_TENSOR",
    "ConfigV2",
    "Layer",
    "Manifest",
]

MEDIA_TYPE_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_MODEL = "application/vnd.ollama.image.model"
MEDIA_TYPE_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_TYPE_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_TYPE_DRAFT = "application/vnd.ollama.image.draft"
MEDIA_TYPE_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_TYPE_PROMPT = "application/vnd.ollama.image.prompt"  # legacy name of the template layer
MEDIA_TYPE_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_TYPE_PARAMS = "application/vnd.ollama.image.params"
MEDIA_TYPE_MESSAGES = "application/vnd.ollama.image.messages"
MEDIA_TYPE_LICENSE = "application/vnd.ollama.image.license"
MEDIA_TYPE_TENSOR = "application/vnd.ollama.image.tensor"
MEDIA_TYPE_JSON = "application/vnd.ollama.image.json"
MEDIA_TYPE_EMBED = "application/vnd.ollama.image.embed"  # deprecated, ignored


def _require(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise InvalidManifest(f"{what}: missing or invalid {key!r}")
    return value


@dataclass(frozen=True)
class Layer:
    """One manifest entry: ``mediaType, digest, size, from?, name?`` (Ollama's field order)."""

    media_type: str
    digest: str
    size: int
    from_: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.from_:
            d["from"] = self.from_
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, obj: Any) -> Layer:
        if not isinstance(obj, dict):
            raise InvalidManifest("layer: not an object")
        digest = _require(obj, "digest", str, "layer")
        try:
            normalize_digest(digest)
        except InvalidDigest as e:
            raise InvalidManifest(f"layer: invalid digest {digest!r}") from e
        return cls(
            media_type=_require(obj, "mediaType", str, "layer"),
            digest=digest,
            size=_require(obj, "size", int, "layer"),
            from_=obj.get("from") or None,
            name=obj.get("name") or None,
        )


@dataclass(frozen=True)
class Manifest:
    config: Layer
    layers: tuple[Layer, ...]
    schema_version: int = 2
    media_type: str = MEDIA_TYPE_MANIFEST

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": self.schema_version,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_bytes(self) -> bytes:
        """Compact JSON as Go's ``json.Marshal`` writes it (no trailing newline).

        Ollama writes manifests it creates with ``json.Encoder``, which adds ``"\\n"``;
        :meth:`Store.write_manifest` adds it for those.
        """
        return gojson.dumps(self.to_dict())

    @classmethod
    def parse(cls, data: bytes | str) -> Manifest:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidManifest(f"manifest: not JSON: {e}") from e
        if not isinstance(obj, dict):
            raise InvalidManifest("manifest: not an object")
        layers = obj.get("layers")
        if layers is None:
            layers = []  # Go decodes null into an empty slice
        if not isinstance(layers, list):
            raise InvalidManifest("manifest: 'layers' is not a list")
        config = obj.get("config")
        return cls(
            config=Layer.from_dict(config),
            layers=tuple(Layer.from_dict(item) for item in layers),
            schema_version=int(obj.get("schemaVersion", 2)),
            media_type=str(obj.get("mediaType", MEDIA_TYPE_MANIFEST)),
        )

    @property
    def size(self) -> int:
        """Sum of layer sizes and the config size, as ``/api/tags`` reports it."""
        return self.config.size + sum(layer.size for layer in self.layers)

    def digests(self) -> list[str]:
        """Every blob digest this manifest references (config first), normalised."""
        return [normalize_digest(layer.digest) for layer in (self.config, *self.layers)]

    def layers_of(self, *media_types: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.media_type in media_types]


# ConfigV2's fields in Go declaration order; ``True`` marks ``omitempty``.  Unknown keys found in a
# parsed config are kept and written just before ``architecture``, so newer Ollama fields survive.
_CONFIG_FIELDS: tuple[tuple[str, bool], ...] = (
    ("model_format", False),
    ("model_family", False),
    ("model_families", False),
    ("model_type", False),
    ("file_type", False),
    ("renderer", True),
    ("parser", True),
    ("requires", True),
    ("remote_host", True),
    ("remote_model", True),
    ("capabilities", True),
    ("context_length", True),
    ("embedding_length", True),
    ("base_name", True),
    ("draft", True),
)
_CONFIG_TAIL = ("architecture", "os", "rootfs")


@dataclass
class ConfigV2:
    """The config blob (``application/vnd.docker.container.image.v1+json``)."""

    model_format: str = ""
    model_family: str = ""
    model_families: list[str] | None = None
    model_type: str = ""
    file_type: str = ""
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    remote_host: str = ""
    remote_model: str = ""
    capabilities: list[str] | None = None
    context_length: int = 0
    embedding_length: int = 0
    base_name: str = ""
    draft: dict[str, Any] | None = None
    architecture: str = "amd64"
    os: str = "linux"
    rootfs_type: str = "layers"
    diff_ids: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for key, omitempty in _CONFIG_FIELDS:
            value = getattr(self, key)
            if omitempty and not value:
                continue
            d[key] = value
        d.update(self.extra)
        d["architecture"] = self.architecture
        d["os"] = self.os
        d["rootfs"] = {"type": self.rootfs_type, "diff_ids": self.diff_ids}
        return d

    def to_bytes(self, *, newline: bool = False) -> bytes:
        """Go's bytes; ``newline=True`` as Ollama's ``json.Encoder`` writes a config it creates."""
        return gojson.dumps(self.to_dict(), newline=newline)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ConfigV2:
        if not isinstance(obj, dict):
            raise InvalidManifest("config: not an object")
        known = {key for key, _ in _CONFIG_FIELDS} | set(_CONFIG_TAIL)
        cfg = cls(extra={k: v for k, v in obj.items() if k not in known})
        for key, _ in _CONFIG_FIELDS:
            if key in obj:
                setattr(cfg, key, obj[key])
        cfg.architecture = obj.get("architecture", "")
        cfg.os = obj.get("os", "")
        rootfs = obj.get("rootfs")
        if isinstance(rootfs, dict):
            cfg.rootfs_type = rootfs.get("type", "")
            cfg.diff_ids = rootfs.get("diff_ids")
        return cfg

    @classmethod
    def parse(cls, data: bytes | str) -> ConfigV2:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidManifest(f"config: not JSON: {e}") from e
        return cls.from_dict(obj)
