"""The spec suite's workloads (issue 20): speculative decoding (with a draft model, and by n-gram lookup), a
long system prompt shared by concurrent clients, and the KV cache's memory per slot by cache type.

Each function runs one step of one workload against every system in turn and records samples in
``Results`` under a row group (the "model" key there) and a workload name:

- ``draft`` / ``copy``: ``rate`` (server-reported tok/s), ``tokens`` (generated), and where the server reports
  its drafts, ``drafted`` / ``accepted`` per request and ``acceptance`` (accepted / drafted).
- ``shared``: ``first_prefill_ms`` / ``first_ttfb_ms`` (client 1, alone), ``rest_prefill_ms`` /
  ``rest_ttfb_ms`` (each of clients 2..N, released together), ``rest_pct`` (per sample: the median of
  ``rest_prefill_ms`` over ``first_prefill_ms``, in %), ``prompt_tokens``.
- ``kv``: ``rss{slots}_{type}`` (MB), ``slot_{type}`` (the difference between two slot counts per added
  slot), ``ratio_{type}`` (``slot_{type}`` over ``slot_f16`` of the same round).
"""

from __future__ import annotations

import functools
import statistics
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from bench.prompts import filler
from bench.results import Results
from bench.targets import Decode, FirstToken

T = TypeVar("T")
Decoder = Callable[[str, int], Decode]  # (prompt, tokens to generate)
Asker = Callable[[str, int, str], FirstToken]  # (question, tokens to generate, system prompt)
RssProbe = Callable[[str, int], float]  # (KV cache type, slots) -> MB of the process that holds the cache

QUESTIONS = (
    "What is the first thing mentioned in the notes?",
    "Summarise the notes in one sentence.",
    "Which word appears most often?",
    "Is there anything about a river?",
    "Give the notes a short title.",
    "What season do the notes suggest?",
    "Name two objects from the notes.",
    "Would a child understand these notes?",
    "What colour is mentioned first?",
    "List three places from the notes.",
    "Which sentence is the longest?",
    "Is the tone happy or sad?",
    "What might come next?",
    "Who could have written these notes?",
    "Translate the first sentence into French.",
    "Count the sentences, roughly.",
)


@dataclass(frozen=True)
class SpecConfig:
    rounds: int = 3
    threads: int = 2
    ctx_per_slot: int = 2048  # the decode and shared-prefix rows
    draft_predict: int = 256
    draft_max: int = 4  # corral: draft_num_predict; llama-server: --spec-draft-n-max
    draft_p_min: float = 0.6  # corral's runner stops a draft below this top probability (corral/runner/draft.py)
    copy_predict: int = 300
    ngram_max: int = 8  # corral: ngram_draft; llama-server: --spec-ngram-simple-size-m
    ngram_match: int = 3  # corral's NGRAM (corral/runner/slots.py); llama-server: --spec-ngram-simple-size-n
    # one 256-token F16 decode lasts several seconds; two per round and system, alternating
    decode_samples: int = 2
    clients: int = 8
    system_words: int = 760  # about 1,000 tokens with smollm2's vocabulary
    answer_predict: int = 8
    shared_samples: int = 2  # each with a fresh system prompt
    prompt_cache_mb: int = 256
    kv_ctx: int = 4096
    kv_types: tuple[str, ...] = ("f16", "q8_0", "q4_0")
    kv_slots: tuple[int, int] = (1, 4)
    max_foreign_share: float = 0.05
    max_redo: int = 3
    quiet_wait: float = 300.0

    @classmethod
    def from_meta(cls, saved: Mapping[str, Any] | None) -> SpecConfig | None:
        """The settings a run saved in its results (JSON turned the tuples into lists)."""
        if not saved:
            return None
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
        return cls(**fields)

    def quick(self) -> SpecConfig:
        """A smoke run: every row end to end, few tokens, short prompts, no waiting for a quiet machine."""
        return replace(self, draft_predict=32, copy_predict=48, decode_samples=1, system_words=120,
                       shared_samples=1, max_redo=0, quiet_wait=0.0)


def together(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released at the same moment; the first error is raised."""
    barrier = threading.Barrier(len(calls))
    out: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            out[i] = calls[i]()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return [x for x in out if x is not None]


def spec_decode(res: Results, group: str, systems: Sequence[tuple[str, Decoder]], prompt: str, n: int,
                samples: int) -> None:
    """One stream at a time, the systems alternating (A, B, C, D, A, B, ...)."""
    for _ in range(samples):
        for name, decode in systems:
            d = decode(prompt, n)
            res.add(group, "rate", name, d.rate)
            res.add(group, "tokens", name, d.tokens)
            if d.drafted is not None and d.accepted is not None:
                res.add(group, "drafted", name, d.drafted)
                res.add(group, "accepted", name, d.accepted)
                if d.drafted:
                    res.add(group, "acceptance", name, d.accepted / d.drafted)


def system_prompt(words: int, seed: int) -> str:
    """A long system prompt that no earlier request has seen (a fresh tag at its start)."""
    return (f"Session {uuid.uuid4().hex[:12]}. You are a careful assistant. Answer questions about these notes "
            "briefly.\n\nNotes: " + filler(words, seed))


def shared_prefix(res: Results, systems: Sequence[tuple[str, Asker]], cfg: SpecConfig, rnd: int) -> None:
    """Client 1 alone, then clients 2..N together, all with one system prompt new to every server."""
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(cfg.clients)]
    for s in range(cfg.shared_samples):
        system = system_prompt(cfg.system_words, 1000 * rnd + s)
        for name, ask in systems:
            first = ask(questions[0], cfg.answer_predict, system)
            rest = together([functools.partial(ask, q, cfg.answer_predict, system) for q in questions[1:]])
            res.add("shared", "first_prefill_ms", name, first.prefill * 1e3)
            res.add("shared", "first_ttfb_ms", name, first.ttfb * 1e3)
            res.add("shared", "prompt_tokens", name, first.prompt_tokens)
            for ft in rest:
                res.add("shared", "rest_prefill_ms", name, ft.prefill * 1e3)
                res.add("shared", "rest_ttfb_ms", name, ft.ttfb * 1e3)
            if first.prefill > 0:
                res.add("shared", "rest_pct", name, 100 * statistics.median(ft.prefill for ft in rest) / first.prefill)


def kv_memory(res: Results, probes: Mapping[str, RssProbe], cfg: SpecConfig) -> None:
    """For every cache type, each system's cache-holding process at the two slot counts, one after the
    other; per slot = the difference over the added slots (weights, code and buffers that do not grow
    with the slots cancel)."""
    lo, hi = cfg.kv_slots
    per_slot: dict[tuple[str, str], float] = {}
    for kv in cfg.kv_types:
        for name, probe in probes.items():
            rss = {slots: probe(kv, slots) for slots in (lo, hi)}
            for slots, mb in rss.items():
                res.add("kv", f"rss{slots}_{kv}", name, mb)
            per_slot[name, kv] = (rss[hi] - rss[lo]) / (hi - lo)
            res.add("kv", f"slot_{kv}", name, per_slot[name, kv])
    for (name, kv), mb in per_slot.items():
        base = per_slot.get((name, "f16"))
        if kv != "f16" and base:
            res.add("kv", f"ratio_{kv}", name, mb / base)
