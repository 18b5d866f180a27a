"""A thin, typed wrapper over llama-cpp-python's low-level API (pinned to 0.3.36).

Only this module touches ``llama_cpp``. It owns the model, the context (one KV cache shared by every slot,
each slot being a llama.cpp sequence id), the token batch, tokenization and sampler chains.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as ll
import numpy as np  # llama-cpp-python depends on it already


@dataclass
class LoadOptions:
    """How the runner was asked to load its model; changing any of these means a new runner."""

    model_path: str
    n_ctx: int = 4096  # per slot, as Ollama's num_ctx
    n_parallel: int = 1
    n_batch: int = 512
    n_threads: int = 0  # 0 = physical cores
    use_mmap: bool = True
    lora: list[str] = field(default_factory=list)
    embedding: bool = False
    flash_attn: int = -1  # llama.cpp's auto
    kv_type: str = "f16"  # K and V cache element type (OLLAMA_KV_CACHE_TYPE)


KV_TYPES = {"f16": ll.GGML_TYPE_F16, "q8_0": ll.GGML_TYPE_Q8_0, "q4_0": ll.GGML_TYPE_Q4_0}


@dataclass
class Sampling:
    """Per-request sampling settings, with Ollama's defaults (reference §2.1)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = -1
    grammar: str | None = None

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Sampling:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        return cls(**known)


@dataclass
class Sampler:
    """A request's sampler chain, and its grammar kept apart so that it can be applied lazily."""

    chain: Any
    grammar: Any = None
    greedy: bool = False  # the chain is only llama.cpp's greedy sampler: argmax, nothing to remember


def physical_cores() -> int:
    """Physical cores, as Ollama picks its default thread count; hyperthreads slow decoding down."""
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                    cores.add((phys, core))
        if cores:
            return min(len(cores), len(os.sched_getaffinity(0)))
    except OSError:
        pass
    return max(1, len(os.sched_getaffinity(0)))


_backend_ready = False


def _quiet_logs() -> None:
    """Route llama.cpp's chatty load log to stderr only for warnings and errors."""

    @ll.llama_log_callback
    def _log(level: int, text: bytes, _user: Any) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            os.write(2, text)

    global _log_cb
    _log_cb = _log  # keep a reference: llama.cpp holds the raw pointer
    ll.llama_log_set(_log, ctypes.c_void_p(0))


_log_cb: Any = None

EMBED_SEQS = 64  # inputs one embedding decode can carry (llama.cpp allows up to 256 sequences)


def _view(ptr: Any, n: int) -> Any:
    return (ptr._type_ * n).from_address(ctypes.addressof(ptr.contents))


def _address_binding(name: str, argtypes: list[Any]) -> Any:
    """The C function behind llama_cpp's binding of ``name``, returning its pointer as an int: casting the
    ``POINTER(c_float)`` llama_cpp's own binding returns costs microseconds on every decode step."""
    fn = getattr(ctypes.CDLL(ll.llama_cpp._lib._name), name)
    fn.argtypes = argtypes
    fn.restype = ctypes.c_void_p
    return fn


_get_logits = _address_binding("llama_get_logits", [ctypes.c_void_p])
_get_logits_ith = _address_binding("llama_get_logits_ith", [ctypes.c_void_p, ctypes.c_int32])


class Engine:
    """One model and one context with ``n_parallel`` sequences (slots), each with a KV cache of its own."""

    def __init__(self, opts: LoadOptions) -> None:
        global _backend_ready
        if not _backend_ready:
            if not os.environ.get("CORRAL_LLAMA_VERBOSE"):
                _quiet_logs()
            ll.llama_backend_init()
            _backend_ready = True
        self.opts = opts
        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = 0
        # ggml's "extra" CPU buffer types include AMX; on these Sapphire Rapids VMs the AMX tiles fault
        # (SIGSEGV in the first multi-token decode), so they are off unless asked for. Q4_1 and most
        # quantizations have no repacked kernels anyway; llama.cpp's anchors run with --no-repack to match.
        mparams.use_extra_bufts = bool(os.environ.get("CORRAL_EXTRA_BUFTS"))
        mparams.load_mode = ll.LLAMA_LOAD_MODE_MMAP if opts.use_mmap else ll.LLAMA_LOAD_MODE_NONE
        model = ll.llama_model_load_from_file(opts.model_path.encode(), mparams)
        if not model:
            raise RuntimeError(f"failed to load model {opts.model_path}")
        self.model = model
        self.vocab = ll.llama_model_get_vocab(model)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = ll.llama_model_n_ctx_train(model)
        self.n_swa = ll.llama_model_n_swa(model)
        self._adapters: list[Any] = []
        for path in opts.lora:
            adapter = ll.llama_adapter_lora_init(model, path.encode())
            if not adapter:
                raise RuntimeError(f"failed to load adapter {path}")
            self._adapters.append(adapter)

        threads = opts.n_threads or physical_cores()
        self.n_threads = threads
        self.n_slots = max(1, opts.n_parallel)
        self.n_ctx_slot = opts.n_ctx
        self.pooled = False
        ctx = self._new_context(opts, threads, pooling=ll.LLAMA_POOLING_TYPE_UNSPECIFIED)
        if opts.embedding and ll.llama_pooling_type(ctx) == ll.LLAMA_POOLING_TYPE_NONE:
            # A generative model has no pooling of its own; corral embeds with it anyway, by the mean of its
            # token states (what sentence-transformers does for most models).
            ll.llama_free(ctx)
            ctx = self._new_context(opts, threads, pooling=ll.LLAMA_POOLING_TYPE_MEAN)
        self.ctx = ctx
        if opts.embedding:
            self.pooled = ll.llama_pooling_type(ctx) != ll.LLAMA_POOLING_TYPE_NONE
            self.n_embd = ll.llama_model_n_embd(model)
        if self._adapters:
            scales = (ctypes.c_float * len(self._adapters))(*([1.0] * len(self._adapters)))
            arr = (ll.llama_adapter_lora_p_ctypes * len(self._adapters))(*self._adapters)
            ll.llama_set_adapters_lora(ctx, arr, len(self._adapters), scales)
        self.n_ctx = ll.llama_n_ctx(ctx)
        self.n_batch = ll.llama_n_batch(ctx)
        self.mem = ll.llama_get_memory(ctx)
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)
        # Array views over the batch's C buffers: ctypes pointers cannot take slice assignment, arrays can.
        self._b_token = _view(self.batch.token, self.n_batch)
        self._b_pos = _view(self.batch.pos, self.n_batch)
        self._b_nseq = _view(self.batch.n_seq_id, self.n_batch)
        self._b_logits = _view(self.batch.logits, self.n_batch)
        self.bos = ll.llama_vocab_bos(self.vocab)
        self.add_bos = ll.llama_vocab_get_add_bos(self.vocab)
        token_data = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data
        self._ids = np.arange(self.n_vocab, dtype=np.int32)
        self._cand = np.empty(self.n_vocab, dtype=token_data)
        self._one = np.empty(1, dtype=token_data)
        self._piece_cache: dict[int, bytes] = {}
        self._special_pieces: dict[int, bytes] = {}  # only the reader thread's detokenize uses these
        self._logit_views: dict[tuple[int, int], Any] = {}

    def _new_context(self, opts: LoadOptions, threads: int, pooling: int) -> Any:
        cparams = ll.llama_context_default_params()
        if opts.embedding:
            # Many inputs per decode, each its own sequence, all in one pool; a whole input must fit one
            # micro-batch (non-causal models cannot split one), so the batch is the context.
            cparams.n_ctx = opts.n_ctx
            cparams.n_batch = cparams.n_ubatch = opts.n_ctx
            cparams.n_seq_max = EMBED_SEQS
            cparams.kv_unified = True
            cparams.embeddings = True
            cparams.pooling_type = pooling
        else:
            cparams.n_ctx = opts.n_ctx * self.n_slots
            cparams.n_batch = cparams.n_ubatch = max(opts.n_batch, 1)
            cparams.n_seq_max = self.n_slots
            # One cache per slot rather than llama-server's unified pool: in a unified cache every decode
            # attends over the cells all slots occupy (masked), so idle slots' cached prompts slow each
            # step (bench/RESULTS.md). Each slot has num_ctx cells either way. CORRAL_KV_UNIFIED=1 pools.
            cparams.kv_unified = bool(os.environ.get("CORRAL_KV_UNIFIED"))
        # With a cache per slot, one ubatch holds only sequences with consecutive ids (see pick_slot).
        self.sequential_batches = not cparams.kv_unified and self.n_slots > 1
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.flash_attn_type = opts.flash_attn
        if not opts.embedding:
            cparams.type_k = cparams.type_v = KV_TYPES[opts.kv_type]
        cparams.no_perf = True
        ctx = ll.llama_init_from_model(self.model, cparams)
        if not ctx:
            ll.llama_model_free(self.model)
            raise RuntimeError("failed to create the llama.cpp context (out of memory?)")
        return ctx

    # --- tokens -------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ll.llama_token * cap)()
        n = ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (ll.llama_token * cap)()
            n = ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        tokens = list(buf[:n])
        # A template that writes the BOS text itself plus a tokenizer that adds one gives two; keep one.
        if len(tokens) >= 2 and tokens[0] == self.bos and tokens[1] == self.bos:
            tokens = tokens[1:]
        return tokens

    def piece(self, token: int) -> bytes:
        """The bytes of one token as generated text (special tokens render as nothing)."""
        cached = self._piece_cache.get(token)
        if cached is None:
            cached = self._piece_cache[token] = self._token_bytes(token, special=False)
        return cached

    def _token_bytes(self, token: int, *, special: bool) -> bytes:
        # A buffer per call, not one per engine: the loop thread (piece) and the reader thread (detokenize)
        # both get here, and ctypes lets go of the GIL during the call. Only cache misses come this way.
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n >= 0:
            return buf.raw[:n]
        buf = ctypes.create_string_buffer(-n)
        n = ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def detokenize(self, tokens: list[int]) -> str:
        """Text that tokenizes back to ``tokens``: special tokens keep their text (``<|im_start|>``), as
        Ollama's detokenize does, so a generate ``context`` replays the earlier turns' template intact. A
        leading BOS is left out when tokenizing adds one anyway (Ollama's text would carry a second one)."""
        if tokens and self.add_bos and tokens[0] == self.bos:
            tokens = tokens[1:]
        pieces = self._special_pieces  # (filled by both threads: a dict's item assignment is atomic)
        out = []
        for t in tokens:
            raw = pieces.get(t)
            if raw is None:
                if not (isinstance(t, int) and 0 <= t < self.n_vocab):
                    # llama.cpp aborts the whole process on a token id outside the vocabulary
                    raise ValueError(f"invalid token {t!r}: the vocabulary has {self.n_vocab} tokens")
                raw = pieces[t] = self._token_bytes(t, special=True)
            out.append(raw)
        return b"".join(out).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_eog(self.vocab, token))

    # --- sampling -----------------------------------------------------------------------------------

    def new_sampler(self, s: Sampling) -> Sampler:
        """A sampler chain in Ollama's (llama-server's) order, greedy when temperature is 0; a grammar, if
        any, is kept beside the chain and consulted lazily (see :meth:`sample`)."""
        grammar = None
        if s.grammar:
            grammar = ll.llama_sampler_init_grammar(self.vocab, s.grammar.encode(), b"root")
            if not grammar:
                raise ValueError("invalid grammar")
        params = ll.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = ll.llama_sampler_chain_init(params)
        add = ll.llama_sampler_chain_add
        last_n = self.n_ctx_slot if s.repeat_last_n < 0 else s.repeat_last_n
        if last_n and (s.repeat_penalty != 1.0 or s.presence_penalty or s.frequency_penalty):
            add(chain, ll.llama_sampler_init_penalties(self.n_vocab, last_n, s.repeat_penalty,
                                                       s.frequency_penalty, s.presence_penalty))
        if s.temperature <= 0:
            greedy = ll.llama_sampler_chain_n(chain) == 0
            add(chain, ll.llama_sampler_init_greedy())
            return Sampler(chain, grammar, greedy=greedy)
        if s.top_k > 0:
            add(chain, ll.llama_sampler_init_top_k(s.top_k))
        if 0 < s.typical_p < 1:
            add(chain, ll.llama_sampler_init_typical(s.typical_p, 1))
        if 0 < s.top_p < 1:
            add(chain, ll.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            add(chain, ll.llama_sampler_init_min_p(s.min_p, 1))
        add(chain, ll.llama_sampler_init_temp(s.temperature))
        seed = ll.LLAMA_DEFAULT_SEED if s.seed < 0 else s.seed & 0xFFFFFFFF
        add(chain, ll.llama_sampler_init_dist(seed))
        return Sampler(chain, grammar)

    def sample(self, sampler: Sampler, batch_index: int) -> int:
        """One row's token through the sampler chain (greedy rows go through :meth:`sample_outputs`)."""
        if sampler.grammar is None:
            # applies the chain to the logits of that batch row and accepts the token, all in C
            return int(ll.llama_sampler_sample(sampler.chain, self.ctx, batch_index))
        # With a grammar, llama-server's way: sample freely, ask the grammar about that one token, and only
        # when it refuses, mask the whole vocabulary by the grammar and sample again. Masking ~50k candidates
        # through the grammar every step made constrained generation many times slower than free text.
        logits = self._logits(batch_index)
        cur = self._candidates(logits)
        ll.llama_sampler_apply(sampler.chain, ctypes.byref(cur))
        token = int(cur.data[cur.selected].id)
        one = self._one
        one[0] = (token, float(logits[token]), 0.0)
        single = ll.llama_token_data_array(
            data=one.ctypes.data_as(ctypes.POINTER(ll.llama_token_data)), size=1, selected=-1, sorted=False)
        ll.llama_sampler_apply(sampler.grammar, ctypes.byref(single))
        if not np.isfinite(one[0]["logit"]):
            cur = self._candidates(logits)
            ll.llama_sampler_apply(sampler.grammar, ctypes.byref(cur))
            ll.llama_sampler_apply(sampler.chain, ctypes.byref(cur))
            token = int(cur.data[cur.selected].id)
        ll.llama_sampler_accept(sampler.grammar, token)
        ll.llama_sampler_accept(sampler.chain, token)
        return token

    def sample_outputs(self, picks: list[tuple[Sampler | None, int]]) -> list[int]:
        """The next token of every output of the last decode: ``picks`` holds each output's sampler and
        batch index, all of them, in batch order (llama.cpp stores output rows in that order). Greedy rows
        are decided together, one numpy argmax over the whole logits buffer (llama_sampler_sample would
        build a candidate list of the whole vocabulary per row: 0.29 ms for gemma3's 262k tokens, over 1 %
        of a decode step)."""
        rows: list[int] | None = None
        out: list[int] = []
        for j, (sampler, index) in enumerate(picks):
            if sampler is None:
                out.append(-1)  # the caller draws this row itself, later
            elif sampler.greedy and sampler.grammar is None:
                if rows is None:
                    rows = self._floats(_get_logits(self.ctx), len(picks) * self.n_vocab).reshape(
                        len(picks), self.n_vocab).argmax(axis=1).tolist()
                out.append(rows[j])
            else:
                out.append(self.sample(sampler, index))
        return out

    def logits(self, batch_index: int) -> Any:
        """A numpy view of one batch row's logits (valid until the next decode)."""
        return self._logits(batch_index)

    def _logits(self, batch_index: int) -> Any:
        """A numpy view of one batch row's logits."""
        return self._floats(_get_logits_ith(self.ctx, batch_index), self.n_vocab)

    def _floats(self, addr: int | None, n: int) -> Any:
        """A numpy view of ``n`` floats at ``addr``. Views are kept: making one costs ~40 us, a step's worth
        of Python, and llama.cpp hands out the same few addresses of one buffer step after step (a row at an
        address llama.cpp returns now is valid now, whatever buffer once held that address)."""
        key = (addr or 0, n)
        view = self._logit_views.get(key)
        if view is None:
            if not addr:
                raise RuntimeError("llama.cpp returned no logits")
            if len(self._logit_views) > 4096:
                self._logit_views.clear()
            view = np.ctypeslib.as_array((ctypes.c_float * n).from_address(addr))
            self._logit_views[key] = view
        return view

    def _candidates(self, logits: Any) -> Any:
        """Every token with its logit, as a llama_token_data_array over a reused buffer."""
        buf = self._cand
        buf["id"] = self._ids
        buf["logit"] = logits
        buf["p"] = 0.0
        return ll.llama_token_data_array(data=buf.ctypes.data_as(ctypes.POINTER(ll.llama_token_data)),
                                         size=self.n_vocab, selected=-1, sorted=False)

    def top2_gap(self, batch_index: int) -> float:
        """Difference between the two largest logits of a batch row (for determinism checks only)."""
        logits = self._logits(batch_index)
        top = np.partition(logits, -2)[-2:]
        return float(abs(top[1] - top[0]))

    def logprobs(self, batch_index: int, token: int, top: int) -> dict[str, Any]:
        """Log-probability of ``token`` under the model's raw distribution at that batch row, with the
        ``top`` most likely alternatives, in Ollama's wire shape (``token``, ``logprob``, ``bytes``)."""
        logits = self._logits(batch_index).astype(np.float64)
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak).sum()))
        entry = self._lp_entry(token, float(logits[token]) - log_total)
        if top > 0:
            best = np.argpartition(logits, -top)[-top:]
            best = best[np.argsort(-logits[best], kind="stable")]
            entry["top_logprobs"] = [self._lp_entry(int(t), float(logits[t]) - log_total) for t in best]
        return entry

    def _lp_entry(self, token: int, logprob: float) -> dict[str, Any]:
        raw = self.piece(token)
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(raw)}

    @staticmethod
    def can_draft(sampler: Sampler) -> bool:
        """Whether drafts may be checked for this sampler: every one may (a plain greedy one by argmax, the
        others by drawing each row in turn, see ``Runner._after_draft``)."""
        return True

    @staticmethod
    def free_sampler(sampler: Sampler) -> None:
        ll.llama_sampler_free(sampler.chain)
        if sampler.grammar is not None:
            ll.llama_sampler_free(sampler.grammar)

    # --- the batch and the cache ---------------------------------------------------------------------

    def batch_clear(self) -> None:
        self.batch.n_tokens = 0

    def batch_add_seq(self, tokens: list[int], pos: int, seq: int, last_logits: bool, *,
                      all_logits: bool = False) -> int:
        """Append a run of one sequence's tokens at positions ``pos``, ``pos+1``, …; the row of the last.

        A 1k-token prompt would take 5k ctypes item assignments one by one; slice assignment does the
        token, position, seq-count and logits arrays in one C-level copy each.
        """
        b = self.batch
        i = b.n_tokens
        n = len(tokens)
        end = i + n
        self._b_token[i:end] = tokens
        self._b_pos[i:end] = range(pos, pos + n)
        self._b_nseq[i:end] = [1] * n
        self._b_logits[i:end] = [int(all_logits)] * n
        seq_id = b.seq_id
        for k in range(i, end):
            seq_id[k][0] = seq
        if last_logits:
            self._b_logits[end - 1] = 1
        b.n_tokens = end
        return end - 1

    def decode(self) -> int:
        return int(ll.llama_decode(self.ctx, self.batch))

    def seq_truncate(self, seq: int, keep: int) -> bool:
        """Drop a sequence's cache from position ``keep`` on; False when the cache cannot cut there."""
        return bool(ll.llama_memory_seq_rm(self.mem, seq, keep, -1))

    def seq_remove(self, seq: int, p0: int, p1: int) -> None:
        """Drop positions [p0, p1) of a sequence's cache."""
        ll.llama_memory_seq_rm(self.mem, seq, p0, p1)

    def seq_clear(self, seq: int) -> None:
        ll.llama_memory_seq_rm(self.mem, seq, -1, -1)

    def seq_move(self, src: int, dst: int) -> None:
        """Copy sequence ``src``'s cache into ``dst`` (a whole-stream copy, done at the next decode)."""
        ll.llama_memory_seq_rm(self.mem, dst, -1, -1)
        ll.llama_memory_seq_cp(self.mem, src, dst, -1, -1)

    def seq_state_size(self, seq: int) -> int:
        return int(ll.llama_state_seq_get_size(self.ctx, seq))

    def seq_state(self, seq: int) -> bytes:
        """A sequence's cache as bytes (its cells, positions and K/V rows), for :meth:`seq_restore`."""
        n = ll.llama_state_seq_get_size(self.ctx, seq)
        buf = (ctypes.c_uint8 * n)()
        got = ll.llama_state_seq_get_data(self.ctx, buf, n, seq)
        return ctypes.string_at(buf, got)

    def seq_restore(self, seq: int, data: bytes) -> bool:
        """Replace a sequence's cache by a state :meth:`seq_state` gave (same weights and load options);
        False when llama.cpp refuses it (then the sequence is empty)."""
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if ll.llama_state_seq_set_data(self.ctx, buf, len(data), seq) == 0:
            self.seq_clear(seq)
            return False
        return True

    def seq_pos_min(self, seq: int) -> int:
        return int(ll.llama_memory_seq_pos_min(self.mem, seq))

    def seq_shift(self, seq: int, p0: int, p1: int, delta: int) -> None:
        ll.llama_memory_seq_add(self.mem, seq, p0, p1, delta)

    def can_shift(self) -> bool:
        return bool(ll.llama_memory_can_shift(self.mem))

    # --- embeddings ---------------------------------------------------------------------------------

    def embed_pass(self, inputs: list[list[int]]) -> list[list[float]]:
        """One decode over several inputs (each its own sequence, all fitting the batch): pooled vectors.

        Raw vectors; the server normalises (``/api/embed``) or not (the legacy ``/api/embeddings``).
        """
        self.batch_clear()
        for seq, tokens in enumerate(inputs):
            self.batch_add_seq(tokens, 0, seq, True)
            self._b_logits[self.batch.n_tokens - len(tokens):self.batch.n_tokens] = [1] * len(tokens)
        ret = self.decode()
        try:
            if ret != 0:
                raise RuntimeError(f"llama_decode failed ({ret})")
            out = []
            for seq in range(len(inputs)):
                ptr = ll.llama_get_embeddings_seq(self.ctx, seq)
                if not ptr:
                    raise RuntimeError("the model produced no pooled embedding")
                out.append(list(ptr[: self.n_embd]))
            return out
        finally:
            ll.llama_memory_clear(self.mem, True)

    def close(self) -> None:
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)
