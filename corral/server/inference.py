"""The shared path of /api/generate and /api/chat: resolve, render, schedule, stream, aggregate."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from corral.api import errors
from corral.api.options import LOAD_OPTIONS, merge_options, validate_options
from corral.prompt.render import PromptFormat
from corral.scheduler.handle import RunnerError
from corral.scheduler.scheduler import Loaded, QueueFull
from corral.server.state import ServerState
from corral.store.models import LocalModel

log = logging.getLogger("corral.server")

SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n",
                 "presence_penalty", "frequency_penalty", "seed")


def resolve(state: ServerState, name: str) -> LocalModel:
    if not name:
        raise errors.model_required()
    try:
        model = state.store.resolve(name)
    except Exception:
        model = None
    if model is None:
        raise errors.model_not_found(name)
    return model


def prompt_format(model: LocalModel) -> PromptFormat:
    meta = model.gguf()
    jinja = None if model.template is not None else (meta.chat_template if meta is not None else None)
    bos = eos = ""
    if meta is not None:
        bos, eos = meta.bos_token or "", meta.eos_token or ""
    return PromptFormat(go_template=model.template, jinja_template=jinja, bos_token=bos, eos_token=eos)


@dataclass
class Generation:
    """One request's run on a runner, with Ollama's timings."""

    state: ServerState
    model: LocalModel
    options: dict[str, Any]
    keep_alive: float | None
    t_start: float = field(default_factory=time.perf_counter)
    load_duration: int = 0
    entry: Loaded | None = None

    @property
    def load_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k in LOAD_OPTIONS}

    async def acquire(self) -> Loaded:
        spec = self.state.runner_spec(self.model, self.load_options)
        t0 = time.perf_counter()
        try:
            self.entry = await self.state.scheduler.acquire(self.state.model_ref(self.model, spec), spec,
                                                            self.keep_alive)
        except QueueFull:
            raise errors.ServerBusy() from None
        except RunnerError as exc:
            raise errors.InternalError(str(exc)) from None
        self.load_duration = int((time.perf_counter() - t0) * 1e9)
        return self.entry

    def release(self) -> None:
        if self.entry is not None:
            self.state.scheduler.release(self.entry)
            self.entry = None

    def submit_fields(self) -> dict[str, Any]:
        o = self.options
        sampling = {k: o[k] for k in SAMPLING_KEYS if k in o and o[k] is not None}
        stop = o.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        return {"sampling": sampling, "num_predict": int(o.get("num_predict", -1)), "stop": list(stop)}

    async def run(self, prompt: str) -> AsyncIterator[dict[str, Any]]:
        """Token and done messages from the runner; RunnerError becomes an API error."""
        assert self.entry is not None
        try:
            async for msg in self.entry.handle.generate(prompt=prompt, **self.submit_fields()):
                yield msg
        except RunnerError as exc:
            raise errors.InternalError(str(exc)) from None

    def metrics(self, done: dict[str, Any]) -> dict[str, Any]:
        return {
            "total_duration": int((time.perf_counter() - self.t_start) * 1e9),
            "load_duration": self.load_duration,
            "prompt_eval_count": done.get("prompt_eval_count", 0),
            "prompt_eval_duration": done.get("prompt_eval_duration", 0),
            "eval_count": done.get("eval_count", 0),
            "eval_duration": done.get("eval_duration", 0),
        }


def build_options(model: LocalModel, request_options: dict[str, Any] | None) -> dict[str, Any]:
    """defaults < Modelfile PARAMETERs < request options (reference §2.1); bad types are a 400."""
    params, _ = validate_options(model.params)
    options, ignored = validate_options(request_options)
    if ignored:
        log.info("invalid option(s) ignored: %s", ", ".join(ignored))
    return merge_options(params, options)


async def stream_or_collect(chunks: AsyncIterator[dict[str, Any]], stream: bool,
                            merge: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> Any:
    if stream:
        return chunks
    collected = [c async for c in chunks]
    return merge(collected)
