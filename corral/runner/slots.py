"""Slot bookkeeping for continuous batching, independent of llama.cpp so it can be tested with a fake.

A slot is one llama.cpp sequence id. It remembers the tokens its KV cache holds, so a follow-up request
sharing a prefix (the next turn of a chat) evaluates only what is new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from corral.runner.text import StopMatcher, Utf8Assembler


@dataclass
class Request:
    """One generation request as the runner sees it."""

    id: str
    prompt: list[int]
    sampling: Any  # engine.Sampling; Any keeps this module free of llama_cpp
    num_predict: int = -1
    stop: list[str] = field(default_factory=list)
    # progress
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet in the cache
    n_past: int = 0  # tokens of this sequence in the cache
    n_cached: int = 0  # prompt tokens reused from an earlier request
    generated: list[int] = field(default_factory=list)
    next_token: int | None = None  # sampled, not yet decoded
    sampler: Any = None
    text: Utf8Assembler = field(default_factory=Utf8Assembler)
    stops: StopMatcher | None = None
    t_submit: float = field(default_factory=time.perf_counter)
    t_start: float = 0.0
    t_placed: float = 0.0  # when it got a slot (the wait before is the server's queue-wait metric)
    t_first: float = 0.0
    cancel_at: int | None = None  # len(generated) when the cancel arrived
    logits_index: int = -1  # row of this request's output in the current batch
    report_gaps: bool = False  # debugging aid: record the top-2 logit gap at every sampled token
    gaps: list[float] = field(default_factory=list)
    stream: bool = True  # False: text is held and sent once, in the ``done`` message
    logprobs: bool = False
    top_logprobs: int = 0
    shift: bool = False  # at a full context, drop half of what follows num_keep and go on (else stop: length)
    num_keep: int = 4
    shifts: int = 0  # context shifts so far
    # n-gram speculation (prompt lookup): up to ``draft_max`` tokens a step, taken from what followed the last
    # NGRAM tokens where they occurred before in the prompt or the output; checked by the model in one decode
    draft_max: int = 0
    draft: list[int] = field(default_factory=list)  # this step's drafted tokens, after next_token
    proposal: list[int] | None = None  # this step's guesses of a draft model (None: n-gram lookup drafts)
    media: Any = None  # vision.MediaPrompt: where the prompt's images are (their spans hold negative tokens)
    drafted: int = 0
    accepted: int = 0
    draft_room: int = 0  # how many drafted tokens the context and num_predict leave room for (set by the loop)
    _history: list[int] = field(default_factory=list)
    _follows: dict[tuple[int, ...], int] | None = None  # n-gram -> where the token after its last occurrence is
    unshiftable: bool = False  # stopped at a full context its cache could not shift
    lp_pending: list[dict[str, Any]] = field(default_factory=list)  # not yet sent with any text
    held: list[str] = field(default_factory=list)
    emitted: bool = False  # some text of this (streamed) request has gone out

    def __post_init__(self) -> None:
        self.stops = StopMatcher(self.stop) if any(self.stop) else None


@dataclass
class Slot:
    seq: int
    cached: list[int] = field(default_factory=list)  # tokens in this sequence's cache, in order
    request: Request | None = None
    last_used: float = 0.0

    @property
    def free(self) -> bool:
        return self.request is None


NGRAM = 3  # tokens matched to find a draft (llama.cpp's prompt-lookup decoding uses 3 or so as well)


def propose(r: Request, limit: int) -> list[int]:
    """Up to ``limit`` tokens that followed the request's last NGRAM tokens where they last occurred in its
    prompt or output. The index of n-grams grows with the output, so a step costs O(1) amortised."""
    if limit <= 0:
        return []
    if r._follows is None:
        r._follows = {}
        r._history = []
        _remember(r, r.prompt)
    _remember(r, r.generated[len(r._history) - len(r.prompt):])
    hist = r._history
    start = r._follows.get(tuple(hist[-NGRAM:]))
    if start is None:
        return []
    draft = hist[start:start + limit]
    return draft[:next((i for i, t in enumerate(draft) if t < 0), len(draft))]  # never an image's stand-in


def _remember(r: Request, tokens: list[int]) -> None:
    hist, follows = r._history, r._follows
    assert follows is not None
    for token in tokens:
        p = len(hist)
        if p >= NGRAM:
            follows[tuple(hist[p - NGRAM:p])] = p
        hist.append(token)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the shared prefix. Every submit compares its prompt with every slot's cache (thousands of
    tokens each), so this bisects with slice comparisons, which run in C, instead of a Python loop."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


# A cached prefix shorter than this saves less prefill than moving a sequence to a neighbouring slot costs.
MIN_REUSE = 16


def _runs(busy: set[int]) -> int:
    """How many contiguous runs of sequence ids ``busy`` forms."""
    return sum(1 for s in busy if s - 1 not in busy)


def pick_slot(slots: list[Slot], prompt: list[int], *, contiguous: bool = True) -> Slot | None:
    """The free slot for ``prompt``.

    A slot whose cache shares a worthwhile prefix with the prompt wins (the longest one): that prefill is
    skipped. Otherwise, with one KV cache per slot, llama.cpp can put several sequences in one ubatch only
    when their ids are consecutive (``split_equal`` with ``sequential``): busy slots 0 and 5 cost two graph
    computes per step, about halving throughput. So the slot that keeps the busy ids in the fewest runs wins,
    then the least recently used (its cache is the least likely to be wanted again).
    """
    busy = {s.seq for s in slots if not s.free}
    best: Slot | None = None
    best_key: tuple[int, int, float] = (-1, 0, 0.0)
    for slot in slots:
        if not slot.free:
            continue
        reuse = common_prefix(slot.cached, prompt)
        if reuse < MIN_REUSE:
            reuse = 0
        runs = _runs(busy | {slot.seq}) if contiguous else 0
        key = (reuse, -runs, -slot.last_used)
        if key > best_key:
            best, best_key = slot, key
    return best


def compaction(slots: list[Slot]) -> tuple[Slot, Slot] | None:
    """A move that joins the busy slots into fewer runs: the highest busy slot into the lowest free slot
    between busy ones, or None when the busy slots are already consecutive."""
    busy = sorted(s.seq for s in slots if not s.free)
    if len(busy) < 2 or busy[-1] - busy[0] + 1 == len(busy):
        return None
    by_seq = {s.seq: s for s in slots}
    hole = next(seq for seq in range(busy[0], busy[-1]) if by_seq[seq].free)
    return by_seq[busy[-1]], by_seq[hole]


def plan_batch(active: list[Request], budget: int) -> list[tuple[Request, list[int], bool]]:
    """What each active request contributes to the next decode: (request, tokens, wants_logits).

    Generating requests go first with their one sampled token, so running streams never stall behind a
    long prompt; prompt prefill takes the rest of the batch, in arrival order, chunked to fit.
    """
    plan: list[tuple[Request, list[int], bool]] = []
    for r in active:
        if r.next_token is not None and budget > 0:
            plan.append((r, [r.next_token], True))
            budget -= 1
    # drafts take what room generation left, before any prefill: speculation pays most when few streams run
    # (at 8 busy slots a step is already wide, and drafts then only use what the batch has spare)
    # but never all of it while a prompt waits to be evaluated: half the room stays for prefill then
    waiting = sum(len(r.pending) for r in active if r.next_token is None and r.pending)
    reserve = min(waiting, budget // 2)
    for i, (r, tokens, _) in enumerate(plan):
        limit = min(r.draft_max, budget - reserve, r.draft_room)
        r.draft = [] if not r.draft_max or limit <= 0 else (
            r.proposal[:limit] if r.proposal is not None else propose(r, limit))
        r.proposal = None
        if r.draft:
            plan[i] = (r, tokens + r.draft, True)
            budget -= len(r.draft)
    for r in sorted(active, key=lambda r: r.t_submit):
        if r.next_token is None and r.pending and budget > 0 and r.pending[0] >= 0:
            chunk = r.pending[:budget]
            if r.media is not None:  # text only, up to the next image (the loop evaluates images apart)
                chunk = chunk[:next((i for i, t in enumerate(chunk) if t < 0), len(chunk))]
            plan.append((r, chunk, len(chunk) == len(r.pending)))
            budget -= len(chunk)
    return plan
