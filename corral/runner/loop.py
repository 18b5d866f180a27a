"""The runner's decode loop: every slot's work goes into one ``llama_decode`` per step.

Threads: a reader thread takes frames off the channel (answering tokenize/detokenize itself, since those only
read the vocabulary) and hands submits and cancels to the loop through a queue; the loop thread owns the
context, the batch and the samplers. A request joins between decode steps and leaves the moment it finishes.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections import deque
from typing import Any

from corral.runner import protocol
from corral.runner.draft import Drafter
from corral.runner.embed import embed
from corral.runner.engine import Engine, Sampling
from corral.runner.promptcache import MIN_TOKENS, PromptCache
from corral.runner.sharing import SAVE_SECONDS, PromptSharing
from corral.runner.slots import Request, Slot, common_prefix, compaction, pick_slot, plan_batch
from corral.runner.vision import ImageError, Vision

MAX_DRAFT = 16  # drafted tokens a step at most: more are seldom all right, and each costs a row of logits

# After a step that sent some request its first text, when the decode threads take every core: the server and
# then the client each need a core for about a millisecond to pass that text on, and a process woken while
# both cores decode often waits for the scheduler's next tick (4 ms at HZ=250). Pausing the next decode this
# long cut the median first-token overhead from 4.3-6.3 to 3.7 ms (p75 7.7-8.3 -> 4.1) on 2 cores; it delays
# each streamed request's second token by as much, once.
FIRST_TEXT_PAUSE = 0.002

class Runner(PromptSharing):
    _loop_thread: int | None = None

    def __init__(self, engine: Engine, sock: socket.socket, cache: PromptCache | None = None,
                 drafter: Drafter | None = None, draft_max: int = 0, vision: Vision | None = None) -> None:
        self.engine = engine
        self.vision = vision  # the projector, for prompts with images
        self.drafter = drafter  # a draft model's guesses, for every request (draft_num_predict at a time)
        self.draft_max = max(0, min(MAX_DRAFT, draft_max)) if drafter is not None else 0
        self.cache = cache  # prompts kept in host memory (and on disk) when their slot is taken
        self.sock = sock
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.slots = [Slot(seq=i) for i in range(engine.n_slots)]
        self.waiting: deque[Request] = deque()
        self.requests: dict[str, Request] = {}
        self._send_lock = threading.Lock()
        self._outbox: list[bytes] | None = None  # frames held back until the end of a decode step
        self.decode_calls = 0
        self._first_out = False  # this step sent some request its first text
        self.first_text_pause = FIRST_TEXT_PAUSE if engine.n_threads >= (os.cpu_count() or 1) else 0.0
        self.moves = 0  # sequences copied to another slot to keep the busy ones consecutive
        self.shifts = 0  # context shifts during generation
        self.copies = 0
        self.restores = 0
        self._exited = threading.Event()
        self._closed = False  # the channel broke: writes are dropped
        self._unsettled: set[int] = set()  # (what these are for: corral.runner.sharing)

    # --- channel ------------------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        try:
            frame = protocol.encode(message)
        except protocol.FrameTooLarge as exc:  # the request fails; the channel (every request) lives
            frame = protocol.encode({"kind": "error", "id": message.get("id"), "code": "too_large",
                                     "error": f"reply too large: {exc}"})
        if self._outbox is not None and threading.get_ident() == self._loop_thread:
            self._outbox.append(frame)
            return
        self._write(frame)

    def _write(self, data: bytes) -> None:
        if self._closed:
            return  # the server is gone: nothing to tell it (the loop goes on, to save the prompt cache)
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError:
            self._closed = True

    def _flush(self) -> None:
        """One write for everything a step produced: with 8 streams that is one syscall, not 8, and the
        server reads the frames in one wake-up."""
        out, self._outbox = self._outbox, None
        if out:
            self._write(b"".join(out))

    def reader(self) -> None:
        """Runs until the channel closes; then the whole process exits, so no runner outlives its server."""
        try:
            while True:
                msg = protocol.recv_blocking(self.sock)
                kind = msg.get("kind")
                if kind in ("tokenize", "detokenize"):
                    self._answer_text(msg)
                elif kind == "submit":
                    # Ollama's runner clocks a prompt from the moment its request arrives (tokenizing
                    # it, and any wait for a slot, count as prompt evaluation); so does this one.
                    msg["t_arrived"] = time.perf_counter()
                    self.inbox.put(msg)
                elif kind == "cancel":
                    r = self.requests.get(msg["id"])
                    if r is not None and r.cancel_at is None:
                        r.cancel_at = len(r.generated)
                    self.inbox.put(msg)
                elif kind == "stats":
                    self.send({"kind": "result", "id": msg["id"], "decode_calls": self.decode_calls,
                               "moves": self.moves, "copies": self.copies, "restores": self.restores,
                               "cached_prompts": len(self.cache.entries) if self.cache else 0,
                               "n_batch": self.engine.n_batch,
                               "slots": [len(s.cached) for s in self.slots]})
                else:
                    self.inbox.put(msg)
        except (protocol.ChannelClosed, OSError):
            pass
        self._closed = True
        if self.cache is not None and self.cache.directory is not None:
            # the loop thread owns the context: it writes the cache to disk, then this thread ends the process
            self.inbox.put({"kind": "exit", "deadline": time.monotonic() + SAVE_SECONDS - 0.5})
            self._exited.wait(SAVE_SECONDS)
        os._exit(0)

    def _answer_text(self, msg: dict[str, Any]) -> None:
        """Tokenize or detokenize on the reader thread; bad input fails that call only."""
        try:
            if msg["kind"] == "tokenize":
                reply: dict[str, Any] = {"tokens": self.engine.tokenize(
                    msg["text"], add_special=msg.get("add_special", True),
                    parse_special=msg.get("parse_special", True))}
            else:
                reply = {"text": self.engine.detokenize(msg["tokens"])}
        except Exception as exc:
            self.send({"kind": "error", "id": msg.get("id"), "error": str(exc), "code": "bad_input"})
            return
        self.send({"kind": "result", "id": msg["id"], **reply})

    # --- requests -----------------------------------------------------------------------------------

    def _submit(self, msg: dict[str, Any]) -> None:
        rid = msg["id"]
        try:
            tokens = msg.get("tokens")
            media = None
            if msg.get("images"):
                if self.vision is None:
                    raise ImageError("this model does not support images")
                text = msg["prompt"] if tokens is None else self.engine.detokenize([int(t) for t in tokens])
                media = self.vision.tokenize(text, list(msg["images"]))
                prompt = media.tokens
                if prompt and prompt[-1] < 0:  # the last prompt token's logits start the reply: text, not image
                    prompt = prompt + self.engine.tokenize("\n", add_special=False)
            elif tokens is not None:
                prompt = [int(t) for t in tokens]
            else:
                prompt = self.engine.tokenize(msg.get("prompt", ""))
            if not prompt:
                prompt = [self.engine.bos]
            if len(prompt) >= self.engine.n_ctx_slot:
                self._release(media)
                # the server fits the prompt itself then (dropping old messages, cutting the middle)
                self.send({"kind": "error", "id": rid, "code": "prompt_too_long",
                           "error": f"the prompt ({len(prompt)} tokens) does not fit the context length "
                                    f"({self.engine.n_ctx_slot} tokens)"})
                return
            sampling = Sampling.from_wire(msg.get("sampling") or {})
            r = Request(id=rid, prompt=prompt, sampling=sampling, media=media,
                        num_predict=int(msg.get("num_predict", -1)), stop=list(msg.get("stop") or []),
                        report_gaps=bool(msg.get("report_gaps")), stream=bool(msg.get("stream", True)),
                        logprobs=bool(msg.get("logprobs")),
                        top_logprobs=max(0, min(20, int(msg.get("top_logprobs") or 0))),
                        shift=bool(msg.get("shift")), num_keep=int(msg.get("num_keep", 4)),
                        t_start=float(msg.get("t_arrived") or time.perf_counter()))
            r.sampler = self.engine.new_sampler(sampling)
            if self.draft_max:
                r.draft_max = self.draft_max
            elif self.engine.can_draft(r.sampler):
                r.draft_max = max(0, min(MAX_DRAFT, int(msg.get("ngram_draft") or 0)))
        except Exception as exc:  # bad input (a grammar llama.cpp refuses, ...) fails its own request only
            self._release(media)
            self.send({"kind": "error", "id": rid, "error": str(exc), "code": "bad_input"})
            return
        self.requests[rid] = r
        self.waiting.append(r)

    def _assign(self) -> None:
        """Move waiting requests into free slots, first come first served; except that a request whose
        prompt starts with what a placed request is still evaluating waits for that, then copies it (eight
        clients with one long system prompt evaluate it once, not eight times side by side)."""
        deferred: list[Request] = []
        while self.waiting:
            r = self.waiting.popleft()
            if self._follows_a_prefill(r):
                deferred.append(r)
                continue
            slot = pick_slot(self.slots, r.prompt, contiguous=self.engine.sequential_batches)
            if slot is None:
                self.waiting.appendleft(r)
                break
            self._place(slot, r)
        self.waiting.extendleft(reversed(deferred))

    def _place(self, slot: Slot, r: Request) -> None:
        eng = self.engine
        limit = len(r.prompt) - 1  # re-evaluate ≥1 token for logits
        imported = self._import_prefix(slot, r.prompt, limit)
        keep = min(common_prefix(slot.cached, r.prompt), limit)
        while 0 < keep < len(r.prompt) and r.prompt[keep] < 0 and r.prompt[keep - 1] == r.prompt[keep]:
            keep -= 1  # never part of an image: all of it is evaluated again
        if not imported and len(slot.cached) - keep >= MIN_TOKENS:
            self._keep_in_cache(slot)
        if keep < len(slot.cached) and not eng.seq_truncate(slot.seq, keep):
            keep = 0
        if keep and eng.n_swa and eng.seq_pos_min(slot.seq) > max(0, keep - eng.n_swa):
            keep = 0  # a sliding-window cache no longer holds the window this position needs
        if keep == 0:
            eng.seq_clear(slot.seq)
        slot.cached = slot.cached[:keep]
        slot.request = r
        r.t_placed = time.perf_counter()
        r.n_past = keep
        r.n_cached = keep
        r.pending = r.prompt[keep:]

    def _emit(self, r: Request, text: str) -> None:
        """Streamed requests get their text as it comes; the others get it all in ``done``.

        Log-probabilities travel with the text their tokens completed (a token that ends inside a UTF-8
        character or a possible stop string waits for the next piece of text)."""
        if r.stream:
            if not r.emitted:
                r.emitted = self._first_out = True
            msg: dict[str, Any] = {"kind": "token", "id": r.id, "text": text}
            if r.lp_pending:
                msg["logprobs"], r.lp_pending = r.lp_pending, []
            self.send(msg)
        else:
            r.held.append(text)

    def _finish(self, slot: Slot, reason: str) -> None:
        r = slot.request
        assert r is not None
        tail = r.text.flush()
        if r.stops is not None:
            tail = r.stops.push(tail) if tail else ""
            tail += "" if r.stops.stopped else r.stops.flush()
        if tail:
            self._emit(r, tail)
        now = time.perf_counter()
        t_first = r.t_first or now
        msg: dict[str, Any] = {
            "kind": "done", "id": r.id, "done_reason": reason,
            "prompt_eval_count": len(r.prompt) - r.n_cached,
            "prompt_eval_duration": int((t_first - r.t_start) * 1e9),
            "eval_count": len(r.generated),
            "eval_duration": int((now - t_first) * 1e9),
            "queue_duration": int((max(r.t_placed, r.t_start) - r.t_start) * 1e9),
            "prompt_tokens": r.prompt, "tokens": r.generated,
        }
        if not r.stream:
            msg["text"] = "".join(r.held)
        if r.lp_pending:
            msg["logprobs"] = r.lp_pending
        if r.cancel_at is not None:
            msg["tokens_after_cancel"] = len(r.generated) - r.cancel_at
        if r.drafted:
            msg["drafted"], msg["draft_accepted"] = r.drafted, r.accepted
        if r.shifts:
            msg["context_shifts"] = r.shifts
        if r.unshiftable:
            msg["context_full"] = True
        if r.report_gaps:
            msg["gaps"] = r.gaps
        self.send(msg)
        self.engine.free_sampler(r.sampler)
        self._release(r.media)
        self.requests.pop(r.id, None)
        slot.request = None
        slot.last_used = now

    def _release(self, media: Any) -> None:
        if media is not None and self.vision is not None:
            self.vision.release(media)

    def _cancel(self, rid: str) -> None:
        for r in list(self.waiting):
            if r.id == rid:
                self.waiting.remove(r)
                self.engine.free_sampler(r.sampler)
                self._release(r.media)
                self.requests.pop(rid, None)
                self.send({"kind": "done", "id": rid, "done_reason": "canceled", "prompt_eval_count": 0,
                           "eval_count": 0, "tokens_after_cancel": 0, "tokens": [], "prompt_tokens": []})
                return
        for slot in self.slots:
            if slot.request is not None and slot.request.id == rid:
                self._finish(slot, "canceled")
                return

    # --- the loop -----------------------------------------------------------------------------------

    def _drain(self, block: bool) -> None:
        if not block and self.inbox.empty():
            return  # the common case mid-generation; cheaper than get_nowait's Empty exception
        try:
            msg = self.inbox.get(block=block)
        except queue.Empty:
            return
        while True:
            kind = msg.get("kind")
            if kind == "submit":
                self._submit(msg)
            elif kind == "cancel":
                self._cancel(msg["id"])
            elif kind == "embed":
                reply, decodes = embed(self.engine, msg)
                self.decode_calls += decodes
                self.send(reply)
            elif kind == "exit":
                self._save_and_exit(float(msg["deadline"]))
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                return

    def run(self) -> None:
        while True:
            self.step(block=True)

    def step(self, block: bool = False) -> bool:
        """One turn of the loop: take new messages, fill free slots, decode one batch. False when idle."""
        busy = any(not s.free for s in self.slots) or bool(self.waiting)
        self._drain(block=block and not busy)
        self._loop_thread = threading.get_ident()
        self._outbox = []
        self._first_out = False
        try:
            return self._step()
        finally:
            self._flush()
            if self._first_out and self.first_text_pause:
                time.sleep(self.first_text_pause)

    def _compact(self) -> None:
        """Keep the busy slots consecutive: with a cache per slot, llama.cpp splits a batch into one
        ubatch per run of consecutive sequence ids, and a second graph compute per step costs far more than
        copying one sequence's cache (about a step's time, once)."""
        while (move := compaction(self.slots)) is not None:
            src, dst = move
            self.engine.seq_move(src.seq, dst.seq)
            self._unsettled |= {src.seq, dst.seq}
            if self.drafter is not None:
                self.drafter.move(src.seq, dst.seq)
            self.moves += 1
            dst.cached, dst.request = list(src.cached), src.request
            src.request, src.last_used = None, time.perf_counter()  # src keeps its cache for later reuse

    def _step(self) -> bool:
        eng = self.engine
        self._assign()
        if eng.sequential_batches:
            self._compact()
        active = [s.request for s in self.slots if s.request is not None]
        if not active:
            return False
        by_request = {id(s.request): s for s in self.slots if s.request is not None}
        for r in active:
            if r.media is not None and r.pending and r.pending[0] < 0 and r.next_token is None:
                self._evaluate_image(by_request[id(r)], r)
        if any(s.request is None for s in by_request.values()):  # an image failed: its request is gone
            active = [s.request for s in self.slots if s.request is not None]
            by_request = {id(s.request): s for s in self.slots if s.request is not None}
            if not active:
                return True
        for r in active:
            if r.draft_max:
                room = eng.n_ctx_slot - 2 - r.n_past
                if r.num_predict >= 0:
                    room = min(room, r.num_predict - len(r.generated) - 1)
                r.draft_room = max(0, room)
        if self.drafter is not None:
            guessing = [r for r in active if r.draft_max and r.next_token is not None and r.draft_room
                        and r.media is None]  # the draft model cannot see images
            work = [(by_request[id(r)].seq, [*by_request[id(r)].cached, r.next_token or 0],
                     min(r.draft_max, r.draft_room)) for r in guessing]
            for r, guesses in zip(guessing, self.drafter.propose(work), strict=True):
                r.proposal = guesses
        # in sequence order: llama.cpp takes consecutive ids into one ubatch only in increasing order
        plan = sorted(plan_batch(active, eng.n_batch), key=lambda p: by_request[id(p[0])].seq)
        eng.batch_clear()
        for r, tokens, wants_logits in plan:
            idx = eng.batch_add_seq(tokens, r.n_past, by_request[id(r)].seq, wants_logits,
                                    all_logits=bool(r.draft))
            r.logits_index = idx if wants_logits else -1
        ret = eng.decode()
        self.decode_calls += 1
        if ret != 0:
            for r, _tokens, _ in plan:
                slot = by_request[id(r)]
                self.send({"kind": "error", "id": r.id, "error": f"llama_decode failed ({ret})"})
                eng.free_sampler(r.sampler)
                self._release(r.media)
                self.requests.pop(r.id, None)
                eng.seq_clear(slot.seq)
                slot.cached = []
                slot.request = None
            return True
        self._unsettled.clear()  # the decode applied every queued copy and shift
        for r, tokens, _ in plan:
            slot = by_request[id(r)]
            slot.cached.extend(tokens)
            r.n_past += len(tokens)
            if r.next_token is not None:
                r.next_token = None
            else:
                del r.pending[: len(tokens)]
        outputs = [r for r, _tokens, wants_logits in plan if wants_logits]
        if outputs:
            # every output row at once, in batch order (a canceled request's token is drawn and dropped); a
            # request with drafts has a row for its token and one for each draft
            # (a sampled request's drafts are drawn later, row by row: see _after_draft)
            # (so does a greedy one with a grammar: the grammar must not accept rows after a rejected draft)
            picks = [(None if r.draft and not (r.sampler.greedy and r.sampler.grammar is None) else r.sampler,
                      r.logits_index - len(r.draft) + i) for r in outputs for i in range(len(r.draft) + 1)]
            tokens = eng.sample_outputs(picks)
            at = 0
            for r in outputs:
                n = len(r.draft) + 1
                if r.draft:
                    self._after_draft(by_request[id(r)], r, tokens[at:at + n])
                else:
                    self._after_logits(by_request[id(r)], r, tokens[at])
                at += n
        return True

    def _evaluate_image(self, slot: Slot, r: Request) -> None:
        """The image at the head of a request's pending prompt, in a decode of its own (mtmd encodes it and
        decodes its embeddings into the slot's cache); the other slots wait for this one step."""
        assert self.vision is not None
        start = len(r.prompt) - len(r.pending)
        chunk = r.media.spans.get(start)
        try:
            if chunk is None:
                raise ImageError("the image's place in the prompt was lost")
            n = self.vision.n_tokens(chunk)  # (two equal images side by side are two chunks)
            r.n_past = self.vision.evaluate(self.engine.ctx, chunk, r.n_past, slot.seq, self.engine.n_batch)
        except Exception as exc:
            self.engine.seq_clear(slot.seq)
            slot.cached = []
            self.send({"kind": "error", "id": r.id, "error": str(exc), "code": "bad_input"})
            self.engine.free_sampler(r.sampler)
            self._release(r.media)
            self.requests.pop(r.id, None)
            slot.request = None
            return
        self.decode_calls += 1
        self._unsettled.clear()  # its decode applied what was queued
        slot.cached.extend(r.pending[:n])
        del r.pending[:n]

    def _after_draft(self, slot: Slot, r: Request, tokens: list[int]) -> None:
        """The model's own choices after the token and after each draft: drafts are kept while they equal
        them; the cache forgets the rest; each kept choice then goes on as a sampled token would.

        A sampled request draws its choices here, one row at a time, each through its sampler after the one
        before was accepted, and stops at the first that differs from the draft: every token is then drawn
        from the target's own distribution given the tokens before it (for a draft that is a single guess,
        this is the standard acceptance rule: a draft token survives with its probability under the model,
        a rejection draws from the rest), and with a seed, the output is what decoding without drafts gives.
        """
        draft, r.draft = r.draft, []
        first = r.logits_index - len(draft)
        lazy = tokens[0] < 0
        chosen: list[int] = []
        for i in range(len(draft) + 1):
            chosen.append(self.engine.sample(r.sampler, first + i) if lazy else tokens[i])
            if i == len(draft) or chosen[i] != draft[i]:
                break
        kept = len(chosen) - 1
        r.drafted += len(draft)
        r.accepted += kept
        rejected = len(draft) - kept
        if rejected:
            self.engine.seq_remove(slot.seq, r.n_past - rejected, -1)
            del slot.cached[-rejected:]
            r.n_past -= rejected
        for i, token in enumerate(chosen):
            r.logits_index = first + i
            self._after_logits(slot, r, token)
            if slot.request is not r:
                return  # finished (a stop, num_predict, end of text, a cancel)

    def _after_logits(self, slot: Slot, r: Request, token: int) -> None:
        eng = self.engine
        if r.cancel_at is not None:
            self._finish(slot, "canceled")
            return
        if r.report_gaps:
            r.gaps.append(eng.top2_gap(r.logits_index))
        if not r.t_first:
            r.t_first = time.perf_counter()
        if eng.is_eog(token):
            self._finish(slot, "stop")
            return
        if r.logprobs or r.top_logprobs:
            r.lp_pending.append(eng.logprobs(r.logits_index, token, r.top_logprobs))
        r.generated.append(token)
        text = r.text.push(eng.piece(token))
        if text and r.stops is not None:
            text = r.stops.push(text)
        if text:
            self._emit(r, text)
        if r.stops is not None and r.stops.stopped:
            self._finish(slot, "stop")
        elif 0 <= r.num_predict <= len(r.generated) or (
                r.n_past + 1 >= eng.n_ctx_slot and not (r.shift and self._shift(slot, r))):
            self._finish(slot, "length")  # the limit, or a full context that may not (or cannot) shift
        else:
            r.next_token = token

    def _shift(self, slot: Slot, r: Request) -> bool:
        """Make room in a full context as Ollama does: keep the first ``num_keep`` tokens, drop half of the
        rest (the oldest), move what follows back over the gap. False when the cache cannot shift (then the
        generation stops at the context, and the log says why)."""
        eng = self.engine
        if not eng.can_shift():
            r.unshiftable = True  # the server's log says why the generation stopped here
            return False
        keep = max(0, min(r.num_keep, r.n_past - 2))
        discard = (r.n_past - keep) // 2
        if discard <= 0:
            return False
        eng.seq_remove(slot.seq, keep, keep + discard)
        eng.seq_shift(slot.seq, keep + discard, r.n_past, -discard)
        self._unsettled.add(slot.seq)  # the keys rotate at the next decode
        slot.cached = slot.cached[:keep] + slot.cached[keep + discard:]
        r.n_past -= discard
        self.shifts += 1
        r.shifts += 1
        return True


def serve(engine: Engine, sock: socket.socket, cache: PromptCache | None = None, drafter: Drafter | None = None,
          draft_max: int = 0, vision: Vision | None = None) -> int:
    """Run a loaded engine on its channel until the channel closes: say ready, read on a thread, decode here.
    (The real runner's entry point and the fake one's share it.)"""
    runner = Runner(engine, sock, cache, drafter, draft_max, vision)
    runner.send({"kind": "ready", "pid": os.getpid(), "n_ctx": engine.n_ctx_slot, "n_slots": engine.n_slots,
                 "n_ctx_train": engine.n_ctx_train, "n_vocab": engine.n_vocab, "n_batch": engine.n_batch})
    threading.Thread(target=runner.reader, name="channel-reader", daemon=True).start()
    runner.run()
    return 0
