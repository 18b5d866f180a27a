"""The local model store: names -> manifests -> blobs, in Ollama's directory layout.

``Store(root)`` is one ``OLLAMA_MODELS`` directory; ``LocalModel`` is one manifest read from it,
with the layers decoded the way Ollama's ``GetModel`` does (last template/system/params wins,
licenses accumulate, the model layer gives the weights path and the parent model).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from corral.store.blobs import BlobStore, normalize_digest
from corral.store.errors import GGUFError, InvalidManifest, InvalidModelName, MissingBlob, ModelNotFound, StoreError
from corral.store.gguf import GGUFMetadata, read_metadata
from corral.store.manifest import (
    MEDIA_TYPE_ADAPTER,
    MEDIA_TYPE_DRAFT,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_PROJECTOR,
    MEDIA_TYPE_PROMPT,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    Layer,
    Manifest,
)
from corral.store.names import ModelName

__all__ = ["LocalModel", "Store", "default_models_dir"]

log = logging.getLogger(__name__)

MANIFEST_MODE = 0o644

# Substring checks of template text; a parsed Go template would be exact, but these are the
# markers Ollama's own checks come down to (template variables, think tags).
_GO_TOOLS = re.compile(r"\.Tools\b")
_GO_SUFFIX = re.compile(r"\.Suffix\b")
_GO_THINK = re.compile(r"\.Think(?:ing|Level)?\b")
_JINJA_THINK = ("<think>", "enable_thinking", "reasoning_content")


def default_models_dir() -> Path:
    """``$OLLAMA_MODELS``, else ``~/.ollama/models`` (Ollama's rule)."""
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env) if env else Path.home() / ".ollama" / "models"


def _read_text(store: Store, layer: Layer) -> str:
    return store.blobs.read_bytes(layer.digest).decode("utf-8", "replace")


@dataclass(eq=False)
class LocalModel:
    """One model in the store, as read from its manifest."""

    store: Store = field(repr=False)
    name: ModelName
    manifest: Manifest
    manifest_path: Path = field(repr=False)
    digest: str
    """sha256 hex of the manifest file bytes (what ``/api/tags`` calls ``digest``)."""
    modified_at: datetime
    """The manifest file's mtime, timezone-aware UTC."""
    config: dict[str, Any] = field(repr=False)

    @property
    def short_name(self) -> str:
        return self.name.display_shortest()

    @property
    def size(self) -> int:
        return self.manifest.size

    # -- layers -------------------------------------------------------------------------------

    def _last(self, *media_types: str) -> Layer | None:
        layers = self.manifest.layers_of(*media_types)
        return layers[-1] if layers else None

    @property
    def model_layer(self) -> Layer | None:
        return self._last(MEDIA_TYPE_MODEL)

    @property
    def model_path(self) -> Path | None:
        layer = self.model_layer
        return None if layer is None else self.store.blobs.path(layer.digest)

    @property
    def parent_model(self) -> str:
        layer = self.model_layer
        return (layer.from_ or "") if layer is not None else ""

    @cached_property
    def template(self) -> str | None:
        layer = self._last(MEDIA_TYPE_TEMPLATE, MEDIA_TYPE_PROMPT)
        return None if layer is None else _read_text(self.store, layer)

    @cached_property
    def system(self) -> str | None:
        layer = self._last(MEDIA_TYPE_SYSTEM)
        return None if layer is None else _read_text(self.store, layer)

    @cached_property
    def params(self) -> dict[str, Any]:
        # Ollama decodes every params layer into the same map, so later keys override.
        merged: dict[str, Any] = {}
        for layer in self.manifest.layers_of(MEDIA_TYPE_PARAMS):
            value = json.loads(self.store.blobs.read_bytes(layer.digest))
            if isinstance(value, dict):
                merged.update(value)
        return merged

    @cached_property
    def messages(self) -> builtins.list[dict[str, Any]]:
        layer = self._last(MEDIA_TYPE_MESSAGES)
        if layer is None:
            return []
        value = json.loads(self.store.blobs.read_bytes(layer.digest))
        return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []

    @cached_property
    def license(self) -> builtins.list[str]:
        return [_read_text(self.store, layer) for layer in self.manifest.layers_of(MEDIA_TYPE_LICENSE)]

    @property
    def adapters(self) -> builtins.list[Path]:
        return [self.store.blobs.path(x.digest) for x in self.manifest.layers_of(MEDIA_TYPE_ADAPTER)]

    @property
    def draft_path(self) -> Path | None:
        """The DRAFT model for speculative decoding, if the model has one (the last such layer wins)."""
        drafts = self.manifest.layers_of(MEDIA_TYPE_DRAFT)
        return self.store.blobs.path(drafts[-1].digest) if drafts else None

    @property
    def projectors(self) -> builtins.list[Path]:
        return [self.store.blobs.path(x.digest) for x in self.manifest.layers_of(MEDIA_TYPE_PROJECTOR)]

    # -- GGUF-derived -------------------------------------------------------------------------

    def gguf(self) -> GGUFMetadata | None:
        """Header metadata of the weights (cached by the reader); None without a readable GGUF."""
        path = self.model_path
        if path is None:
            return None
        try:
            return read_metadata(path)
        except GGUFError as e:
            log.warning("cannot read GGUF metadata of %s: %s", self.short_name, e)
            return None

    def details(self, *, lengths: bool = False) -> dict[str, Any]:
        """``details`` of ``/api/tags`` and ``/api/show``, from the config blob (GGUF fills gaps). With
        ``lengths``, also the context and embedding lengths ``/api/tags`` lists (Ollama 0.33)."""
        cfg = self.config
        details: dict[str, Any] = {
            "parent_model": self.parent_model,
            "format": cfg.get("model_format", ""),
            "family": cfg.get("model_family", ""),
            "families": cfg.get("model_families"),
            "parameter_size": cfg.get("model_type", ""),
            "quantization_level": cfg.get("file_type", ""),
        }
        if not details["parameter_size"] or details["quantization_level"] in ("", "unknown"):
            meta = self.gguf()
            if meta is not None:
                details["parameter_size"] = details["parameter_size"] or meta.parameter_size
                if details["quantization_level"] in ("", "unknown"):
                    details["quantization_level"] = meta.file_type_name
        if lengths:
            meta = self.gguf()
            details["context_length"] = int(cfg.get("context_length") or (meta.context_length if meta else 0) or 0)
            details["embedding_length"] = int(cfg.get("embedding_length") or
                                              (meta.embedding_length if meta else 0) or 0)
        return details

    def model_info(self, verbose: bool = False) -> dict[str, Any]:
        meta = self.gguf()
        return {} if meta is None else meta.model_info(verbose)

    def tensors(self) -> builtins.list[dict[str, Any]]:
        meta = self.gguf()
        return [] if meta is None else meta.tensors()

    def capabilities(self) -> builtins.list[str]:
        """completion|embedding, vision, audio, tools, insert, thinking — in Ollama's order.

        With a TEMPLATE layer (Go template) the checks read it; without one the model is
        prompted through its GGUF Jinja ``chat_template`` (corral's documented difference from
        Ollama), so that is what the checks read.
        """
        cached = self.__dict__.get("_capabilities")
        if cached is None:
            cached = self.__dict__["_capabilities"] = self._capabilities()
        return list(cached)

    def _capabilities(self) -> builtins.list[str]:
        caps: builtins.list[str] = []

        def add(cap: str) -> None:
            if cap not in caps:
                caps.append(cap)

        meta = self.gguf()
        if meta is None:
            for cap in self.config.get("capabilities") or []:
                add(str(cap))
            if not caps and self.model_path is not None:
                add("completion")
        else:
            add("embedding" if meta.is_embedding else "completion")
            if meta.has_vision:
                add("vision")
            if meta.has_audio:
                add("audio")
            # what /api/create's info.capabilities declared, added as Ollama adds them
            for cap in self.config.get("capabilities") or []:
                add(str(cap))

        template = self.template
        if template is not None:
            if _GO_TOOLS.search(template):
                add("tools")
            if _GO_SUFFIX.search(template):
                add("insert")
        else:
            jinja = meta.chat_template if meta is not None else None
            if jinja and "tools" in jinja:
                add("tools")
        if self.projectors:
            add("vision")
        if template is not None:
            if _GO_THINK.search(template) or "<think>" in template:
                add("thinking")
        else:
            jinja = meta.chat_template if meta is not None else None
            if jinja and any(marker in jinja for marker in _JINJA_THINK):
                add("thinking")
        return caps


class Store:
    """An ``OLLAMA_MODELS`` directory: ``manifests/`` and ``blobs/``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_models_dir()
        self.blobs = BlobStore(self.root)
        self.manifests_dir = self.root / "manifests"
        self._loaded: dict[str, tuple[tuple[object, ...], LocalModel]] = {}
        # Held while a manifest is written and while a delete decides which blobs nobody references: a create
        # or copy that builds on a model being deleted either sees its blobs kept or finds them gone and
        # fails, never writes a manifest whose blobs are missing (MissingBlob).
        self._references = threading.RLock()
        self.blobs.root.mkdir(parents=True, exist_ok=True)
        self.manifests_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- names --------------------------------------------------------------------------------

    @staticmethod
    def _parse(name: str | ModelName) -> ModelName:
        return name if isinstance(name, ModelName) else ModelName.parse(name)

    def iter_manifests(self) -> Iterator[tuple[ModelName, Path]]:
        """Every well-named manifest file, as Ollama's glob ``manifests/*/*/*/*`` finds them."""
        for host in _subdirs(self.manifests_dir):
            for namespace in _subdirs(host):
                for model in _subdirs(namespace):
                    for tag in _entries(model):
                        if not tag.is_file():
                            continue
                        try:
                            name = ModelName.from_parts(host.name, namespace.name, model.name, tag.name)
                        except InvalidModelName:
                            log.debug("skipping badly named manifest %s", tag)
                            continue
                        yield name, tag

    def existing_name(self, name: str | ModelName) -> ModelName | None:
        """The on-disk spelling of a name, matched case-insensitively (exact case preferred)."""
        wanted = self._parse(name)
        exact = wanted.manifest_path(self.root)
        if exact.is_file():
            return wanted
        found = _find_fold(self.manifests_dir, builtins.list(wanted.filepath_parts()))
        if found is None:
            return None
        host, namespace, model, tag = found
        try:
            return ModelName.from_parts(host, namespace, model, tag, scheme=wanted.scheme)
        except InvalidModelName:
            return None

    # -- reading ------------------------------------------------------------------------------

    def load(self, name: ModelName, path: Path | None = None) -> LocalModel:
        """Read one manifest (and its config blob) into a :class:`LocalModel`.

        Every request resolves its model, so an unchanged manifest file (same size and mtime, hence the
        same bytes, as writes are atomic renames) gives back the model read last time, with whatever it
        has already worked out (template, parameters, capabilities).
        """
        path = path if path is not None else name.manifest_path(self.root)
        st = path.stat()
        key = (str(path), str(name), st.st_size, st.st_mtime_ns, st.st_ino)
        hit = self._loaded.get(str(path))
        if hit is not None and hit[0] == key:
            return hit[1]
        data = path.read_bytes()
        manifest = Manifest.parse(data)
        config: dict[str, Any] = {}
        if manifest.config.digest:
            try:
                value = json.loads(self.blobs.read_bytes(manifest.config.digest))
            except FileNotFoundError as e:
                raise InvalidManifest(f"{name.display_shortest()}: config blob missing") from e
            except ValueError as e:
                raise InvalidManifest(f"{name.display_shortest()}: config blob is not JSON") from e
            if isinstance(value, dict):
                config = value
        model = LocalModel(
            store=self,
            name=name,
            manifest=manifest,
            manifest_path=path,
            digest=hashlib.sha256(data).hexdigest(),
            modified_at=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
            config=config,
        )
        self._loaded[str(path)] = (key, model)
        return model

    def resolve(self, name: str | ModelName) -> LocalModel | None:
        """The model of that name (case-insensitive), or None.  Bad names raise InvalidModelName."""
        existing = self.existing_name(name)
        if existing is None:
            return None
        try:
            return self.load(existing)
        except FileNotFoundError:
            return None  # deleted between the lookup and the read

    def get(self, name: str | ModelName) -> LocalModel:
        """Like :meth:`resolve`, but raises :class:`ModelNotFound`."""
        model = self.resolve(name)
        if model is None:
            raise ModelNotFound(name if isinstance(name, str) else name.display_shortest())
        return model

    def list(self) -> builtins.list[LocalModel]:
        """Every readable model, newest first (bad manifests are skipped, as Ollama does)."""
        models: builtins.list[LocalModel] = []
        for name, path in self.iter_manifests():
            try:
                models.append(self.load(name, path))
            except (OSError, StoreError) as e:
                log.warning("skipping model %s: %s", name.display_shortest(), e)
        models.sort(key=lambda m: m.modified_at, reverse=True)
        return models

    # -- writing ------------------------------------------------------------------------------

    def write_manifest(self, name: str | ModelName, manifest: Manifest | bytes) -> LocalModel:
        """Atomically write a manifest; an existing name keeps its on-disk case.

        ``bytes`` are written verbatim (a pulled manifest keeps the registry's digest); a
        :class:`Manifest` is written as Ollama's ``json.Encoder`` does, with a trailing newline.
        """
        parsed = self._parse(name)
        target = self.existing_name(parsed) or parsed
        data = manifest if isinstance(manifest, bytes) else manifest.to_bytes() + b"\n"
        if isinstance(manifest, bytes):
            Manifest.parse(manifest)  # refuse to store something we could not read back
        path = target.manifest_path(self.root)
        with self._references:
            self._check_blobs(Manifest.parse(data).digests())
            _atomic_write(path, data)
        return self.load(target, path)

    def _check_blobs(self, digests: Iterable[str]) -> None:
        for digest in digests:
            if not self.blobs.exists(digest):
                raise MissingBlob(digest)

    def copy(self, src: str | ModelName, dst: str | ModelName) -> LocalModel:
        """Copy the manifest file only; both names then share every blob."""
        source = self.get(src)
        destination = self._parse(dst)
        target = self.existing_name(destination) or destination
        if target.manifest_path(self.root) == source.manifest_path:
            return source
        with self._references:
            try:
                data = source.manifest_path.read_bytes()
            except FileNotFoundError:
                raise ModelNotFound(str(src)) from None  # deleted meanwhile
            self._check_blobs(Manifest.parse(data).digests())
            _atomic_write(target.manifest_path(self.root), data)
        return self.load(target)

    def delete(self, name: str | ModelName) -> LocalModel:
        """Remove a manifest, its empty directories, and blobs no other manifest references."""
        model = self.get(name)
        with self._references:
            try:
                model.manifest_path.unlink()
            except FileNotFoundError:
                raise ModelNotFound(str(name)) from None  # another delete was first
            self._remove_empty_dirs(model.manifest_path.parent)
            self.remove_unreferenced(model.manifest.digests())
        return model

    def _remove_empty_dirs(self, start: Path) -> None:
        current = start
        while current != self.manifests_dir and self.manifests_dir in current.parents:
            try:
                current.rmdir()
            except OSError:
                return
            current = current.parent

    def remove_empty_manifest_dirs(self) -> None:
        """Remove every empty directory under ``manifests/`` (deepest first)."""
        for dirpath, _dirnames, _files in os.walk(self.manifests_dir, topdown=False):
            path = Path(dirpath)
            if path != self.manifests_dir:
                try:
                    path.rmdir()
                except OSError:
                    pass

    # -- references ---------------------------------------------------------------------------

    def scan_references(self) -> tuple[set[str], builtins.list[Path]]:
        """(digests referenced by any manifest, manifests that could not be read)."""
        referenced: set[str] = set()
        unreadable: builtins.list[Path] = []
        for _name, path in self.iter_manifests():
            try:
                referenced.update(Manifest.parse(path.read_bytes()).digests())
            except (OSError, StoreError):
                unreadable.append(path)
        return referenced, unreadable

    def remove_unreferenced(self, candidates: Iterable[str]) -> builtins.list[str]:
        """Delete those of ``candidates`` that no manifest references; return their digests.

        If some manifest cannot be read, nothing is deleted: its references are unknown, and a
        store shared with Ollama must never lose a blob that another model still needs.
        """
        with self._references:
            referenced, unreadable = self.scan_references()
            if unreadable:
                log.warning("not removing blobs: unreadable manifests %s", [str(p) for p in unreadable])
                return []
            removed: builtins.list[str] = []
            for digest in dict.fromkeys(normalize_digest(d) for d in candidates):
                if digest not in referenced and self.blobs.remove(digest):
                    removed.append(digest)
            return removed


def _subdirs(path: Path) -> builtins.list[Path]:
    return [p for p in _entries(path) if p.is_dir()]


def _entries(path: Path) -> builtins.list[Path]:
    try:
        return sorted(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _find_fold(directory: Path, parts: list[str]) -> list[str] | None:
    """The on-disk spelling of the manifest path ``parts`` below ``directory``, each part matched
    case-insensitively (its exact case first). Every spelling of a level is tried: ``smollm2/`` may hold
    only ``135m`` while ``Smollm2/`` holds the ``latest`` asked for."""
    if not parts:
        return [] if directory.is_file() else None
    part, rest = parts[0], parts[1:]
    lowered = part.lower()
    spellings = [part] if (directory / part).exists() else []
    spellings += [e.name for e in _entries(directory) if e.name.lower() == lowered and e.name != part]
    for spelling in spellings:
        below = _find_fold(directory / spelling, rest)
        if below is not None:
            return [spelling, *below]
    return None


MANIFEST_TEMP_PREFIX = ".manifest-"
"""How a manifest's temporary file starts (prune removes old ones: a write the server did not finish)."""


def _atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same directory, fsync, chmod 0644, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot: not a valid name part, so listings never mistake it for a manifest.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=MANIFEST_TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, MANIFEST_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
