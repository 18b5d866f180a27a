"""A prompt cache shared across slots and reloads (issue 20, part 3): a prefix another slot holds is copied, one
evicted from its slot is restored from host memory, one saved at unload is restored by the next runner of the
same weights and load options; each gives the tokens that evaluating the prompt afresh gives.

Reference runs use a runner of their own with nothing cached, and compare as tests/test_batching.py does: equal
up to the first step where the reference's best two logits were within GAP_TOLERANCE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from corral.scheduler.handle import RunnerHandle, RunnerSpec
from corral.store.models import Store
from tests.test_batching import assert_same_tokens

pytestmark = pytest.mark.slow

SYSTEM = ("You are the support assistant of a small bookshop in Lyon. Opening hours are 9 to 19 from Monday to "
          "Saturday. Orders ship within two days; returns are accepted for thirty days with the receipt. ") * 6
# list openings: the models go on writing rather than end at once (the comparison needs tokens to compare)
QUESTIONS = ["Ten questions customers ask about opening hours:\n1.", "Ten reasons to return a book:\n1.",
             "Ten facts about shipping:\n1.", "Ten streets near the shop:\n1."]
OTHER = "A completely different prompt about the weather in Oslo, which has nothing in common with the rest. " * 4


def spec(path: str, **extra: Any) -> RunnerSpec:
    return RunnerSpec(model_path=path, num_ctx=1024, **{"num_parallel": 2, **extra})


async def generate(handle: RunnerHandle, prompt: str, n: int = 24) -> dict[str, Any]:
    done: dict[str, Any] = {}
    async for msg in handle.generate(prompt=prompt, sampling={"temperature": 0}, num_predict=n, report_gaps=True):
        if msg["kind"] == "done":
            done = msg
    return done


async def with_runner(s: RunnerSpec, work: Callable[[RunnerHandle], Awaitable[Any]]) -> Any:
    handle = RunnerHandle(s)
    await handle.start(120)
    try:
        return await work(handle)
    finally:
        await handle.kill()


def alone(path: str, prompts: list[str]) -> list[dict[str, Any]]:
    """Each prompt on a fresh runner: evaluated from nothing."""
    async def one(prompt: str) -> dict[str, Any]:
        result: dict[str, Any] = await with_runner(spec(path, num_parallel=1), lambda h: generate(h, prompt))
        return result

    async def main() -> list[dict[str, Any]]:
        return [await one(p) for p in prompts]
    return asyncio.run(main())


@pytest.fixture(scope="module", params=["smollm2:135m", "gemma3:270m"])
def path(request: pytest.FixtureRequest, models_dir: Path) -> str:
    model = Store(models_dir).get(request.param)
    assert model.model_path is not None
    return str(model.model_path)


def test_a_prefix_in_a_busy_slot_is_copied(path: str) -> None:
    prompts = [SYSTEM + QUESTIONS[0], SYSTEM + QUESTIONS[1]]

    async def work(h: RunnerHandle) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        # held in its slot by a grammar that does not let it end
        first = h.generate(prompt=prompts[0], num_predict=400,
                           sampling={"temperature": 0, "grammar": 'root ::= "one" (" and one"){500}'})
        await anext(first)  # its prompt is in slot 0's cache now, and it goes on generating there
        second = await generate(h, prompts[1])
        await first.aclose()
        return [second], await h.call("stats")

    copied, stats = asyncio.run(with_runner(spec(path), work))
    assert stats["copies"] == 1
    # only what follows the shared system prompt was evaluated
    assert copied[0]["prompt_eval_count"] < len(copied[0]["prompt_tokens"]) // 3
    assert_same_tokens(prompts[1:], alone(path, prompts[1:]), copied)


def test_clients_released_together_evaluate_a_shared_prefix_once(path: str) -> None:
    prompts = [SYSTEM + q for q in QUESTIONS]

    async def work(h: RunnerHandle) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        out = await asyncio.gather(*(generate(h, p) for p in prompts))
        return list(out), await h.call("stats")

    together, stats = asyncio.run(with_runner(spec(path, num_parallel=4), work))
    assert stats["copies"] == 3
    evaluated = sum(d["prompt_eval_count"] for d in together)
    whole = sum(len(d["prompt_tokens"]) for d in together)
    assert evaluated < whole // 2  # the system prompt once, not four times
    assert_same_tokens(prompts[:2], alone(path, prompts[:2]), together[:2])


def test_an_evicted_prompt_comes_back_from_host_memory(path: str) -> None:
    prompts = [SYSTEM + QUESTIONS[0], OTHER, SYSTEM + QUESTIONS[2]]

    async def work(h: RunnerHandle) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        out = [await generate(h, p) for p in prompts]  # the second takes the only slot from the first
        return out, await h.call("stats")

    runs, stats = asyncio.run(with_runner(spec(path, num_parallel=1, prompt_cache_mb=64), work))
    assert stats["restores"] == 1 and stats["cached_prompts"] >= 1
    assert runs[2]["prompt_eval_count"] < len(runs[2]["prompt_tokens"]) // 3
    assert_same_tokens(prompts[2:], alone(path, prompts[2:]), runs[2:])


def test_the_cache_survives_the_runner_on_disk(path: str, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    s = spec(path, num_parallel=1, prompt_cache_mb=64, prompt_cache_dir=str(folder))
    asyncio.run(with_runner(s, lambda h: generate(h, SYSTEM + QUESTIONS[0])))
    assert [p.suffix for p in folder.iterdir()] == [".kv"]  # written when the channel closed; no temp file left

    async def work(h: RunnerHandle) -> tuple[dict[str, Any], dict[str, Any]]:
        return await generate(h, SYSTEM + QUESTIONS[3]), await h.call("stats")

    again, stats = asyncio.run(with_runner(s, work))
    assert stats["restores"] == 1
    assert again["prompt_eval_count"] < len(again["prompt_tokens"]) // 3
    assert_same_tokens([SYSTEM + QUESTIONS[3]], alone(path, [SYSTEM + QUESTIONS[3]]), [again])
    # a torn file is dropped, not trusted
    for p in folder.glob("*.kv"):
        p.write_bytes(p.read_bytes()[:100])
    fresh, stats = asyncio.run(with_runner(s, work))
    assert stats["restores"] == 0 and fresh["prompt_eval_count"] == len(fresh["prompt_tokens"])
