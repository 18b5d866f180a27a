"""The store half of ``POST /api/create`` (reference §3.2): layers in, manifest out.

``build_model`` follows Ollama's ``CreateHandler``/``createModel``: base layers come either from an
existing model (every layer kept, ``from`` set to the base's short name) or from uploaded GGUF blobs
(``files``, ``adapters``); then the request's template and system replace earlier ones, licenses are
appended, parameters are merged over the inherited ones (new keys win, old keys stay), messages replace
the old ones only when given.  With ``quantize`` the F16/BF16/F32 weights are quantized by llama.cpp
into a new model layer (``draft_quantize`` does the same for a DRAFT); ``info`` overrides config
fields as Ollama's ``applyCreateInfo`` does.  The config blob and the manifest follow, and blobs only
the replaced manifest used are removed.  Progress goes through a callback with Ollama's status texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

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
from corral.store.quantize import (
    PROGRESS_DIGEST,
    QuantizeRefused,
    check_source,
    parse_quant_type,
    quantize_blob,
)

__all__ = ["CreateError", "Progress", "apply_info", "build_model", "gguf_media_type", "validate_quantize"]

log = logging.getLogger(__name__)

GGML_TYPES = (MEDIA_TYPE_MODEL, MEDIA_TYPE_PROJECTOR, MEDIA_TYPE_ADAPTER)
ERR_NOT_GGUF = "supplied file was not in GGUF format"
ERR_ONE_ADAPTER = "only one adapter is currently supported"


class Progress(Protocol):
    """Receives each status line of a create; quantization also reports bytes done of the layer."""

    def __call__(self, status: str, *, digest: str = "", total: int = 0, completed: int = 0) -> None: ...


def _no_progress(status: str, *, digest: str = "", total: int = 0, completed: int = 0) -> None:
    pass


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


def _is_hf_folder(files: Mapping[str, str]) -> bool:
    from corral.store.convert import is_hf_folder  # numpy and gguf, only for a create that needs them

    return is_hf_folder(files)


def _converted_layer(store: Store, files: Mapping[str, str], progress: Progress) -> tuple[Layer, GGUFMetadata, bool]:
    """A Hugging Face folder's uploaded files converted to one F16 GGUF blob (corral.store.convert): the
    weights layer, its header, and whether that blob already existed. The folder's own files are read in
    place (each is a blob already) and never become layers; nothing is left behind when conversion fails."""
    from corral.store.convert import ConvertError, convert_folder

    paths: dict[str, Path] = {}
    for fname in sorted(files):
        digest = normalize_digest(files[fname])
        if not store.blobs.exists(digest):
            raise CreateError(f"blob {digest} not found: upload it first with POST /api/blobs/{digest}")
        paths[fname] = store.blobs.path(digest)
    with store.blobs.scratch() as tmp:
        try:
            convert_folder(paths, tmp, progress=lambda status: progress(status))
            meta = read_metadata(tmp)
        except ConvertError as e:
            raise CreateError(str(e)) from None
        except GGUFError as e:
            raise CreateError(f"conversion wrote an invalid GGUF: {e}") from None
        digest, size, existed = store.blobs.adopt(tmp)
    if existed:
        _touch(store, digest)
    return Layer(gguf_media_type(meta), digest, size), meta, existed


# --- quantize -----------------------------------------------------------------------------------


def _quantizable(store: Store, layers: Sequence[Layer], media_type: str) -> list[tuple[Layer, GGUFMetadata]]:
    out = []
    for layer in layers:
        if layer.media_type != media_type:
            continue
        try:
            out.append((layer, read_metadata(store.blobs.path(layer.digest))))
        except (GGUFError, OSError):
            continue  # not readable here: build_model reports it, or keeps the layer as Ollama would
    return out


def _check_draft_vocab(layers: Sequence[Layer], metas: Mapping[int, GGUFMetadata]) -> None:
    """A draft's guesses are token ids: they mean the same only under the same tokenizer. Token texts must
    agree over the shorter vocabulary (a few padding tokens at the end may differ, as llama.cpp allows), and so
    must the ends of text."""
    model = next((metas.get(id(x)) for x in layers if x.media_type == MEDIA_TYPE_MODEL), None)
    draft = next((metas.get(id(x)) for x in reversed(layers) if x.media_type == MEDIA_TYPE_DRAFT), None)
    if model is None or draft is None:
        return
    problem = draft_vocab_problem(model, draft)
    if problem:
        raise CreateError(f"the DRAFT model cannot draft for this model: {problem}")


def draft_vocab_problem(model: GGUFMetadata, draft: GGUFMetadata) -> str:
    """Why ``draft`` cannot guess tokens for ``model`` ("" when it can)."""
    a, b = model.get("tokenizer.ggml.tokens"), draft.get("tokenizer.ggml.tokens")
    if a is None or b is None:
        return "a GGUF without a vocabulary"
    if model.get("tokenizer.ggml.model") != draft.get("tokenizer.ggml.model"):
        return (f"its tokenizer is {draft.get('tokenizer.ggml.model')!r}, "
                f"the model's {model.get('tokenizer.ggml.model')!r}")
    if abs(len(a) - len(b)) > VOCAB_SLACK:
        return f"its vocabulary has {len(b)} tokens, the model's {len(a)}"
    ta = a.values() if hasattr(a, "values") else list(a)
    tb = b.values() if hasattr(b, "values") else list(b)
    n = min(len(ta), len(tb))
    if ta[:n] != tb[:n]:
        first = next(i for i in range(n) if ta[i] != tb[i])
        return f"its token {first} is {tb[first]!r}, the model's {ta[first]!r}"
    if (model.bos_token_id, model.eos_token_id) != (draft.bos_token_id, draft.eos_token_id):
        return "its beginning or end of text is another token"
    return ""


VOCAB_SLACK = 128  # tokens the two vocabularies may differ by at the end (llama.cpp's speculative check allows as much)


def validate_quantize(store: Store, *, quantize: str = "", draft_quantize: str = "", base: LocalModel | None = None,
                      files: Mapping[str, str] | None = None, drafts: Mapping[str, str] | None = None) -> None:
    """Refuse a bad quantize request before any work starts (:class:`CreateError`, a 400).

    Checks the type names, ``draft_quantize`` without a DRAFT, and sources that are already quantized
    (read from GGUF headers only).  ``build_model`` checks again; this only makes the refusal a
    plain 400 instead of an error line in the middle of a stream.
    """
    try:
        if quantize:
            parse_quant_type(quantize)
            if base is not None:
                layers = list(base.manifest.layers)
            else:
                layers = [Layer(MEDIA_TYPE_MODEL, normalize_digest(d), 0) for d in (files or {}).values()]
            for _layer, meta in _quantizable(store, layers, MEDIA_TYPE_MODEL):
                if gguf_media_type(meta) == MEDIA_TYPE_MODEL:
                    check_source(meta.file_type_name)
        if draft_quantize:
            if not drafts:
                raise CreateError("--draft-quantize requires a DRAFT model")
            parse_quant_type(draft_quantize)
            layers = [Layer(MEDIA_TYPE_DRAFT, normalize_digest(d), 0) for d in drafts.values()]
            for _layer, meta in _quantizable(store, layers, MEDIA_TYPE_DRAFT):
                check_source(meta.file_type_name, draft=True)
    except QuantizeRefused as e:
        raise CreateError(str(e)) from None


def _quantize_layers(store: Store, layers: list[Layer], metas: dict[int, GGUFMetadata], statuses: dict[int, str],
                     media_type: str, target: str, report: Progress) -> list[Layer]:
    """Replace each ``media_type`` layer by its quantization to ``target`` (a no-op when already that type)."""
    try:
        name, _ = parse_quant_type(target)
    except QuantizeRefused as e:
        raise CreateError(str(e)) from None
    out: list[Layer] = []
    for layer in layers:
        meta = metas.get(id(layer))
        if layer.media_type != media_type or meta is None:
            out.append(layer)
            continue
        source = meta.file_type_name
        try:
            check_source(source, draft=media_type == MEDIA_TYPE_DRAFT)
        except QuantizeRefused as e:
            raise CreateError(str(e)) from None
        if source == name:
            out.append(layer)
            continue
        status = f"quantizing {source} model to {name}"

        def progress(done: int, total: int, *, status: str = status, size: int = layer.size) -> None:
            # Ollama reports bytes of the source layer; llama.cpp tells tensors, so scale by those.
            completed = size if total <= 0 else int(size * min(done, total) / total)
            report(status, digest=PROGRESS_DIGEST, total=size, completed=completed)

        report(status, digest=PROGRESS_DIGEST, total=layer.size, completed=0)
        digest, size, existed = quantize_blob(store.blobs, layer.digest, name, progress=progress,
                                              verified=lambda: report("verifying conversion"))
        if existed:
            _touch(store, digest)
        new = Layer(media_type, digest, size)
        statuses[id(new)] = f"{'using existing' if existed else 'creating new'} layer {digest}"
        metas[id(new)] = read_metadata(store.blobs.path(digest))
        out.append(new)
    return out


# --- info -----------------------------------------------------------------------------------------


def apply_info(config: ConfigV2, info: Mapping[str, Any] | None) -> None:
    """Ollama's ``applyCreateInfo``: ``info`` overrides config fields; a wrong type is a :class:`CreateError`."""
    if not info:
        return
    if "capabilities" in info:
        caps = info["capabilities"]
        if not isinstance(caps, list):
            raise CreateError('info field "capabilities" must be an array of strings')
        for i, cap in enumerate(caps):
            if not isinstance(cap, str):
                raise CreateError(f'info field "capabilities" element {i} must be a string')
        config.capabilities = list(caps)

    def text(key: str) -> str | None:
        if key not in info:
            return None
        value = info[key]
        if not isinstance(value, str):
            raise CreateError(f'info field "{key}" must be a string')
        return value

    def number(key: str) -> int | None:
        if key not in info:
            return None
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CreateError(f'info field "{key}" must be a number')
        if value < 0 or not math.isfinite(value) or int(value) != value:
            raise CreateError(f'info field "{key}" must be a non-negative integer')
        return int(value)

    family = text("model_family")
    if family is not None:
        config.model_family = family
        config.model_families = [family] if family else None
    for key, attr in (("base_name", "base_name"), ("quantization_level", "file_type"),
                      ("parameter_size", "model_type")):
        value = text(key)
        if value is not None:
            setattr(config, attr, value)
    for key in ("context_length", "embedding_length"):
        count = number(key)
        if count is not None:
            setattr(config, key, count)


# --- create -------------------------------------------------------------------------------------


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
    quantize: str = "",
    draft_quantize: str = "",
    info: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    prune: bool = True,
) -> LocalModel:
    """Create or replace model ``name``; see the module docstring.  Raises :class:`CreateError`."""
    report: Progress = progress or _no_progress
    statuses: dict[int, str] = {}
    metas: dict[int, GGUFMetadata] = {}  # GGUF header of each weights layer, by id(layer)
    layers: list[Layer] = []
    config = ConfigV2(model_format="", model_families=[])

    if base is not None:
        from_name = base.short_name
        for layer in base.manifest.layers:
            new = Layer(layer.media_type, layer.digest, layer.size, from_=from_name, name=layer.name)
            statuses[id(new)] = f"using existing layer {layer.digest}"
            _touch(store, layer.digest)
            layers.append(new)
            if layer.media_type in (*GGML_TYPES, MEDIA_TYPE_DRAFT):
                try:
                    metas[id(new)] = read_metadata(store.blobs.path(layer.digest))
                except (GGUFError, OSError) as e:
                    log.warning("base layer %s of %s unreadable: %s", layer.digest, from_name, e)
        for key in ("renderer", "parser", "requires", "capabilities", "draft"):
            if base.config.get(key):
                setattr(config, key, base.config[key])
    elif files and _is_hf_folder(files):
        layer, meta, existed = _converted_layer(store, files, report)
        statuses[id(layer)] = f"{'using existing' if existed else 'creating new'} layer {layer.digest}"
        layers.append(layer)
        metas[id(layer)] = meta
    elif files:
        for layer, meta in _file_layers(store, files, report, adapter=False):
            statuses[id(layer)] = f"using existing layer {layer.digest}"
            layers.append(layer)
            metas[id(layer)] = meta
    if adapters:
        if len(adapters) > 1:
            raise CreateError(ERR_ONE_ADAPTER)
        for layer, meta in _file_layers(store, adapters, report, adapter=True):
            statuses[id(layer)] = f"using existing layer {layer.digest}"
            layers.append(layer)
            metas[id(layer)] = meta

    if drafts:
        # A DRAFT model for speculative decoding (one layer per file, replacing older ones); it guesses the
        # model's next tokens by id, so it must have the model's vocabulary
        layers = [x for x in layers if x.media_type != MEDIA_TYPE_DRAFT]
        for layer, meta in _file_layers(store, drafts, report, adapter=False):
            draft = Layer(MEDIA_TYPE_DRAFT, layer.digest, layer.size)
            statuses[id(draft)] = f"using existing layer {layer.digest}"
            layers.append(draft)
            metas[id(draft)] = meta
    elif draft_quantize:
        raise CreateError("--draft-quantize requires a DRAFT model")

    if quantize:
        layers = _quantize_layers(store, layers, metas, statuses, MEDIA_TYPE_MODEL, quantize, report)
    if draft_quantize:
        layers = _quantize_layers(store, layers, metas, statuses, MEDIA_TYPE_DRAFT, draft_quantize, report)
    if drafts:
        _check_draft_vocab(layers, metas)

    # Info comes first: the GGUF facts below only fill what it left empty, as in Ollama.
    apply_info(config, info)
    for layer in layers:
        found = metas.get(id(layer))
        if found is None:
            continue
        if layer.media_type == MEDIA_TYPE_DRAFT:
            config.draft = {"model_format": "gguf", "architecture": found.architecture}
            continue
        config.model_format = config.model_format or "gguf"
        config.model_family = config.model_family or found.architecture
        config.model_type = config.model_type or found.parameter_size
        config.file_type = config.file_type or found.file_type_name
        if config.model_families is None:
            config.model_families = []
        if found.architecture not in config.model_families:
            config.model_families.append(found.architecture)
    if not any(x.media_type == MEDIA_TYPE_DRAFT for x in layers):
        config.draft = None
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
