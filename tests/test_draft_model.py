"""Speculative decoding with a draft model (issue 20, part 1): a model's DRAFT layer guesses, the model checks
the guesses in one decode. At temperature 0 the output is the one decoding without a draft gives (compared as
tests/test_batching.py does, up to batch-shape near ties); a seeded sampled request keeps its output; a draft
of another vocabulary is refused at create.

The draft here is the bundled model requantized to Q4_0 by llama.cpp: the same vocabulary, other numerics, so
most guesses are right and some are not, and both paths run.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.scheduler.handle import RunnerHandle, RunnerSpec
from corral.store.models import Store
from tests.servers import CorralServer, wait_until
from tests.test_batching import assert_same_tokens
from tests.test_prompt_cache import with_runner
from tests.test_speculation import PROMPTS

pytestmark = pytest.mark.slow


def requantize(src: Path, dst: Path, ftype: int = 2) -> Path:  # 2: LLAMA_FTYPE_MOSTLY_Q4_0
    import llama_cpp as ll

    params = ll.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    assert ll.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) == 0
    return dst


@pytest.fixture(scope="module", params=["smollm2:135m", "gemma3:270m"])
def pair(request: pytest.FixtureRequest, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    model = Store(models_dir).get(request.param)
    assert model.model_path is not None
    draft = requantize(model.model_path, tmp_path_factory.mktemp("draft") / "draft-q4_0.gguf")
    return str(model.model_path), str(draft)


async def generate(handle: RunnerHandle, prompt: str, **sampling: Any) -> dict[str, Any]:
    done: dict[str, Any] = {}
    async for msg in handle.generate(prompt=prompt, sampling={"temperature": 0, **sampling}, num_predict=48,
                                     report_gaps=True):
        if msg["kind"] == "done":
            done = msg
    return done


def test_greedy_output_with_a_draft_model_is_the_output_without(pair: tuple[str, str]) -> None:
    target, draft = pair

    async def main() -> tuple[Any, ...]:
        plain_spec = RunnerSpec(model_path=target, num_ctx=1024, num_parallel=4)
        spec = RunnerSpec(model_path=target, num_ctx=1024, num_parallel=4, draft_path=draft, draft_num_predict=4)
        plain = [await with_runner(plain_spec, lambda h, p=p: generate(h, p)) for p in PROMPTS]
        alone = [await with_runner(spec, lambda h, p=p: generate(h, p)) for p in PROMPTS]
        together = await with_runner(spec, lambda h: asyncio.gather(*(generate(h, p) for p in PROMPTS)))
        seeded = {"temperature": 0.8, "seed": 7, "top_k": 0, "top_p": 1}
        sampled = [await with_runner(plain_spec, lambda h: generate(h, PROMPTS[2], **seeded)),
                   await with_runner(spec, lambda h: generate(h, PROMPTS[2], **seeded))]
        return plain, alone, list(together), sampled

    plain, alone, together, sampled = asyncio.run(main())
    assert all("drafted" not in p for p in plain)
    assert_same_tokens(PROMPTS, plain, alone)
    assert_same_tokens(PROMPTS, plain, together)  # under 4 concurrent slots
    drafted = sum(d.get("drafted", 0) for d in alone)
    accepted = sum(d.get("draft_accepted", 0) for d in alone)
    assert 0 < accepted <= drafted
    assert sampled[1].get("drafted", 0) > 0 and sampled[1]["tokens"] == sampled[0]["tokens"]


def test_draft_layer_through_the_server(models_dir: Path, tmp_path: Path) -> None:
    store = Store(models_dir)
    smol = store.get("smollm2:135m")
    assert smol.model_path is not None
    draft = requantize(smol.model_path, tmp_path / "draft.gguf")
    srv = CorralServer(models=models_dir).start()
    try:
        digest = "sha256:" + hashlib.sha256(draft.read_bytes()).hexdigest()
        assert httpx.post(f"{srv.url}/api/blobs/{digest}", content=draft.read_bytes(), timeout=60).status_code == 201
        weights = "sha256:" + smol.model_path.name.removeprefix("sha256-")
        made = httpx.post(srv.url + "/api/create", timeout=120, json={
            "model": "smol-draft", "files": {"model.gguf": weights}, "draft_files": {"draft.gguf": digest},
            "stream": False})
        assert made.status_code == 200, made.text
        body = {"model": "smol-draft", "prompt": PROMPTS[0], "raw": True, "stream": False,
                "options": {"temperature": 0, "num_predict": 32}}
        r = httpx.post(srv.url + "/api/generate", json=body, timeout=300).json()
        assert r["eval_count"] == 32 and 0 < r["draft_accepted"] <= r["draft_tokens"]
        wait_until(lambda: "draft model speculation drafted" in srv.log(), what="the speculation log line")
        # draft_num_predict 0 turns it off (a load option: a runner without the draft)
        off = httpx.post(srv.url + "/api/generate", timeout=300,
                         json={**body, "options": {**body["options"], "draft_num_predict": 0}}).json()
        assert "draft_tokens" not in off and off["eval_count"] == 32
        # a draft of another vocabulary is refused, and nothing is created
        gemma = store.get("gemma3:270m")
        assert gemma.model_path is not None
        other = "sha256:" + gemma.model_path.name.removeprefix("sha256-")
        bad = httpx.post(srv.url + "/api/create", timeout=120, json={
            "model": "smol-bad-draft", "files": {"model.gguf": weights}, "draft_files": {"draft.gguf": other},
            "stream": False})
        assert bad.status_code == 400 and "cannot draft for this model" in bad.json()["error"]
        assert httpx.post(srv.url + "/api/show", json={"model": "smol-bad-draft"}).status_code == 404
    finally:
        srv.stop()
