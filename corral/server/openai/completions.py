"""``POST /v1/completions``: OpenAI's legacy completions translated onto the native generate path."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.generate import GenerateRequest
from corral.api.messages import Logprob
from corral.api.openai.common import SYSTEM_FINGERPRINT, Usage, new_id, openai_envelope, stop_list
from corral.api.openai.completions import CompletionRequest
from corral.server.core.events import Delta, Done, Event, Rendered
from corral.server.core.fanout import interleave, pieces
from corral.server.core.generate import generate as core_generate
from corral.server.core.stream import EventStream, WholeResponse
from corral.server.family import family_route
from corral.server.openai.shared import OPENAI_SSE, choices, options_from
from corral.server.reqlog import read_body
from corral.server.state import state_of

__all__ = ["native_generate_request", "routes"]


def native_generate_request(req: CompletionRequest) -> GenerateRequest:
    """Ollama's ``FromCompleteRequest``: an integer ``logprobs`` asks for that many alternatives."""
    options = options_from(req.options, stop=stop_list(req.stop, strict=True), num_predict=req.max_tokens,
                           temperature=req.temperature, seed=req.seed, frequency_penalty=req.frequency_penalty,
                           presence_penalty=req.presence_penalty, top_p=req.top_p or None)
    top = req.logprobs or 0
    if top > 20:
        top = 20
    native = GenerateRequest(model=req.model, prompt=req.prompt, suffix=req.suffix, options=options,
                             stream=req.stream, logprobs=top > 0, top_logprobs=top,
                             debug_render_only=req.debug_render_only)
    native.keep_alive = req.keep_alive
    return native


def _logprobs(items: list[Logprob]) -> dict[str, Any] | None:
    """OpenAI's legacy shape: parallel lists of tokens, their log-probabilities and the alternatives."""
    if not items:
        return None
    return {"tokens": [lp.token for lp in items], "token_logprobs": [lp.logprob for lp in items],
            "top_logprobs": [{t.token: t.logprob for t in lp.top_logprobs or []} for lp in items]}


async def completions(request: Request) -> Response:
    req = await read_body(request, CompletionRequest)
    native = native_generate_request(req)
    state = state_of(request)
    events = interleave([core_generate(state, one) for one in choices(native, req.n)])
    cid = new_id("cmpl")
    created = int(time.time())
    head = {"id": cid, "object": "text_completion", "created": created, "model": req.model,
            "system_fingerprint": SYSTEM_FINGERPRINT}

    def choice(i: int, text: str, reason: str | None, logprobs: list[Logprob]) -> dict[str, Any]:
        out: dict[str, Any] = {"text": text, "index": i, "finish_reason": reason}
        lp = _logprobs(logprobs)
        if lp:
            out["logprobs"] = lp
        return out

    if req.stream:
        include_usage = req.stream_options is not None and req.stream_options.include_usage

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            prompt = completion = 0
            async with contextlib.aclosing(pieces(events)) as stream:  # leaving early closes every choice
                async for i, delta, done in stream:
                    chunk = {**head, "choices": [choice(i, delta.content, done.reason if done else None,
                                                        delta.logprobs or [])]}
                    if include_usage:
                        chunk["usage"] = Usage.of(0, 0)  # as Ollama: an empty usage on each chunk, the real one last
                    yield chunk
                    if done is not None:
                        prompt = prompt or done.prompt_tokens
                        completion += done.completion_tokens
            if include_usage:
                yield {**head, "choices": [], "usage": Usage.of(prompt, completion)}

        return EventStream(chunks(), OPENAI_SSE)  # type: ignore[return-value]

    def merge(items: list[tuple[int, Event]]) -> dict[str, Any]:
        texts: list[list[str]] = [[] for _ in range(req.n)]
        logprobs: list[list[Logprob]] = [[] for _ in range(req.n)]
        dones: list[Done | None] = [None] * req.n
        for i, event in items:
            if isinstance(event, Rendered):
                continue
            delta = event.last if isinstance(event, Done) else event
            assert isinstance(delta, Delta)
            texts[i].append(delta.content)
            logprobs[i] += delta.logprobs or []
            if isinstance(event, Done):
                dones[i] = event
        finished = [d for d in dones if d is not None]
        return {**head, "choices": [choice(i, "".join(texts[i]), d.reason if d else None, logprobs[i])
                                    for i, d in enumerate(dones)],
                "usage": Usage.of(finished[0].prompt_tokens if finished else 0,
                                  sum(d.completion_tokens for d in finished))}

    return WholeResponse(events, merge, openai_envelope)  # type: ignore[return-value]


def routes() -> list[Route]:
    return [family_route("/v1/completions", completions, ["POST"], openai_envelope)]
