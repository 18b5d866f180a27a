"""Prompts that overflow the context, Ollama's way, but never silently (reference §6).

- Chat: drop the oldest messages until the prompt fits, always keeping system messages and the last one.
- Then, if still too long (or for generate): keep ``num_keep`` tokens (plus BOS) and drop the middle so the
  prompt is ``num_ctx - max((num_ctx - num_keep) / 2, 1)`` tokens long, leaving room to answer.
- ``truncate: false`` (no dropping) or ``shift: false`` (no middle cut) turn an overflow into Ollama's 400.
Whatever was cut is logged and reported on the final chunk (``truncated``).

The common case costs no tokenizing here: the prompt goes to the runner as text, and the runner, which
tokenizes it anyway, answers ``prompt_too_long`` when it does not fit; only then is it fitted exactly
(:func:`fit` with ``exact``) and sent again as tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from corral.api import errors

log = logging.getLogger("corral.server")

Render = Callable[[list[dict[str, Any]]], str]
Tokenize = Callable[[str], Awaitable[list[int]]]


@dataclass
class Fitted:
    prompt: str
    tokens: list[int] | None = None  # set when the prompt had to be tokenized (then submit these)
    cut: dict[str, int] = field(default_factory=dict)
    # the exact fit, for when the runner finds the text too long (None once it has been applied)
    refit: Callable[[], Awaitable[Fitted]] | None = field(default=None, repr=False)

    async def apply_refit(self) -> bool:
        """Replace the prompt by its exact fit; False if that was done already."""
        if self.refit is None:
            return False
        exact = await self.refit()
        self.prompt, self.tokens, self.cut, self.refit = exact.prompt, exact.tokens, exact.cut, None
        return True


async def render_off_loop(render: Render, messages: list[dict[str, Any]]) -> str:
    """Templates are untrusted and may take a while within their limits (corral.prompt.limits): they render in
    a worker thread, so the event loop serves everyone else meanwhile."""
    return await anyio.to_thread.run_sync(render, messages)


def _could_overflow(prompt: str, limit: int) -> bool:
    # Every token covers at least one byte (plus a BOS): a prompt with fewer bytes cannot overflow, and
    # skipping the tokenize round trip keeps the common path fast.
    return len(prompt.encode()) + 2 > limit


async def fit(messages: list[dict[str, Any]], render: Render, tokenize: Tokenize, *, num_ctx: int, num_keep: int,
              truncate: bool, shift: bool, bos: bool, exact: bool = True) -> Fitted:
    limit = num_ctx - 1  # at least one position left to generate into
    prompt = await render_off_loop(render, messages)
    if not _could_overflow(prompt, limit):
        return Fitted(prompt)
    if not exact:
        async def refit() -> Fitted:
            # called when the runner found the prompt too long: without truncation that is the answer already
            # (tokenizing a prompt of many megabytes only to count it could overflow the runner's channel)
            if not truncate:
                raise errors.context_exceeded()
            return await fit(messages, render, tokenize, num_ctx=num_ctx, num_keep=num_keep, truncate=truncate,
                             shift=shift, bos=bos)

        return Fitted(prompt, refit=refit)
    tokens = await tokenize(prompt)
    total = len(tokens)
    if total <= limit:
        return Fitted(prompt, tokens)
    if not truncate:
        raise errors.context_exceeded()
    fitted = Fitted(prompt, tokens)
    droppable = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]

    async def without_oldest(n: int) -> Fitted:
        gone = set(droppable[:n])
        text = await render_off_loop(render, [m for i, m in enumerate(messages) if i not in gone])
        return Fitted(text, await tokenize(text), {"messages": n})

    if droppable:
        # The fewest oldest messages to drop, by bisection: a prompt only shortens as more go, and one
        # render and tokenize per candidate made a long history cost its length squared (2000 messages:
        # minutes; Ollama's walk from the newest message is bounded by the context instead).
        fitted = await without_oldest(len(droppable))
        lo, hi = 1, len(droppable) - 1
        while lo <= hi and len(fitted.tokens or ()) <= limit:
            mid = (lo + hi) // 2
            candidate = await without_oldest(mid)
            if len(candidate.tokens or ()) <= limit:
                fitted, hi = candidate, mid - 1
            else:
                lo = mid + 1
        tokens = fitted.tokens or []
    if len(tokens) > limit:
        if not shift:
            raise errors.context_exceeded()
        keep = min(num_keep + (1 if bos else 0), limit // 2)
        target = num_ctx - max((num_ctx - keep) // 2, 1)
        before = len(tokens)
        tokens = tokens[:keep] + tokens[before - (target - keep):]
        fitted.tokens = tokens
        fitted.cut["tokens"] = before - len(tokens)
    log.warning("truncating input prompt: limit=%d prompt=%d kept=%d cut=%s", limit, total, len(tokens), fitted.cut)
    return fitted
