"""Prompts shared across a runner's slots and its host cache: copy a prefix another slot or the cache holds
rather than evaluate it again, wait for a prefix another request is still evaluating, keep what a slot
loses in the host cache, and write that cache to disk when the runner ends.

A mixin of :class:`corral.runner.loop.Runner`, which owns the engine, the slots and the cache; split out
because this is one concept of the loop's, not its decode step.
"""

from __future__ import annotations

import threading
import time

from corral.runner.draft import Drafter
from corral.runner.engine import Engine
from corral.runner.promptcache import MIN_TOKENS, PromptCache
from corral.runner.slots import MIN_REUSE, Request, Slot, common_prefix

SAVE_SECONDS = 8  # the longest a runner spends writing its prompt cache to disk when its channel closes

# A request waits for another's prefill of a prefix they share when that saves it at least this many tokens
# of its own prefill (then copies the prefix): below that, evaluating it alongside costs less than the wait.
DEFER_MIN = 64


class PromptSharing:
    engine: Engine
    slots: list[Slot]
    cache: PromptCache | None
    drafter: Drafter | None
    copies: int  # prompt prefixes copied from another slot instead of evaluated again
    restores: int  # prompt prefixes restored from the host cache
    _exited: threading.Event
    # sequences whose cache a queued copy or shift will still change (llama.cpp applies those at the next
    # decode, while reading or writing a sequence's state touches the buffers now): not saved nor restored
    _unsettled: set[int]

    def _follows_a_prefill(self, r: Request) -> bool:
        ready = max(common_prefix(s.cached, r.prompt) for s in self.slots)
        if self.cache is not None:
            ready = max(ready, self.cache.best(r.prompt)[1])
        for s in self.slots:
            lead = s.request
            if lead is not None and lead.pending:
                shared = min(common_prefix(lead.prompt, r.prompt), len(r.prompt) - 1)
                if shared > lead.n_past and shared - ready >= DEFER_MIN:
                    return True
        return False

    def _import_prefix(self, slot: Slot, prompt: list[int], limit: int) -> bool:
        """When another slot (idle or busy) or the host cache holds a longer prefix of ``prompt`` than this
        slot does, copy it here rather than evaluate it again. True when the slot's cache was replaced."""
        eng = self.engine
        own = min(common_prefix(slot.cached, prompt), limit)
        if slot.seq in self._unsettled:
            return False
        donor, n_slot = None, own
        for other in self.slots:
            if other is not slot:
                n = min(common_prefix(other.cached, prompt), limit)
                if n > n_slot:
                    donor, n_slot = other, n
        entry, n_host = self.cache.best(prompt) if self.cache is not None else (None, 0)
        n_host = min(n_host, limit)
        if max(n_slot, n_host) < own + MIN_REUSE:
            return False
        self._keep_in_cache(slot)  # what this slot held, before it is overwritten
        if donor is not None and n_slot >= n_host:
            eng.seq_move(donor.seq, slot.seq)  # the whole sequence; _place then cuts it to the shared prefix
            self._unsettled |= {donor.seq, slot.seq}
            if self.drafter is not None:
                self.drafter.move(donor.seq, slot.seq)
            slot.cached = list(donor.cached)
            self.copies += 1
            return True
        assert self.cache is not None and entry is not None
        if slot.seq in self._unsettled:
            return False  # a queued copy would overwrite what is restored now
        data = self.cache.load(entry)
        if data is None:
            return False
        if not eng.seq_restore(slot.seq, data):
            self.cache.drop(entry)  # it will not fit next time either
            slot.cached = []
            return True
        slot.cached = list(entry.tokens)
        self.restores += 1
        return True

    def _keep_in_cache(self, slot: Slot) -> None:
        """Save a slot's cache to the host cache unless it is short, held there or in another slot, larger
        than the cache, or about to change (see ``_unsettled``)."""
        tokens = slot.cached
        if (self.cache is None or len(tokens) < MIN_TOKENS or slot.seq in self._unsettled
                or self.cache.covers(tokens)):
            return
        if any(o is not slot and o.cached[:len(tokens)] == tokens for o in self.slots):
            return
        if self.engine.seq_state_size(slot.seq) > self.cache.cap:
            return  # copying it only to be refused would stall every stream
        self.cache.put(list(tokens), self.engine.seq_state(slot.seq))

    def _save_and_exit(self, deadline: float) -> None:
        """The channel closed: write the host cache and what every slot holds to disk, then stop."""
        assert self.cache is not None
        try:
            for s in self.slots:
                if time.monotonic() < deadline:
                    self._keep_in_cache(s)
            self.cache.save([], deadline=deadline)
        finally:
            self._exited.set()
        threading.Event().wait()  # the reader thread ends the process
