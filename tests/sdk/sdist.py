"""ollama-python 0.6.3's PyPI source distribution, for the tests that run its suite and its examples.

Downloaded once into ``<repo>/.cache/sdist`` (pip, no build) and checked against its sha256; parts of it
are unpacked into temporary directories at test time, never copied into the repository. Without network
the caller skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "sdist"
VERSION = "0.6.3"
SDIST = CACHE / f"ollama-{VERSION}.tar.gz"
SDIST_SHA256 = "41fc49a8095c4a75939c4c1f8582e4d0671692fb6eac2a5a7ede8c9872b67096"


def fail_or_skip(message: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def fetch_sdist() -> Path:
    """The sdist, downloaded on first use and verified."""
    if not SDIST.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += [f"ollama=={VERSION}", "-d", str(CACHE)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            fail_or_skip("pip download of the ollama sdist timed out")
        if done.returncode != 0 or not SDIST.exists():
            fail_or_skip(f"could not download the ollama {VERSION} sdist:\n{done.stdout}\n{done.stderr}")
    digest = hashlib.sha256(SDIST.read_bytes()).hexdigest()
    assert digest == SDIST_SHA256, f"{SDIST} has sha256 {digest}; delete it to download again"
    return SDIST


def unpack(sdist: Path, folder: str, dest: Path) -> Path:
    """Extract the ``.py`` files directly under ``ollama-<v>/<folder>/`` into ``dest/<folder>``.

    Nothing else is written: no package code, no subfolders, no path from the archive outside ``dest``.
    """
    out = dest / folder
    out.mkdir()
    prefix = f"ollama-{VERSION}/{folder}/"
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            name = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
            if member.isfile() and name.endswith(".py") and "/" not in name:
                source = archive.extractfile(member)
                assert source is not None
                (out / name).write_bytes(source.read())
    assert any(out.glob("*.py")), f"no {folder}/*.py found in {sdist}"
    return out
