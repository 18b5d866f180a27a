"""Fitting an overflowing chat to the context (corral.server.context.fit) with a stand-in tokenizer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.api.errors import BadRequest
from corral.server.core.fit import fit


def render(messages: list[dict[str, Any]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def history(n: int) -> list[dict[str, Any]]:
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * (i % 7)}
             for i in range(n)]
    return [{"role": "system", "content": "Be brief."}, *turns]


def run_fit(messages: list[dict[str, Any]], num_ctx: int, **kw: Any) -> tuple[Any, int]:
    calls = 0

    async def tokenize(text: str) -> list[int]:
        nonlocal calls
        calls += 1
        return [ord(c) for c in text]  # one token per character

    args = {"num_keep": 4, "truncate": True, "shift": True, "bos": False, **kw}
    return asyncio.run(fit(messages, render, tokenize, num_ctx=num_ctx, **args)), calls


@pytest.mark.parametrize("n, num_ctx", [(2000, 4096), (300, 512), (41, 256), (7, 64)])
def test_drops_the_fewest_oldest_messages_with_few_tokenize_calls(n: int, num_ctx: int) -> None:
    messages = history(n)
    fitted, calls = run_fit(messages, num_ctx)
    dropped = fitted.cut["messages"]
    assert len(fitted.tokens) <= num_ctx - 1
    kept = [messages[0], *messages[1 + dropped:]]
    assert fitted.prompt == render(kept)  # the system message stays, the oldest turns go first
    assert len(render([messages[0], *messages[dropped:]])) > num_ctx - 1  # one fewer dropped would not fit
    assert calls <= 3 + n.bit_length()  # bisection: a 2000-message history once took 1746 tokenize calls


def test_the_middle_is_cut_when_even_the_last_message_alone_is_too_long() -> None:
    messages = [*history(5), {"role": "user", "content": "y" * 500}]
    fitted, _ = run_fit(messages, 128)
    assert fitted.cut["messages"] == 5 and fitted.cut["tokens"] > 0 and len(fitted.tokens) < 128
    with pytest.raises(BadRequest):
        run_fit(messages, 128, shift=False)
    with pytest.raises(BadRequest):
        run_fit(messages, 128, truncate=False)
