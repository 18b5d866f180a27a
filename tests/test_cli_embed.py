"""``corral run`` on an embedding model prints its vector, as ``ollama run`` does.

The model is a tiny random llama written with the ``gguf`` package, carrying ``llama.pooling_type``
(mean): corral reports it as an embedding model, and llama.cpp loads it and pools its vectors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gguf import PoolingType

from corral.store.models import Store
from tests.ggufmaker import TinyLlama, write_tiny_llama
from tests.servers import CorralServer

SHAPE = TinyLlama()


def corral(host: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": host, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "corral", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def embed_model(server: CorralServer, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tokenizer = Store(models_dir).get("smollm2:135m").model_path
    assert tokenizer is not None
    path = write_tiny_llama(tmp_path_factory.mktemp("embed") / "tiny-embed.gguf", tokenizer,
                            pooling=PoolingType.MEAN, name="tiny-random-embed")
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=data, timeout=60).status_code in (200, 201)
    name = f"t-embed-{uuid.uuid4().hex[:8]}"
    r = httpx.post(server.url + "/api/create", json={"model": name, "files": {"tiny-embed.gguf": digest},
                                                     "stream": False}, timeout=120)
    assert r.status_code == 200, r.text
    yield name
    httpx.request("DELETE", server.url + "/api/delete", json={"model": name})


def _vector(text: str) -> list[float]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, float | int) for v in value)
    return [float(v) for v in value]


def test_the_model_is_embedding_only(server: CorralServer, embed_model: str) -> None:
    show = httpx.post(server.url + "/api/show", json={"model": embed_model}).json()
    assert show["capabilities"] == ["embedding"]


def test_run_prints_the_vector_as_one_json_array(server: CorralServer, embed_model: str) -> None:
    done = corral(server.host, "run", embed_model, "The sky is blue", "because of Rayleigh scattering.")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.endswith("\n") and out.count("\n") == 1 and " " not in out  # Go's compact json.Marshal
    vector = _vector(out)
    assert len(vector) == SHAPE.n_embd
    assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-4)

    # The same digits /api/embed sends for the same text (the words are joined with one space).
    raw = httpx.post(server.url + "/api/embed", timeout=120,
                     json={"model": embed_model, "input": "The sky is blue because of Rayleigh scattering."})
    assert raw.status_code == 200, raw.text
    assert '"embeddings":[' + out.strip() + "]" in raw.text

    # Piped text works as for a chat model (put before the words unchanged, as Ollama does: no newline here)
    piped = corral(server.host, "run", embed_model, stdin="The sky is blue because of Rayleigh scattering.")
    assert piped.returncode == 0, piped.stderr
    assert _vector(piped.stdout) == vector


def test_dimensions_and_truncate_flags(server: CorralServer, embed_model: str) -> None:
    done = corral(server.host, "run", embed_model, "short text", "--dimensions", "8")
    assert done.returncode == 0, done.stderr
    cut = _vector(done.stdout)
    assert len(cut) == 8 and math.isclose(math.fsum(v * v for v in cut), 1.0, rel_tol=1e-4)

    long_text = " ".join(["scattering"] * (SHAPE.n_ctx * 3))
    truncated = corral(server.host, "run", embed_model, long_text, "--truncate")
    assert truncated.returncode == 0, truncated.stderr
    assert len(_vector(truncated.stdout)) == SHAPE.n_embd
    refused = corral(server.host, "run", embed_model, long_text, "--truncate=false")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "Error: the input length exceeds the context length" in refused.stderr


def test_run_without_text_says_an_embedding_model_needs_it(server: CorralServer, embed_model: str) -> None:
    done = corral(server.host, "run", embed_model, stdin="")
    # empty piped input is no text either, as Ollama's CLI has it
    assert done.returncode == 1 and "embedding models require input text" in done.stderr
    leader, follower = os.openpty()  # a terminal: Ollama's CLI refuses instead of starting a chat
    try:
        env = {**os.environ, "OLLAMA_HOST": server.host, "NO_PROXY": "127.0.0.1,localhost"}
        done = subprocess.run([sys.executable, "-m", "corral", "run", embed_model], env=env, stdin=follower,
                              capture_output=True, text=True, timeout=300)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 1
    assert f'embedding models require input text. Usage: corral run {embed_model} "your text here"' in done.stderr
