"""KV cache types and flash attention as Ollama's settings (issue 20, part 4): ``OLLAMA_KV_CACHE_TYPE`` and
``OLLAMA_FLASH_ATTENTION`` reach the runner, and the memory estimate (``/api/ps`` sizes, eviction) follows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.config import Settings
from corral.scheduler.memory import kv_cache_bytes
from corral.store.testing import make_temp_store
from tests.servers import CorralServer, child_pids

SMOL = "smollm2:135m"


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_temp_store(tmp_path_factory.mktemp("kv"), names=[SMOL]).root


@pytest.fixture
def serve(store_root: Path) -> Iterator[Any]:
    started: list[CorralServer] = []

    def start(**env: str) -> CorralServer:
        srv = CorralServer(models=store_root, env={"OLLAMA_CONTEXT_LENGTH": "4096", **env}).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def _run(srv: CorralServer) -> tuple[int, list[str]]:
    """Greedy output of a fixed prompt loads the runner: (its /api/ps size, its command line)."""
    r = httpx.post(srv.url + "/api/generate", timeout=300, json={
        "model": SMOL, "prompt": "The capital of France is", "raw": True, "stream": False,
        "options": {"temperature": 0, "num_predict": 8}})
    assert r.status_code == 200 and r.json()["eval_count"] == 8, r.text
    [row] = httpx.get(srv.url + "/api/ps").json()["models"]
    assert srv.proc is not None
    [runner] = [p for p in child_pids(srv.proc.pid) if "corral.runner" in Path(f"/proc/{p}/cmdline").read_text()]
    argv = Path(f"/proc/{runner}/cmdline").read_bytes().decode().split("\0")
    return int(row["size"]), argv


@pytest.mark.slow
def test_quantized_kv_loads_answers_and_is_smaller(serve: Any) -> None:
    f16 = serve()
    size_f16, argv = _run(f16)
    assert "--kv-type" not in argv
    f16.stop()
    q8 = serve(OLLAMA_KV_CACHE_TYPE="q8_0")
    size_q8, argv = _run(q8)
    assert argv[argv.index("--kv-type") + 1] == "q8_0"
    assert argv[argv.index("--flash-attn") + 1] == "on"  # a quantized V cache needs flash attention
    assert size_q8 < size_f16
    q8.stop()
    # flash attention forced off: the cache stays f16, as Ollama falls back
    off = serve(OLLAMA_KV_CACHE_TYPE="q4_0", OLLAMA_FLASH_ATTENTION="0")
    size_off, argv = _run(off)
    assert "--kv-type" not in argv and argv[argv.index("--flash-attn") + 1] == "off"
    assert size_off == size_f16


def test_the_settings() -> None:
    assert Settings.from_env({}).kv_cache_type == "f16" and Settings.from_env({}).flash_attention is None
    assert Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "Q8_0"}).kv_cache_type == "q8_0"
    assert Settings.from_env({"OLLAMA_KV_CACHE_TYPE": "q2_k"}).kv_cache_type == "f16"  # unsupported
    assert Settings.from_env({"OLLAMA_FLASH_ATTENTION": "1"}).flash_attention is True
    assert Settings.from_env({"OLLAMA_FLASH_ATTENTION": "false"}).flash_attention is False
    kv = {"general.architecture": "llama", "llama.block_count": 30, "llama.embedding_length": 576,
          "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3}
    f16 = kv_cache_bytes(kv, 4096)
    assert f16 == 30 * 3 * (64 + 64) * 2 * 4096
    assert kv_cache_bytes(kv, 4096, "q8_0") == f16 * 34 // 64
    assert kv_cache_bytes(kv, 4096, "q4_0") == f16 * 18 // 64
