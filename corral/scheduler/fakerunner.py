"""A runner process without a model, for tests: the real loop and channel over a scripted engine.

``CORRAL_FAKE_RUNNER=1`` in the server's environment starts ``python -m corral.scheduler.fakerunner`` where
``corral.runner`` would run (see :meth:`RunnerSpec.argv`). Everything but the engine is the real thing, the
scheduler, the handle, the frames on the channel and the batching loop, so routes, translations, streaming
and error mapping run in seconds on any store. What the fake "model" does:

- a token is one byte of UTF-8 text (id = byte + 3; 1 is BOS, 2 ends generation), so counts are byte counts;
- it answers with the text after the last ``say:`` in its prompt, up to the end of that line or the next
  ``<`` (where chat templates close a turn), or ``ok`` when the prompt has no ``say:``;
- ``stall:`` instead of ``say:`` answers the same way, then never finishes: the loop blocks (every request
  of this runner with it) until the runner is killed or its channel closes, for tests of crashes and
  disconnects;
- an embedding is 8 numbers counting the input's bytes by their value modulo 8, plus one.

Loading takes no time and no memory, and the ``--model`` file is not read.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from typing import Any

from corral.runner.loop import serve

BOS, EOG, OFFSET = 1, 2, 3
N_EMBD = 8
_DEFAULT_ANSWER = "ok"


class _Sampler:
    """One request's answer, fixed when its prompt has been decoded."""

    __slots__ = ("script", "stall")

    def __init__(self) -> None:
        self.script: list[int] | None = None
        self.stall = False


def answer_for(prompt: str) -> tuple[str, bool]:
    """What the fake model replies to a prompt, and whether it stalls after that."""
    say, stall = prompt.rfind("say:"), prompt.rfind("stall:")
    if say < 0 and stall < 0:
        return _DEFAULT_ANSWER, False
    text = prompt[stall + len("stall:"):] if stall > say else prompt[say + len("say:"):]
    for end in ("\n", "<"):
        text = text.split(end, 1)[0]
    return text.strip(), stall > say


class FakeEngine:
    """The methods and attributes of :class:`corral.runner.engine.Engine` that the loop uses."""

    n_swa = 0
    bos = BOS
    n_threads = 0  # fewer than the cores: the loop's first-text pause stays off
    n_ctx_train = 8192
    n_vocab = 256 + OFFSET

    def __init__(self, n_ctx: int, n_parallel: int, n_batch: int) -> None:
        self.n_slots = max(1, n_parallel)
        self.n_ctx_slot = n_ctx
        self.n_batch = n_batch
        self.sequential_batches = self.n_slots > 1
        self._cache: dict[int, list[int]] = {}  # each sequence's tokens, as the KV cache would hold them
        self._rows: list[int] = []  # the sequence of each row of the batch being built

    # --- text ---------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return [b + OFFSET for b in text.encode("utf-8", "surrogatepass")]

    def piece(self, token: int) -> bytes:
        return bytes([token - OFFSET]) if token >= OFFSET else b""

    def detokenize(self, tokens: list[int]) -> str:
        for t in tokens:
            if not (isinstance(t, int) and 0 <= t < self.n_vocab):
                raise ValueError(f"invalid token {t!r}: the vocabulary has {self.n_vocab} tokens")
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return token == EOG

    # --- sampling -----------------------------------------------------------------------------------

    def new_sampler(self, sampling: Any) -> _Sampler:
        return _Sampler()

    @staticmethod
    def can_draft(sampler: _Sampler) -> bool:
        return False  # a scripted answer, not an argmax: nothing to speculate on

    def free_sampler(self, sampler: _Sampler) -> None:
        pass

    def sample_outputs(self, picks: list[tuple[_Sampler, int]]) -> list[int]:
        out = []
        for sampler, row in picks:
            if sampler.script is None:  # the first token: the sequence holds exactly the prompt
                text, sampler.stall = answer_for(self.detokenize(self._cache[self._rows[row]]))
                sampler.script = self.tokenize(text)
            if not sampler.script and sampler.stall:
                threading.Event().wait()  # until the process ends
            out.append(sampler.script.pop(0) if sampler.script else EOG)
        return out

    def top2_gap(self, row: int) -> float:
        return 1.0

    def logprobs(self, row: int, token: int, top: int) -> dict[str, Any]:
        raw = self.piece(token)
        entry: dict[str, Any] = {"token": raw.decode("utf-8", errors="replace"), "logprob": 0.0, "bytes": list(raw)}
        if top > 0:
            entry["top_logprobs"] = [dict(entry)]
        return entry

    # --- the batch and the cache ---------------------------------------------------------------------

    def batch_clear(self) -> None:
        self._rows = []

    def batch_add_seq(self, tokens: list[int], pos: int, seq: int, last_logits: bool, *,
                      all_logits: bool = False) -> int:
        cache = self._cache.setdefault(seq, [])
        del cache[pos:]
        cache.extend(tokens)
        self._rows += [seq] * len(tokens)
        return len(self._rows) - 1

    def decode(self) -> int:
        return 0

    def seq_truncate(self, seq: int, keep: int) -> bool:
        del self._cache.setdefault(seq, [])[keep:]
        return True

    def seq_clear(self, seq: int) -> None:
        self._cache[seq] = []

    def seq_remove(self, seq: int, p0: int, p1: int) -> None:
        cache = self._cache.setdefault(seq, [])
        del cache[p0:None if p1 < 0 else p1]

    def can_shift(self) -> bool:
        return False  # a scripted answer has nothing to shift: a full context stops it

    def seq_move(self, src: int, dst: int) -> None:
        self._cache[dst] = list(self._cache.get(src, []))

    def seq_pos_min(self, seq: int) -> int:
        return 0

    def embed_pass(self, inputs: list[list[int]]) -> list[list[float]]:
        vectors = []
        for tokens in inputs:
            vector = [1.0] * N_EMBD
            for t in tokens:
                vector[t % N_EMBD] += 1.0
            vectors.append(vector)
        return vectors


def main(argv: list[str] | None = None) -> int:
    """``corral.runner``'s command line and handshake, with :class:`FakeEngine` loaded instantly."""
    p = argparse.ArgumentParser(prog="corral-fake-runner")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--ctx-size", type=int, default=4096)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=512)
    args, _ = p.parse_known_args(argv)  # threads, mmap, adapters, embedding: nothing to do without a model
    engine = FakeEngine(args.ctx_size, args.parallel, args.batch_size)
    return serve(engine, socket.socket(fileno=args.fd))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
