"""One request's run on a runner: resolve the name, pick the runner, fit the prompt, stream, time.

Every API family reaches the engine through :class:`Generation`; :func:`runner_error` is the one place a
runner's failure becomes an API error (a refusal of bad input is the client's 400, anything else a 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from corral.api import errors
from corral.api.options import LOAD_OPTIONS, merge_options, validate_options
from corral.config import TRACE
from corral.prompt.render import PromptFormat
from corral.scheduler.handle import RunnerError
from corral.scheduler.scheduler import Loaded, QueueFull
from corral.server.core.fit import Fitted, Render, fit
from corral.server.state import ServerState
from corral.store.models import LocalModel

log = logging.getLogger("corral.server")

Disconnected = Callable[[], Awaitable[bool]]
"""Whether the client has left (a request's ``is_disconnected``); polled while a request waits for a model."""

SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n",
                 "presence_penalty", "frequency_penalty", "seed")


def resolve(state: ServerState, name: str,
            not_found: Callable[[str], errors.APIError] = errors.model_not_found) -> LocalModel:
    """The named model; ``not_found`` picks the wording (the embed paths use the scheduler's)."""
    if not name:
        raise errors.model_required()
    try:
        model = state.store.resolve(name)
    except Exception:
        model = None
    if model is None:
        raise not_found(name)
    return model


def runner_error(exc: RunnerError) -> errors.APIError:
    """A runner's failure as the client sees it."""
    if exc.code == "input_too_long":
        return errors.input_too_long()
    if exc.client_mistake:
        return errors.BadRequest(str(exc))
    return errors.InternalError(str(exc))


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
    # False when the client wants one response: the runner then sends the text once, with ``done``,
    # instead of a frame per token that the server would only add up again.
    stream: bool = True
    embedding: bool = False  # an embedding runner (pooled vectors) rather than a generating one
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None  # GBNF the sampler enforces (from format, a raw grammar, or tool_choice)
    shift: bool = True  # the request's ``shift``: at a full context the runner shifts it, as Ollama does
    images: list[str] = field(default_factory=list)  # base64, in the order of the prompt's [img-N] tags
    _first_seen: bool = False  # the first token has been timed (a two-pass run times only its first)

    @property
    def load_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.options.items() if k in LOAD_OPTIONS}

    async def acquire(self, disconnected: Disconnected | None = None) -> Loaded:
        """A runner for this request; a client that leaves while waiting gets Ollama's 499.

        Inside a stream writer, which cancels the work when the client leaves, ``disconnected`` is None."""
        spec = self.state.runner_spec(self.model, self.load_options, embedding=self.embedding)
        sched = self.state.scheduler
        t0 = time.perf_counter()
        try:
            ready = sched.find_ready(spec)
            if ready is not None or disconnected is None:  # the common case: no task, no polling
                self.entry = await sched.acquire(self.state.model_ref(self.model, spec), spec, self.keep_alive)
            else:
                self.entry = await _unless_disconnected(
                    disconnected, sched.acquire(self.state.model_ref(self.model, spec), spec, self.keep_alive),
                    sched.release)
        except QueueFull:
            raise errors.ServerBusy() from None
        except asyncio.CancelledError:
            # a stream writer cancels the work when its client leaves, here while it waited for a model
            log.info("client left while its request waited for a model: %s", errors.RequestCanceled().message)
            raise
        except RunnerError as exc:
            raise errors.InternalError(str(exc)) from None  # a failed load is never the client's mistake
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
        if self.grammar:
            sampling["grammar"] = self.grammar
        num_keep, draft = o.get("num_keep"), o.get("ngram_draft")
        return {"sampling": sampling, "num_predict": int(o.get("num_predict", -1)), "stop": list(stop),
                "stream": self.stream, "logprobs": self.logprobs, "top_logprobs": self.top_logprobs,
                "shift": self.shift, "num_keep": 4 if num_keep is None else int(num_keep),
                "ngram_draft": self.state.settings.ngram_draft if draft is None else int(draft),
                **({"images": self.images} if self.images else {})}

    async def fit(self, messages: list[dict[str, Any]], render: Render, *, truncate: bool, shift: bool) -> Fitted:
        """The prompt for these messages; one that may overflow is checked by the runner and cut to the
        context only if it does (see corral.server.context)."""
        assert self.entry is not None
        self.shift = shift
        handle = self.entry.handle
        meta = self.model.gguf()
        return await fit(messages, render, handle.tokenize, num_ctx=self.entry.spec.num_ctx,
                         num_keep=int(self.options.get("num_keep", 4)), truncate=truncate, shift=shift,
                         bos=bool(meta is not None and meta.add_bos_token), exact=False)

    async def run(self, fitted: Fitted) -> AsyncGenerator[dict[str, Any], None]:
        """Token and done messages from the runner; RunnerError becomes an API error."""
        assert self.entry is not None
        metrics, name = self.state.metrics, self.model.short_name
        while True:
            source: dict[str, Any] = ({"tokens": fitted.tokens} if fitted.tokens is not None
                                      else {"prompt": fitted.prompt})
            if log.isEnabledFor(logging.DEBUG):  # OLLAMA_DEBUG=1: what is asked of the runner; 2: the prompt too
                log.debug("completion request model=%s runner=%s prompt=%d characters options=%s", name,
                          self.entry.handle.pid, len(fitted.prompt), self.submit_fields())
                log.log(TRACE, "prompt=%r", fitted.prompt)
            try:
                # aclosing: a caller that stops early (the two-pass format path) cancels on the runner now,
                # not whenever the abandoned generator happens to be collected
                async with contextlib.aclosing(self.entry.handle.generate(**source, **self.submit_fields())) as msgs:
                    async for msg in msgs:
                        if not self._first_seen and (msg["kind"] == "token" or msg.get("text")):
                            self._first_seen = True
                            metrics.first_token(name, time.perf_counter() - self.t_start)
                        if msg["kind"] == "done":
                            if msg.get("context_shifts"):
                                log.info("%s: the context (%d tokens) filled; shifted %d time(s), keeping num_keep",
                                         name, self.entry.spec.num_ctx, msg["context_shifts"])
                            if msg.get("drafted"):
                                log.info("%s: %s speculation drafted %d token(s), %d accepted (%.0f%%)", name,
                                         "draft model" if self.entry.spec.draft_path else "n-gram",
                                         msg["drafted"], msg["draft_accepted"],
                                         100 * msg["draft_accepted"] / msg["drafted"])
                            if msg.get("context_full"):
                                log.info("%s: the context (%d tokens) filled and this model's cache cannot shift: "
                                         "stopped (done_reason length)", name, self.entry.spec.num_ctx)
                            metrics.generated(name, prompt_tokens=whole_prompt(msg),
                                              tokens=int(msg.get("eval_count") or 0),
                                              eval_ns=int(msg.get("eval_duration") or 0),
                                              queue_s=(self.load_duration + int(msg.get("queue_duration") or 0))
                                              / 1e9)
                        if msg["kind"] == "done" and (msg.get("text") or msg.get("logprobs")):
                            # what the runner held back until the end (all of it when not streaming)
                            yield {"kind": "token", "id": msg["id"], "text": msg.pop("text", ""),
                                   "logprobs": msg.pop("logprobs", None)}
                        yield msg
                return
            except RunnerError as exc:
                # the runner refuses a prompt before generating anything, so nothing was sent yet
                if exc.code == "prompt_too_long" and await self._refit(fitted):
                    continue
                raise runner_error(exc) from None

    @staticmethod
    async def _refit(fitted: Fitted) -> bool:
        try:
            return await fitted.apply_refit()
        except RunnerError as exc:  # tokenizing the prompt failed (one too large for the channel, say)
            raise runner_error(exc) from None

    def metrics(self, done: dict[str, Any]) -> dict[str, Any]:
        return {
            "total_duration": int((time.perf_counter() - self.t_start) * 1e9),
            "load_duration": self.load_duration,
            # the whole prompt, as Ollama counts it since 0.30.1 (the runner's own count leaves out the cached
            # prefix; the duration stays that of the evaluated part)
            "prompt_eval_count": whole_prompt(done),
            "prompt_eval_duration": done.get("prompt_eval_duration", 0),
            "eval_count": done.get("eval_count", 0),
            "eval_duration": done.get("eval_duration", 0),
            "draft_tokens": done.get("drafted", 0),
            "draft_accepted": done.get("draft_accepted", 0),
        }


def whole_prompt(done: dict[str, Any]) -> int:
    """The prompt's tokens, cached prefix included, from a runner's done message."""
    tokens = done.get("prompt_tokens")
    return len(tokens) if isinstance(tokens, list) else int(done.get("prompt_eval_count") or 0)


async def _unless_disconnected(disconnected: Disconnected, work: Coroutine[Any, Any, Loaded],
                               undo: Callable[[Loaded], None]) -> Loaded:
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await disconnected():
            task.cancel()
            try:
                entry = await task
            except (asyncio.CancelledError, Exception):
                pass
            else:
                undo(entry)  # it arrived just as the client left
            log.info("client left while its request waited for a model: %s", errors.RequestCanceled().message)
            raise errors.RequestCanceled()


def build_options(model: LocalModel, request_options: dict[str, Any] | None) -> dict[str, Any]:
    """defaults < Modelfile PARAMETERs < request options (reference §2.1); bad types are a 400."""
    params, _ = validate_options(model.params)
    options, ignored = validate_options(request_options)
    if ignored:
        log.info("invalid option(s) ignored: %s", ", ".join(ignored))
    return merge_options(params, options)
