"""What every route shares: settings, the store and the scheduler; and the glue between them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from corral.api.errors import BadRequest
from corral.config import Settings
from corral.scheduler.handle import RunnerSpec
from corral.scheduler.memory import estimate_runner_bytes
from corral.scheduler.scheduler import ModelRef, Scheduler
from corral.server.metrics import Metrics
from corral.store.errors import GGUFError
from corral.store.gguf import read_metadata
from corral.store.models import LocalModel, Store

MAX_THREADS = 512  # GGML_MAX_N_THREADS
MAX_DRAFT = 16  # the runner's cap on tokens guessed a step (corral.runner.loop.MAX_DRAFT)
MAX_PARALLEL = 64  # sequences a llama.cpp context holds at most (LLAMA_MAX_SEQ is 64 in older releases)
# An embedding runner packs up to 64 inputs into one decode (corral.runner.engine.EMBED_SEQS), with a batch as
# large as its context; llama.cpp aborts creating a context whose batch cannot hold one output per sequence.
EMBED_MIN_CTX = 64


@dataclass
class ServerState:
    settings: Settings
    store: Store
    scheduler: Scheduler
    started: float = 0.0
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.scheduler)

    def model_ref(self, model: LocalModel, spec: RunnerSpec) -> ModelRef:
        meta = model.gguf()
        kv = meta.kv if meta is not None else {}
        weights = model.model_path.stat().st_size if model.model_path else 0
        estimate = estimate_runner_bytes(weights, kv, spec.num_ctx, spec.num_parallel, spec.kv_type)
        if spec.draft_path:  # a second model and context in the same runner
            try:
                draft = Path(spec.draft_path)
                estimate += estimate_runner_bytes(draft.stat().st_size, read_metadata(draft).kv, spec.num_ctx,
                                                  spec.num_parallel, spec.kv_type)
            except (OSError, GGUFError):
                pass  # the load will say what is wrong with it
        return ModelRef(name=model.short_name, digest=model.digest, details=model.details(),
                        estimate_bytes=estimate + (spec.prompt_cache_mb << 20),
                        replicas=self.settings.replicas_for(model.short_name))

    def runner_spec(self, model: LocalModel, load: dict[str, Any], *, embedding: bool = False) -> RunnerSpec:
        """The runner a request needs: weights plus load options (a change of any of these reloads)."""
        if model.model_path is None:
            raise FileNotFoundError(model.short_name)
        num_ctx = int(load.get("num_ctx") or self.settings.context_length)
        meta = model.gguf()
        n_train = int(meta.context_length) if meta is not None and meta.context_length else 0
        if n_train:
            num_ctx = min(num_ctx, n_train)  # Ollama caps num_ctx at the trained context
        num_ctx = max(num_ctx, EMBED_MIN_CTX if embedding else 4)
        num_thread = int(load.get("num_thread") or 0)
        if not 0 <= num_thread <= MAX_THREADS:
            # llama.cpp's thread pool holds at most 512; more crashed the runner (after the model's runner had
            # been unloaded to make room for the new one)
            raise BadRequest(f"num_thread must be between 0 and {MAX_THREADS}")
        num_parallel = int(load.get("num_parallel") or self.settings.num_parallel)
        if load.get("num_parallel") is not None and not 1 <= num_parallel <= MAX_PARALLEL:
            raise BadRequest(f"num_parallel must be between 1 and {MAX_PARALLEL}")
        num_batch = int(load.get("num_batch") or 512)
        if num_batch <= 0:
            num_batch = 512
        return RunnerSpec(
            model_path=str(model.model_path),
            num_ctx=num_ctx,
            num_parallel=1 if embedding else min(num_parallel, MAX_PARALLEL),
            # llama.cpp never batches more than the context holds; a bigger number only overflowed its int
            num_batch=min(num_batch, num_ctx),
            num_thread=num_thread,
            use_mmap=bool(load.get("use_mmap", True)) if load.get("use_mmap") is not None else True,
            adapters=tuple(str(p) for p in model.adapters),
            embedding=embedding,
            **self._attention(embedding),
            **self._prompt_cache(model, embedding, num_ctx, 1 if embedding else min(num_parallel, MAX_PARALLEL)),
            **self._draft(model, load, embedding),
            projector=str(model.projectors[-1]) if model.projectors and not embedding else "",
        )

    @staticmethod
    def _draft(model: LocalModel, load: dict[str, Any], embedding: bool) -> dict[str, Any]:
        """A DRAFT layer speculates with ``draft_num_predict`` guesses a step (Ollama's default: 4; 0 turns
        it off). Without one the option changes nothing (and so reloads nothing)."""
        draft = model.draft_path
        if draft is None or embedding:
            return {}
        n = load.get("draft_num_predict")
        n = 4 if n is None else int(n)
        if not 0 <= n <= MAX_DRAFT:
            raise BadRequest(f"draft_num_predict must be between 0 and {MAX_DRAFT}")
        return {"draft_path": str(draft), "draft_num_predict": n} if n else {}

    def _prompt_cache(self, model: LocalModel, embedding: bool, num_ctx: int, num_parallel: int) -> dict[str, Any]:
        """CORRAL_PROMPT_CACHE_MB / _DIR. A saved state fits only the same weights, adapters, projector, cache
        type, context and cache layout (llama.cpp refuses a state of another stream count), so each such
        combination has a folder of its own under the directory."""
        settings = self.settings
        if embedding or not settings.prompt_cache_mb:
            return {}
        out: dict[str, Any] = {"prompt_cache_mb": settings.prompt_cache_mb}
        if settings.prompt_cache_dir is not None:
            attention = self._attention(embedding)
            key = "|".join([str(model.model_path), *(str(p) for p in model.adapters),
                            *(str(p) for p in model.projectors), str(num_ctx), str(num_parallel),
                            os.environ.get("CORRAL_KV_UNIFIED", ""), attention["kv_type"],
                            str(attention["flash_attn"])])
            out["prompt_cache_dir"] = str(settings.prompt_cache_dir / hashlib.sha256(key.encode()).hexdigest()[:24])
        return out

    def _attention(self, embedding: bool) -> dict[str, Any]:
        """The KV cache type and flash attention, from OLLAMA_KV_CACHE_TYPE and OLLAMA_FLASH_ATTENTION. A
        quantized V cache needs flash attention: it is turned on for it, and with it forced off the cache stays
        f16 (Ollama's fallback). An embedding runner keeps no cache between requests: f16, llama.cpp's choice."""
        settings = self.settings
        if embedding:
            return {}
        kv_type, flash = settings.kv_cache_type, settings.flash_attention
        if kv_type != "f16":
            if flash is False:
                return {"kv_type": "f16", "flash_attn": False}
            flash = True
        return {"kv_type": kv_type, "flash_attn": flash}



def state_of(request: Request) -> ServerState:
    """The server's state, as every route reaches it."""
    s: ServerState = request.app.state.corral
    return s
