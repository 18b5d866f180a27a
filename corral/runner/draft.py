"""Speculative decoding with a draft model: a smaller model of the same vocabulary, loaded beside the target in
the same runner, guesses the next few tokens of every generating slot; the target checks them all in its next
decode (see ``Runner._after_draft``).

The draft keeps a cache per slot, as the target does, and remembers which tokens it holds: before each round it
evaluates what it lacks (after a request joins, the whole prompt; later, the one or two tokens the target
settled since), cut back where the target rejected its guesses. Every slot's work goes into one decode per
guessed position, so drafting for eight slots costs about what drafting for one does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corral.runner.engine import Engine
from corral.runner.slots import common_prefix

# A guess the draft itself gives less than this probability is seldom right: drafting stops there (llama.cpp's
# speculative example stops at 0.75; with a draft from the same family acceptance at 0.6 was as good, and longer)
P_MIN = 0.6
VOCAB_SLACK = 128  # vocabularies may differ by this many tokens at the end (padding), as llama.cpp allows


class DraftMismatch(Exception):
    """The draft model's vocabulary is not the model's: its guesses would mean other tokens."""


def check_vocab(draft: Engine, target: Engine) -> None:
    if abs(draft.n_vocab - target.n_vocab) > VOCAB_SLACK:
        raise DraftMismatch(f"the draft model's vocabulary has {draft.n_vocab} tokens, the model's {target.n_vocab}")
    if draft.bos != target.bos or draft.add_bos != target.add_bos:
        raise DraftMismatch("the draft model's beginning-of-text token differs from the model's")
    for token in range(0, min(draft.n_vocab, target.n_vocab), 7):  # a sample is enough to tell tokenizers apart
        if draft.piece(token) != target.piece(token) or draft.is_eog(token) != target.is_eog(token):
            raise DraftMismatch(f"the draft model's token {token} is not the model's")


class Drafter:
    def __init__(self, engine: Engine, target: Engine) -> None:
        check_vocab(engine, target)
        self.eng = engine
        self.limit_vocab = target.n_vocab  # a guess outside the target's vocabulary would abort its decode
        self.cached: list[list[int]] = [[] for _ in range(engine.n_slots)]

    def move(self, src: int, dst: int) -> None:
        """Follow the target's copy of a sequence into another slot."""
        self.eng.seq_move(src, dst)
        self.cached[dst] = list(self.cached[src])

    def propose(self, work: list[tuple[int, list[int], int]]) -> list[list[int]]:
        """Guesses for each (sequence, tokens the target will hold before the guesses, at most how many)."""
        eng = self.eng
        out: list[list[int]] = [[] for _ in work]
        todo: list[tuple[int, int, list[int]]] = []  # (index in work, sequence, tokens to evaluate)
        for i, (seq, context, limit) in enumerate(work):
            if limit <= 0 or not context:
                continue
            have = self.cached[seq]
            keep = min(common_prefix(have, context), len(context) - 1)
            if keep < len(have) and not eng.seq_truncate(seq, keep):
                keep = 0
            if keep and eng.n_swa and eng.seq_pos_min(seq) > max(0, keep - eng.n_swa):
                keep = 0
            if keep == 0:
                eng.seq_clear(seq)
            del have[keep:]
            todo.append((i, seq, context[keep:]))
        going = self._catch_up(todo, out)
        # then one position a round for every sequence still sure enough of itself
        for _ in range(1, max((work[i][2] for i in going), default=0)):
            going = [i for i in going if len(out[i]) < work[i][2]]
            if not going:
                break
            eng.batch_clear()
            rows = []
            for i in going:
                seq = work[i][0]
                rows.append(eng.batch_add_seq([out[i][-1]], len(self.cached[seq]), seq, True))
                self.cached[seq].append(out[i][-1])
            if eng.decode() != 0:
                break
            going = [i for i, row in zip(going, rows, strict=True) if self._guess(row, out[i])]
        return out

    def _catch_up(self, todo: list[tuple[int, int, list[int]]], out: list[list[int]]) -> list[int]:
        """Evaluate what each sequence lacks, in as few decodes as the batch allows; the first guess of each
        comes from its last token's row, read right after the decode that held it."""
        eng = self.eng
        going: list[int] = []
        while todo:
            eng.batch_clear()
            budget = eng.n_batch
            rest: list[tuple[int, int, list[int]]] = []
            ends: list[tuple[int, int]] = []
            for i, seq, tokens in todo:
                chunk = tokens[:budget]
                if not chunk:
                    rest.append((i, seq, tokens))
                    continue
                last = len(chunk) == len(tokens)
                row = eng.batch_add_seq(chunk, len(self.cached[seq]), seq, last)
                self.cached[seq].extend(chunk)
                budget -= len(chunk)
                if last:
                    ends.append((i, row))
                else:
                    rest.append((i, seq, tokens[len(chunk):]))
            if eng.decode() != 0:
                for _i, seq, _tokens in todo:  # nothing to guess with; start these sequences afresh next time
                    eng.seq_clear(seq)
                    self.cached[seq] = []
                return going
            going += [i for i, row in ends if self._guess(row, out[i])]
            todo = rest
        return going

    def _guess(self, row: int, into: list[int]) -> bool:
        """Append the draft's best token at this row when it is sure enough of it; True if appended."""
        logits: Any = self.eng.logits(row)
        token = int(logits.argmax())
        top = float(logits[token])
        p = 1.0 / float(np.exp(logits - top).sum())
        if p < P_MIN or token >= self.limit_vocab or self.eng.is_eog(token):
            return False
        into.append(token)
        return True
