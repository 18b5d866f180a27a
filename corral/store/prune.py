"""Pruning of ``blobs/``: what Ollama does at startup unless ``OLLAMA_NOPRUNE`` is set.

Files older than ``older_than`` seconds go if no manifest references them, or if their name is not
a valid blob name (stale ``-partial`` downloads, temporaries of an interrupted write); so do the
temporaries of manifest writes that never finished.  The age
limit protects writes and downloads in progress, including another process's.  The caller checks
``OLLAMA_NOPRUNE``; this module never reads the environment.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from corral.store.blobs import is_blob_filename
from corral.store.models import MANIFEST_TEMP_PREFIX, Store

__all__ = ["fix_blob_names", "prune_unreferenced"]

log = logging.getLogger(__name__)

_LEGACY_NAME = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def fix_blob_names(store: Store) -> list[Path]:
    """Rename legacy ``sha256:<hex>`` blob files to ``sha256-<hex>`` (Ollama always does this)."""
    renamed: list[Path] = []
    for entry in sorted(store.blobs.root.iterdir()):
        match = _LEGACY_NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        target = entry.with_name("sha256-" + match.group(1).lower())
        if target.exists():
            entry.unlink()
        else:
            entry.rename(target)
        renamed.append(target)
    return renamed


def prune_unreferenced(store: Store, older_than: float = 3600.0, *, now: float | None = None) -> list[Path]:
    """Delete old unreferenced or misnamed files in ``blobs/``; return the paths removed.

    Nothing is deleted when some manifest cannot be read (its references are unknown).  Empty
    manifest directories are removed as well.
    """
    referenced, unreadable = store.scan_references()
    if unreadable:
        log.warning("not pruning: unreadable manifests %s", [str(p) for p in unreadable])
        return []
    cutoff = (time.time() if now is None else now) - older_than
    removed: list[Path] = []
    for entry in sorted(store.blobs.root.iterdir()):
        try:
            st = entry.lstat()
        except FileNotFoundError:
            continue
        if not entry.is_file() or st.st_mtime > cutoff:
            continue
        if is_blob_filename(entry.name) and "sha256:" + entry.name[len("sha256-") :] in referenced:
            continue
        try:
            os.unlink(entry)
        except FileNotFoundError:
            continue
        removed.append(entry)
    if removed:
        log.info("pruned %d unused blobs", len(removed))
    removed += _stale_manifest_temps(store, cutoff)
    store.remove_empty_manifest_dirs()
    return removed


def _stale_manifest_temps(store: Store, cutoff: float) -> list[Path]:
    """Temporary files of manifest writes that never finished (the server was killed between the write and
    the rename): a leading dot keeps them out of listings, and nothing else would ever remove them."""
    removed: list[Path] = []
    for dirpath, _dirs, files in os.walk(store.manifests_dir):
        for name in files:
            if not name.startswith(MANIFEST_TEMP_PREFIX):
                continue
            path = Path(dirpath) / name
            try:
                if path.lstat().st_mtime <= cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue
    if removed:
        log.info("removed %d unfinished manifest writes", len(removed))
    return removed
