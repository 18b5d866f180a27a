"""Embeddings on the real engine: /api/embed, the legacy /api/embeddings, and the runner's batched passes."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import httpx
import ollama
import pytest

from corral.scheduler.handle import RunnerHandle, RunnerSpec
from corral.store.models import Store

MODEL = "smollm2:135m"
TEXTS = [f"Sentence number {i}: the {['cat', 'dog', 'bird', 'fish'][i % 4]} sat on mat {i}." for i in range(32)]


def norm(v: list[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in v))


def cosine(a: list[float], b: list[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


@pytest.fixture(scope="module")
def client(base_url: str) -> ollama.Client:
    return ollama.Client(host=base_url)


def test_vectors_have_unit_norm_and_batched_equals_single(client: ollama.Client) -> None:
    batched = client.embed(model=MODEL, input=TEXTS[:6])
    assert len(batched.embeddings) == 6
    dim = len(batched.embeddings[0])
    assert dim == 576  # SmolLM2-135M's hidden size
    for vec in batched.embeddings:
        assert len(vec) == dim and abs(norm(list(vec)) - 1.0) < 1e-5
    assert batched.prompt_eval_count and batched.prompt_eval_count >= 6
    for i in (0, 3, 5):
        single = client.embed(model=MODEL, input=TEXTS[i]).embeddings[0]
        assert cosine(list(single), list(batched.embeddings[i])) >= 0.9999
    # different texts give different vectors
    assert cosine(list(batched.embeddings[0]), list(batched.embeddings[1])) < 0.9999


def test_dimensions_cut_and_renormalise(client: ollama.Client) -> None:
    full = list(client.embed(model=MODEL, input=TEXTS[0]).embeddings[0])
    cut = list(client.embed(model=MODEL, input=TEXTS[0], dimensions=64).embeddings[0])
    assert len(cut) == 64 and abs(norm(cut) - 1.0) < 1e-5
    # the same direction as the first 64 components of the full vector
    assert cosine(cut, full[:64]) >= 0.9999


def test_legacy_embeddings_are_not_normalised(client: ollama.Client) -> None:
    legacy = list(client.embeddings(model=MODEL, prompt=TEXTS[2]).embedding)
    assert len(legacy) == 576 and abs(norm(legacy) - 1.0) > 0.01
    current = list(client.embed(model=MODEL, input=TEXTS[2]).embeddings[0])
    assert cosine(legacy, current) >= 0.9999
    assert list(client.embeddings(model=MODEL, prompt="").embedding) == []


def test_embed_errors(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=120) as http:
        r = http.post("/api/embed", json={"model": MODEL, "input": "word " * 6000, "truncate": False})
        assert (r.status_code, r.json()) == (400, {"error": "the input length exceeds the context length"})
        r = http.post("/api/embed", json={"model": MODEL, "input": "word " * 6000})
        assert r.status_code == 200 and len(r.json()["embeddings"]) == 1
        r = http.post("/api/embed", json={"model": MODEL, "input": ["ok", 3]})
        assert (r.status_code, r.json()) == (400, {"error": "invalid input type"})
        r = http.post("/api/embed", json={"model": "no-such-model", "input": "x"})
        assert (r.status_code, r.json()) == (404, {"error": 'model "no-such-model" not found, try pulling it first'})
        r = http.post("/api/embed", json={"model": MODEL, "input": []})
        assert r.status_code == 200 and r.json()["embeddings"] == []
        r = http.post("/api/embed", json={"model": MODEL})
        assert r.status_code == 200 and r.json()["embeddings"] == []
        # the server is still up and embedding
        r = http.post("/api/embed", json={"model": MODEL, "input": "still here"})
        assert r.status_code == 200 and len(r.json()["embeddings"][0]) == 576


def test_many_inputs_share_decodes(models_dir: Path) -> None:
    """32 inputs take at most ⌈total tokens / n_batch⌉ decode calls, counted by the runner itself."""
    model = Store(models_dir).get(MODEL)
    assert model.model_path is not None

    async def main() -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
        handle = RunnerHandle(RunnerSpec(model_path=str(model.model_path), num_ctx=2048, num_parallel=1,
                                         embedding=True))
        await handle.start(120)
        try:
            before = await handle.call("stats")
            reply = await handle.call("embed", inputs=TEXTS, truncate=True)
            after = await handle.call("stats")
        finally:
            await handle.kill()
        return before, reply, after

    before, reply, after = asyncio.run(main())
    counts = reply["counts"]
    assert isinstance(counts, list) and len(counts) == 32 and all(c > 5 for c in counts)
    n_batch = after["n_batch"]
    assert isinstance(n_batch, int) and isinstance(after["decode_calls"], int)
    assert isinstance(before["decode_calls"], int)
    calls = after["decode_calls"] - before["decode_calls"]
    assert 1 <= calls <= math.ceil(sum(counts) / n_batch)
    vectors = reply["embeddings"]
    assert isinstance(vectors, list) and len(vectors) == 32
