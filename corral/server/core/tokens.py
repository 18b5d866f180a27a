"""A model's own tokenizer: text to token ids and back, on the runner the model generates (or embeds) with.

The work goes through the model's runner, acquired as every route acquires one (loading, queueing, keep-alive
and errors are the same), so the ids are exactly the ones generation uses: :func:`tokenize` asks the runner
for what its ``submit`` does with a raw prompt (``add_special`` and ``parse_special`` on, so a BOS the
tokenizer adds is in the list and ``<|im_start|>`` written in the text is one special token), and
``len(tokenize(text))`` is the ``prompt_eval_count`` of ``/api/generate`` with ``raw: true, prompt: text``.

Round trip: :func:`detokenize` renders special tokens as their text (``<|im_start|>`` stays in the string, as
a generate ``context`` needs) but leaves out a leading BOS when the tokenizer adds one by itself (see
``Engine.detokenize``), so ``detokenize(tokenize(text)) == text`` even though ``tokenize`` reports the BOS
that generation would evaluate. A BOS anywhere else renders as its text (``<bos>``). The one text that does
not come back is one that itself begins with the BOS text (``<bos>hi``): generation evaluates one BOS for it,
not two, so the tokens are those of ``hi`` and so is the text.

Empty content and an empty token list only load the model and answer ``[]`` / ``""`` (a BOS alone would
otherwise be the tokenization of nothing), as ``/api/embed`` does with no input.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from corral.api import errors
from corral.api.tokens import DetokenizeRequest, TokenizeRequest
from corral.scheduler.handle import RunnerError, RunnerHandle
from corral.server.core.generation import Disconnected, Generation, build_options, resolve, runner_error
from corral.server.state import ServerState

__all__ = ["Detokenized", "Tokenized", "detokenize", "tokenize"]

T = TypeVar("T")


@dataclass
class Tokenized:
    tokens: list[int]
    total_duration: int
    load_duration: int


@dataclass
class Detokenized:
    content: str
    total_duration: int
    load_duration: int


async def _on_runner(state: ServerState, name: str, options: dict[str, Any] | None, keep_alive: float | None,
                     disconnected: Disconnected | None,
                     work: Callable[[RunnerHandle], Awaitable[T]] | None) -> tuple[T | None, int, int]:
    """``work`` on the model's runner (loaded if need be); None only loads it. Returns the result, the total
    and the load durations in nanoseconds."""
    # an unknown model is the scheduler's 404 ("try pulling it first"), as on /api/embed and in Ollama's proposal
    model = resolve(state, name, errors.model_not_found_pull)
    if model.model_path is None:
        raise errors.model_not_found_pull(name)
    caps = model.capabilities()
    # the runner the model's own requests use, so that tokenizing never loads a second one: an embedding-only
    # model (no completion) is served by an embedding runner
    embedding = "embedding" in caps and "completion" not in caps
    gen = Generation(state=state, model=model, options=build_options(model, options), keep_alive=keep_alive,
                     embedding=embedding)
    entry = await gen.acquire(disconnected)
    try:
        result = None
        if work is not None:
            try:
                result = await work(entry.handle)
            except RunnerError as exc:  # ids outside the vocabulary, a body too large for the channel: a 400
                raise runner_error(exc) from None
    finally:
        gen.release()
    return result, int((time.perf_counter() - gen.t_start) * 1e9), gen.load_duration


async def tokenize(state: ServerState, req: TokenizeRequest, disconnected: Disconnected | None = None) -> Tokenized:
    """``req.content`` as the model's token ids, BOS included where generation would add one."""
    content = req.content

    async def work(handle: RunnerHandle) -> list[int]:
        # the defaults of the runner's submit path (add_special, parse_special): the ids a raw prompt runs with
        return [int(t) for t in await handle.tokenize(content)]

    tokens, total, load = await _on_runner(state, req.model, req.options, req.keep_alive, disconnected,
                                           work if content else None)
    return Tokenized(tokens or [], total, load)


async def detokenize(state: ServerState, req: DetokenizeRequest,
                     disconnected: Disconnected | None = None) -> Detokenized:
    """``req.tokens`` as text; an id outside the vocabulary is a 400 (the runner checks before llama.cpp)."""
    tokens = list(req.tokens)

    async def work(handle: RunnerHandle) -> str:
        return await handle.detokenize(tokens)

    content, total, load = await _on_runner(state, req.model, req.options, req.keep_alive, disconnected,
                                            work if tokens else None)
    return Detokenized(content or "", total, load)
