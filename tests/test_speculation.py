"""Self-speculation by n-gram lookup (issue 20, part 2): drafts taken from the prompt and the output are checked
by the model in one decode; at temperature 0 the output is what decoding without drafts gives.

As in tests/test_batching.py, a batch of another shape may move logits by a few hundredths, so two runs may
legitimately part at a step where the plain run's best two logits were within GAP_TOLERANCE; before such a
step they must agree token for token.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.scheduler.handle import RunnerHandle, RunnerSpec
from corral.store.models import Store
from tests.servers import CorralServer
from tests.test_batching import assert_same_tokens

pytestmark = pytest.mark.slow

CODE = """def parse_config(path):
    with open(path) as f:
        lines = f.read().splitlines()
    config = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        config[key.strip()] = value.strip()
    return config
"""
# copy-heavy: the answer repeats most of the prompt, which is where prompt lookup pays
COPY = f"Rewrite this function with the name load_settings:\n\n{CODE}\nHere it is:\n\ndef load_settings(path):\n"
# no two share a cached prefix (tests/test_batching.py's rule for comparing runs)
PROMPTS = [COPY, "Please rename config to cfg in this code:\n\n" + CODE + "\nDone:\n\ndef parse_cfg(path):\n",
           "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "The quick brown fox jumps over the lazy dog. The quick brown fox"]


async def generate(handle: RunnerHandle, prompt: str, draft: int, **extra: Any) -> dict[str, Any]:
    done: dict[str, Any] = {}
    async for msg in handle.generate(prompt=prompt, sampling={"temperature": 0, **extra}, num_predict=64,
                                     report_gaps=True, ngram_draft=draft):
        if msg["kind"] == "done":
            done = msg
    return done


def runs(model_path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
                                   list[dict[str, Any]]]:
    # a runner of its own for each way: a prompt cached by an earlier run would be re-evaluated from its
    # last token, another batch shape again
    async def fresh(work: Any) -> Any:
        handle = RunnerHandle(RunnerSpec(model_path=model_path, num_ctx=1024, num_parallel=4))
        await handle.start(120)
        try:
            return await work(handle)
        finally:
            await handle.kill()

    async def one_by_one(handle: RunnerHandle, draft: int) -> list[dict[str, Any]]:
        return [await generate(handle, p, draft) for p in PROMPTS]

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
                              list[dict[str, Any]]]:
        plain = await fresh(lambda h: one_by_one(h, 0))
        drafted = await fresh(lambda h: one_by_one(h, 8))
        together = await fresh(lambda h: asyncio.gather(*(generate(h, p, 8) for p in PROMPTS)))
        # sampled with a seed: drafts drawn row by row give what drawing without drafts gives
        seeded = {"temperature": 0.8, "seed": 1, "top_k": 0, "top_p": 1}
        sampled = [await fresh(lambda h: generate(h, PROMPTS[0], 0, **seeded)),
                   await fresh(lambda h: generate(h, PROMPTS[0], 8, **seeded))]
        return plain, drafted, list(together), sampled

    return asyncio.run(main())


@pytest.mark.parametrize("name", ["smollm2:135m", "gemma3:270m"])
def test_ngram_speculation_is_exact_at_temperature_zero(models_dir: Path, name: str) -> None:
    model = Store(models_dir).get(name)
    assert model.model_path is not None
    plain, drafted, together, sampled = runs(str(model.model_path))
    assert all("drafted" not in p for p in plain)
    assert_same_tokens(PROMPTS, plain, drafted)  # alone
    assert_same_tokens(PROMPTS, plain, together)  # under 4 concurrent slots
    # drafts were made and most of the copy was accepted
    assert sum(d.get("drafted", 0) for d in drafted) > 0
    copy = drafted[0]
    assert copy["draft_accepted"] > 0 and copy["draft_accepted"] <= copy["drafted"]
    # a sampled request speculates too, and keeps its seed's output
    plain_sampled, drafted_sampled = sampled
    assert "drafted" not in plain_sampled and drafted_sampled["drafted"] > 0
    assert drafted_sampled["tokens"] == plain_sampled["tokens"]


def test_the_option_and_the_setting(tmp_path: Path, models_dir: Path) -> None:
    srv = CorralServer(models=models_dir, env={"CORRAL_NGRAM_DRAFT": "6"}).start()
    try:
        body = {"model": "smollm2:135m", "prompt": COPY, "raw": True, "stream": False,
                "options": {"temperature": 0, "num_predict": 48}}
        by_setting = httpx.post(srv.url + "/api/generate", json=body, timeout=300).json()
        off = httpx.post(srv.url + "/api/generate", timeout=300,
                         json={**body, "options": {**body["options"], "ngram_draft": 0}}).json()
        assert by_setting["eval_count"] == off["eval_count"] == 48
        log = srv.log()
        assert log.count("n-gram speculation drafted") == 1  # the setting's request only
        bad = httpx.post(srv.url + "/api/generate", json={**body, "options": {"ngram_draft": "x"}})
        assert bad.status_code == 400
    finally:
        srv.stop()


def test_a_grammar_sees_only_the_tokens_kept(models_dir: Path) -> None:
    """A greedy request with a grammar checks its drafts row by row: the grammar must not take the rows after
    a rejected draft (it would count tokens that were never written, and end early)."""
    model = Store(models_dir).get("smollm2:135m")
    assert model.model_path is not None
    grammar = r'root ::= [^\n]{60} "\n"'

    async def main() -> list[dict[str, Any]]:
        out = []
        for draft in (0, 8):
            handle = RunnerHandle(RunnerSpec(model_path=str(model.model_path), num_ctx=1024, num_parallel=1))
            await handle.start(120)
            try:
                out.append(await generate(handle, COPY, draft, grammar=grammar))
            finally:
                await handle.kill()
        return out

    plain, drafted = asyncio.run(main())
    assert drafted.get("drafted", 0) > 0
    assert drafted["tokens"] == plain["tokens"]
