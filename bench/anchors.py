"""The anchors: llama.cpp's own tools built from the source that corral's engine was compiled from.

``build_anchors`` unpacks the pinned llama-cpp-python sdist, configures ``vendor/llama.cpp`` with CMake
(Release, ``-j2``) and builds ``llama-server``, ``llama-bench`` and ``llama-batched-bench`` (the spec suite:
``llama-server`` and ``llama-quantize``) into ``<repo>/.cache/llama.cpp-build/``; a second call finds the
binaries and returns at once.

``Server`` starts one HTTP server process (corral, llama-server or llama-cpp-python's server), waits for it
to answer, and stops it; every one runs on the same GGUF file with the same threads, slots and context.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
SDIST_DIR = CACHE / "sdist"
BUILD_ROOT = CACHE / "llama.cpp-build"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SDIST_NAME = "llama_cpp_python-0.3.36"
TOOLS = ("llama-server", "llama-bench", "llama-batched-bench")
SPEC_TOOLS = ("llama-server", "llama-quantize")  # the spec suite's: the server, and F16 made from the Q4_1 file


@dataclass
class Anchors:
    bin_dir: Path
    commit: str  # llama.cpp commit the vendored source was taken at

    def tool(self, name: str) -> Path:
        return self.bin_dir / name


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _sdist() -> Path:
    path = SDIST_DIR / f"{SDIST_NAME}.tar.gz"
    if not path.exists():
        SDIST_DIR.mkdir(parents=True, exist_ok=True)
        _log(f"downloading the {LLAMA_CPP_PYTHON} source distribution")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        LLAMA_CPP_PYTHON, "-d", str(SDIST_DIR)], check=True)
    return path


def _source() -> Path:
    src = BUILD_ROOT / SDIST_NAME
    if not (src / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
        BUILD_ROOT.mkdir(parents=True, exist_ok=True)
        with tarfile.open(_sdist()) as tar:
            tar.extractall(BUILD_ROOT, filter="data")
    return src


def vendored_commit(src: Path) -> str:
    """The llama.cpp commit: the sdist has no git data, but its changelog names the commit it vendored."""
    changelog = (src / "CHANGELOG.md").read_text(encoding="utf-8")
    section = changelog.split("## [0.3.36]", 1)[-1].split("\n## [", 1)[0]
    m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section)
    return m.group(1) if m else "unknown"


def build_anchors(jobs: int = 2, tools: Sequence[str] = TOOLS) -> Anchors:
    src = _source()
    commit = vendored_commit(src)
    build = BUILD_ROOT / "build"
    bin_dir = build / "bin"
    if all((bin_dir / t).exists() for t in tools):
        return Anchors(bin_dir, commit)
    _log(f"building {', '.join(tools)} from llama.cpp@{commit} (Release, -j{jobs}); this takes a while once")
    configure = [
        "cmake", "-S", str(src / "vendor" / "llama.cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_BUILD_TESTS=OFF", "-DBUILD_SHARED_LIBS=OFF", f"-DLLAMA_BUILD_COMMIT={commit}",
    ]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "--config", "Release", "-j", str(jobs),
                    "--target", *tools], check=True, stdout=subprocess.DEVNULL)
    return Anchors(bin_dir, commit)


# --- server processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One HTTP server under test, started in its own process group so that it can be stopped whole."""

    name: str
    argv: Sequence[str]
    port: int
    health_path: str
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        env = {**os.environ, **self.env}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(list(self.argv), env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} (log: {self.log_path})")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base + self.health_path).status_code == 200:
                        return
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not come up in {timeout:.0f} s (log: {self.log_path})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def corral_server(store_root: Path, *, threads: int, slots: int, log_dir: Path,
                  env: Mapping[str, str] | None = None, tag: str = "") -> Server:
    """corral serve on a temporary store; the bundled import is off (the store is already populated).
    ``env`` adds server settings (the spec suite's cache type, prompt cache); ``tag`` names the log."""
    port = free_port()
    full_env = {
        "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(store_root), "OLLAMA_NUM_PARALLEL": str(slots),
        "OLLAMA_KEEP_ALIVE": "30m", "CORRAL_NO_BUNDLED": "1", **(env or {}),
    }
    return Server("corral", [sys.executable, "-m", "corral", "serve"], port, "/api/version", full_env,
                  log_dir / (f"corral-{tag}.log" if tag else "corral.log"))


def llama_server(anchors: Anchors, model: Path, *, threads: int, slots: int, ctx_per_slot: int,
                 log_dir: Path, tag: str, cache_ram: int = 0, extra: Sequence[str] = ()) -> Server:
    """``extra`` arguments go last (the spec suite's draft model, speculation type, cache type)."""
    port = free_port()
    argv = [str(anchors.tool("llama-server")), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-t", str(threads), "-tb", str(threads), "-np", str(slots), "-c", str(ctx_per_slot * slots),
            # one KV cache per slot (llama-server's default with an explicit -np), as corral's runners have
            "-b", "512", "-ub", "512", "--no-repack",
            "--no-webui", "-ngl", "0", "--no-warmup", "--cache-ram", str(cache_ram), *extra]
    return Server("llama-server", argv, port, "/health", {}, log_dir / f"llama-server-{tag}.log")


def llama_cpp_python_server(model: Path, *, threads: int, ctx: int, log_dir: Path, tag: str) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--n_ctx", str(ctx), "--n_gpu_layers", "0", "--verbose", "false"]
    return Server("llama-cpp-python", argv, port, "/v1/models", {}, log_dir / f"llama-cpp-python-{tag}.log")


def ensure_python_server_extras() -> bool:
    """Install llama-cpp-python's server extras into the venv only when missing; False if that fails."""
    missing = []
    for module, package in (("sse_starlette", "sse-starlette"), ("starlette_context", "starlette-context"),
                            ("pydantic_settings", "pydantic-settings"), ("fastapi", "fastapi")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if not missing:
        return True
    _log(f"installing llama-cpp-python server extras: {' '.join(missing)}")
    rc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing]).returncode
    return rc == 0
