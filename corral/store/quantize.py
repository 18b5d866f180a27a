"""Quantize a GGUF model blob through llama.cpp's quantizer: ``/api/create``'s ``quantize``.

The quantizer (``llama_model_quantize``) runs in a child process (``python -m corral.store.quantize``)
rather than in the server: it reads and writes gigabytes and keeps every core busy for minutes, a
crash in it must not take the server down, and the server itself never loads llama.cpp (DESIGN.md).
The child reports progress through a pipe: llama.cpp logs one ``[  i/  n] tensor ...`` line per
tensor, which the child's log callback turns into ``i n`` lines.

The output is written to a temporary file inside ``blobs/`` (named so that start-up pruning removes
it after a crash), checked to be a GGUF of the wanted type, hashed, fsynced and renamed to its
digest: a reader sees a whole blob or none.

The child dies with the server: a server killed with SIGKILL cannot stop it, and a quantizer left running
would go on for minutes, on every core, writing into a store that the restarted server already uses. On
Linux the kernel kills it at once (``PR_SET_PDEATHSIG``); elsewhere it exits at its next progress line,
when the pipe to the server is broken.

Names are Ollama's (``ParseFileType``: ``q4_K_M`` in any case, ``Q4_K`` for ``Q4_K_M``), plus the
other llama.cpp types that need no importance matrix; only F16, BF16 and F32 sources can be
quantized, as in Ollama.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from corral.store.blobs import BlobStore
from corral.store.errors import GGUFError, StoreError
from corral.store.ggml_types import FILE_TYPE_NAMES
from corral.store.gguf import read_metadata

__all__ = [
    "QUANT_TYPES",
    "SOURCE_TYPES",
    "QuantizeFailed",
    "QuantizeRefused",
    "check_source",
    "parse_quant_type",
    "quantize_blob",
    "quantize_file",
]

# llama_ftype of each accepted target.  The IQ types are left out: llama.cpp refuses most of them
# without an importance matrix, which create has no way to take.
QUANT_TYPES: dict[str, int] = {
    "F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7,
    "Q4_0": 2, "Q4_1": 3, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q2_K_S": 21, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13,
    "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
}  # fmt: skip
_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}
SOURCE_TYPES = ("F16", "BF16", "F32")

ERR_SOURCE = "quantization is only supported for F16, BF16 and F32 models"

# What progress reports carry as their digest: Ollama's placeholder for "a layer still being made".
PROGRESS_DIGEST = "0000000000000000000"

_TENSOR_LINE = re.compile(rb"\[\s*(\d+)\s*/\s*(\d+)\s*\]")

Progress = Callable[[int, int], None]
"""``(tensors done, tensors in all)``."""


class QuantizeRefused(StoreError, ValueError):
    """A quantize request the client got wrong: an unknown type, or a source that cannot be quantized."""


class QuantizeFailed(StoreError):
    """llama.cpp's quantizer failed on a valid request (a bug, a full disk, a killed process)."""


def parse_quant_type(name: str) -> tuple[str, int]:
    """``(canonical name, llama_ftype)`` of a requested type, in any case; else :class:`QuantizeRefused`."""
    upper = name.strip().upper()
    upper = _ALIASES.get(upper, upper)
    ftype = QUANT_TYPES.get(upper)
    if ftype is None:
        raise QuantizeRefused(f"unsupported quantization type {name.strip().upper()} - supported types are "
                              + ", ".join(QUANT_TYPES))
    return upper, ftype


def check_source(file_type: str, *, draft: bool = False) -> None:
    """Refuse an already quantized source (Ollama's texts for the model and for a DRAFT)."""
    if file_type in SOURCE_TYPES:
        return
    if draft:
        raise QuantizeRefused(f"draft quantization requires an unquantized draft model, got {file_type}")
    raise QuantizeRefused(ERR_SOURCE)


def quantize_file(src: str | Path, dst: str | Path, ftype: int, *, progress: Progress | None = None,
                  nthread: int = 0) -> None:
    """Run llama.cpp's quantizer on ``src`` into ``dst`` in a child process; raise :class:`QuantizeFailed`."""
    read_fd, write_fd = os.pipe()
    # The parent's pid, for the child to notice a parent that died before it could ask to die with it. (The
    # calling thread waits here until the child ends, so the death signal, tied to that thread, stays armed.)
    cmd = [sys.executable, "-m", "corral.store.quantize", str(src), str(dst), str(ftype), str(nthread),
           str(write_fd), str(os.getpid())]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            for line in pipe:
                parts = line.split()
                if len(parts) == 2 and progress is not None:
                    progress(int(parts[0]), int(parts[1]))
        stderr = proc.stderr.read() if proc.stderr is not None else b""
        rc = proc.wait()
    finally:
        if proc.poll() is None:  # an exception in the progress callback: do not leave the child running
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    if rc != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        reason = "; ".join(tail) if tail else f"exit status {rc}"
        raise QuantizeFailed(f"llama.cpp quantize failed: {reason}")


def quantize_blob(blobs: BlobStore, digest: str, target: str, *, progress: Progress | None = None,
                  verified: Callable[[], None] | None = None, nthread: int = 0) -> tuple[str, int, bool]:
    """Quantize blob ``digest`` to ``target``; return ``(new digest, size, already existed)``.

    ``verified`` is called between the quantizer finishing and the blob being checked (Ollama's
    "verifying conversion" status).  Nothing is left behind in ``blobs/`` on failure.
    """
    name, ftype = parse_quant_type(target)
    with blobs.scratch() as tmp:
        quantize_file(blobs.path(digest), tmp, ftype, progress=progress, nthread=nthread)
        if verified is not None:
            verified()
        try:
            meta = read_metadata(tmp)
        except GGUFError as e:
            raise QuantizeFailed(f"quantized file is not a valid GGUF: {e}") from e
        got = FILE_TYPE_NAMES.get(meta.file_type if meta.file_type is not None else -1, "unknown")
        if got != name:
            raise QuantizeFailed(f"quantized file has type {got}, wanted {name}")
        return blobs.adopt(tmp)


# --- the child process ---------------------------------------------------------------------------


def _die_with_parent(parent: int | None) -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux), and exit if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def _child(argv: list[str]) -> int:
    import ctypes

    _die_with_parent(int(argv[5]) if len(argv) > 5 else None)

    import llama_cpp as ll

    src, dst, ftype, nthread, fd = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    out = os.fdopen(fd, "wb", buffering=0)
    state = {"total": 0}

    def report(line: str) -> None:
        try:
            out.write(line.encode())
        except OSError:
            os._exit(1)  # the server is gone (an exception would be swallowed inside llama.cpp's callback)

    @ll.llama_log_callback
    def _log(level: int, text: bytes, _user: object) -> None:
        match = _TENSOR_LINE.match(text.lstrip())
        if match is not None:
            # llama.cpp announces tensor i before quantizing it: i - 1 are done.
            done, total = int(match.group(1)), int(match.group(2))
            state["total"] = total
            report(f"{done - 1} {total}\n")
        elif level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR: keep for the parent's message
            os.write(2, text)

    ll.llama_log_set(_log, ctypes.c_void_p(0))
    ll.llama_backend_init()
    params = ll.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = nthread
    rc = ll.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc == 0 and state["total"]:
        report(f"{state['total']} {state['total']}\n")
    out.close()
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
