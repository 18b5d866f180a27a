"""The runner's slot bookkeeping with a fake engine: join, leave, prefix reuse, cancel, chunked prefill."""

from __future__ import annotations

from typing import Any

from corral.runner import protocol
from corral.runner.loop import Runner
from corral.runner.slots import Request, Slot, common_prefix, compaction, pick_slot, plan_batch

EOG = 0


class FakeEngine:
    """Answers each request with a scripted token list; records every batch it was asked to decode."""

    def __init__(self, n_slots: int = 2, n_batch: int = 8, n_ctx: int = 64) -> None:
        self.n_slots, self.n_batch, self.n_ctx_slot, self.n_swa, self.bos = n_slots, n_batch, n_ctx, 0, 1
        self.sequential_batches = True
        self.n_threads = 0  # fewer than the cores: no first-text pause
        self.scripts: list[list[int]] = []
        self.batches: list[list[tuple[int, int, int, bool]]] = []
        self.truncations: list[tuple[int, int]] = []
        self.moves: list[tuple[int, int]] = []
        self._batch: list[tuple[int, int, int, bool]] = []

    def tokenize(self, text: str, **_: Any) -> list[int]:
        return [ord(c) for c in text]

    def new_sampler(self, sampling: Any) -> list[int]:
        return list(self.scripts.pop(0))

    def free_sampler(self, chain: Any) -> None:
        pass

    def can_draft(self, chain: Any) -> bool:
        return False

    def sample_outputs(self, picks: list[tuple[list[int], int]]) -> list[int]:
        return [chain.pop(0) if chain else EOG for chain, _index in picks]

    def piece(self, token: int) -> bytes:
        return chr(token).encode()

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def batch_clear(self) -> None:
        self._batch = []

    def batch_add_seq(self, tokens: list[int], pos: int, seq: int, last_logits: bool, *,
                      all_logits: bool = False) -> int:
        for i, token in enumerate(tokens):
            self._batch.append((token, pos + i, seq, last_logits and i == len(tokens) - 1))
        return len(self._batch) - 1

    def decode(self) -> int:
        self.batches.append(self._batch)
        return 0

    def seq_truncate(self, seq: int, keep: int) -> bool:
        self.truncations.append((seq, keep))
        return True

    def seq_clear(self, seq: int) -> None:
        self.truncations.append((seq, 0))

    def seq_move(self, src: int, dst: int) -> None:
        self.moves.append((src, dst))

    def seq_pos_min(self, seq: int) -> int:
        return 0


class FakeSocket:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def sendall(self, data: bytes) -> None:
        # A decode step writes all its frames at once; split them as the server's reader does.
        while data:
            (length,) = protocol.HEADER.unpack(data[:protocol.HEADER.size])
            end = protocol.HEADER.size + length
            self.messages.append(protocol.decode(data[protocol.HEADER.size:end]))
            data = data[end:]


def make(n_slots: int = 2, n_batch: int = 8) -> tuple[Runner, FakeEngine, FakeSocket]:
    eng, sock = FakeEngine(n_slots, n_batch), FakeSocket()
    return Runner(eng, sock), eng, sock  # type: ignore[arg-type]


def submit(runner: Runner, eng: FakeEngine, rid: str, prompt: str, answer: str) -> None:
    eng.scripts.append([ord(c) for c in answer])
    runner.inbox.put({"kind": "submit", "id": rid, "prompt": prompt})


def run_until_idle(runner: Runner, limit: int = 200) -> None:
    for _ in range(limit):
        if not runner.step():
            return
    raise AssertionError("runner did not go idle")


def texts(sock: FakeSocket) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in sock.messages:
        if m["kind"] == "token":
            out[m["id"]] = out.get(m["id"], "") + m["text"]
    return out


def dones(sock: FakeSocket) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in sock.messages if m["kind"] == "done"}


def test_two_requests_share_batches_and_finish_independently() -> None:
    runner, eng, sock = make()
    submit(runner, eng, "a", "hi", "xyz")
    submit(runner, eng, "b", "yo", "q")
    run_until_idle(runner)
    assert texts(sock) == {"a": "xyz", "b": "q"}
    assert {k: v["done_reason"] for k, v in dones(sock).items()} == {"a": "stop", "b": "stop"}
    # both prompts went into the first batch, each in its own sequence
    assert {seq for _, _, seq, _ in eng.batches[0]} == {0, 1}
    assert all(s.free for s in runner.slots)


def test_new_request_joins_between_steps() -> None:
    runner, eng, sock = make()
    submit(runner, eng, "a", "hi", "abcdefgh")
    runner.step()
    runner.step()
    submit(runner, eng, "b", "yo", "zz")
    runner.step()
    joined = eng.batches[-1]
    seqs = [seq for _, _, seq, _ in joined]
    assert seqs.count(0) == 1 and seqs.count(1) == 2  # a's next token, b's whole prompt
    run_until_idle(runner)
    assert texts(sock) == {"a": "abcdefgh", "b": "zz"}


def test_waiting_request_takes_a_slot_the_moment_one_frees() -> None:
    runner, eng, sock = make(n_slots=1)
    submit(runner, eng, "a", "p", "x")
    submit(runner, eng, "b", "q", "y")
    runner.step()
    assert [r.id for r in runner.waiting] == ["b"]
    run_until_idle(runner)
    assert texts(sock) == {"a": "x", "b": "y"}


def test_follow_up_reuses_the_cached_prefix() -> None:
    runner, eng, sock = make(n_slots=2)
    submit(runner, eng, "a", "system prompt. user one", "ok")
    run_until_idle(runner)
    submit(runner, eng, "b", "system prompt. user one" + "ok" + " user two", "fine")
    run_until_idle(runner)
    d = dones(sock)
    assert d["a"]["prompt_eval_count"] == len("system prompt. user one")
    assert d["b"]["prompt_eval_count"] == len(" user two")  # the answer "ok" was cached with the prompt
    assert texts(sock)["b"] == "fine"


def test_cancel_frees_the_slot_and_reports_tokens_after_it() -> None:
    runner, eng, sock = make(n_slots=1)
    submit(runner, eng, "a", "p", "abcdefghijklmnop")
    for _ in range(4):
        runner.step()
    runner.requests["a"].cancel_at = len(runner.requests["a"].generated)  # what the reader thread does
    runner.inbox.put({"kind": "cancel", "id": "a"})
    submit(runner, eng, "b", "q", "z")
    run_until_idle(runner)
    d = dones(sock)
    assert d["a"]["done_reason"] == "canceled" and d["a"]["tokens_after_cancel"] <= 2
    assert texts(sock)["b"] == "z"


def test_prefill_is_chunked_and_running_streams_go_first() -> None:
    runner, eng, sock = make(n_slots=2, n_batch=8)
    submit(runner, eng, "a", "ab", "xxxxxx")
    runner.step()
    submit(runner, eng, "b", "a long prompt of many tokens", "y")
    runner.step()
    batch = eng.batches[-1]
    assert len(batch) <= 8
    assert batch[0][2] == 0 and batch[0][3] is True  # a's token first, with logits
    assert all(not logits for _, _, seq, logits in batch[1:])  # b's prompt only partly in: no logits yet
    run_until_idle(runner)
    assert texts(sock) == {"a": "xxxxxx", "b": "y"}


def test_num_predict_and_stop_strings() -> None:
    runner, eng, sock = make()
    eng.scripts.append([ord(c) for c in "hello world"])
    runner.inbox.put({"kind": "submit", "id": "n", "prompt": "p", "num_predict": 3})
    eng.scripts.append([ord(c) for c in "one, two END three"])
    runner.inbox.put({"kind": "submit", "id": "s", "prompt": "q", "stop": ["END"]})
    run_until_idle(runner)
    assert texts(sock)["n"] == "hel" and dones(sock)["n"]["done_reason"] == "length"
    assert texts(sock)["s"] == "one, two " and dones(sock)["s"]["done_reason"] == "stop"


def test_pick_slot_prefers_a_worthwhile_prefix_then_contiguity_then_least_recent() -> None:
    long = list(range(100, 140))
    a, b, c = Slot(0, long[:30], last_used=5.0), Slot(1, long[:20], last_used=1.0), Slot(2, [], last_used=0.0)
    assert pick_slot([a, b, c], long) is a  # the longest cached prefix
    assert pick_slot([b, c], [9]) is c  # no prefix anywhere: the least recently used
    # a few shared tokens (a common "Chapter" heading) are not worth a split batch
    assert pick_slot([a, b, c], long[:3] + [7] * 30) is c
    # busy 3: the free neighbours 2 and 4 keep one run; 0 would make two, whatever its age
    slots = [Slot(i, [], last_used=float(10 - i)) for i in range(6)]
    slots[3].request = Request(id="x", prompt=[1], sampling=None)
    assert pick_slot(slots, [9]).seq == 4  # 4 is older than 2
    assert pick_slot(slots, [9], contiguous=False).seq == 5  # unified cache: plain LRU
    # a hole between busy runs is filled first
    slots[5].request = Request(id="y", prompt=[1], sampling=None)
    assert pick_slot(slots, [9]).seq == 4
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_batch_lists_sequences_in_increasing_id_order() -> None:
    """llama.cpp's sequential split takes consecutive ids into one ubatch only in increasing order, so a
    prefill for slot 0 must not follow slot 1's decode token in the batch."""
    runner, eng, _sock = make(n_slots=2)
    runner.slots[0].last_used = 1.0  # slot 1 is the least recently used: a goes there, b to slot 0
    submit(runner, eng, "a", "pp", "abc")
    runner.step()
    submit(runner, eng, "b", "qqq", "de")
    runner.step()  # a decodes while b prefills
    ids = [entry[2] for entry in eng.batches[-1]]
    assert ids[0] == 0 and ids[-1] == 1 and ids == sorted(ids)


def test_a_hole_between_busy_slots_is_closed_by_moving_the_highest_one() -> None:
    runner, eng, sock = make(n_slots=3)
    for rid in "abc":
        submit(runner, eng, rid, rid * 2, "x" * (2 if rid == "b" else 6))
    runner.step()  # a, b, c in slots 0, 1, 2
    assert [s.request.id for s in runner.slots if s.request] == ["a", "b", "c"]
    while runner.slots[1].request is not None:
        runner.step()  # b finishes first: busy 0 and 2
    runner.step()
    assert eng.moves == [(2, 1)]
    assert runner.slots[1].request is not None and runner.slots[1].request.id == "c"
    assert runner.slots[2].request is None and runner.slots[2].cached  # its cache stays for reuse
    assert {entry[2] for entry in eng.batches[-1]} == {0, 1}
    run_until_idle(runner)
    assert texts(sock) == {"a": "x" * 6, "b": "xx", "c": "x" * 6}


def test_compaction_fills_holes_from_the_top() -> None:
    slots = [Slot(i) for i in range(7)]
    for i in (1, 4, 6):
        slots[i].request = Request(id=str(i), prompt=[1], sampling=None)
    src, dst = compaction(slots)
    assert (src.seq, dst.seq) == (6, 2)
    slots[2].request, slots[6].request = slots[6].request, None
    src, dst = compaction(slots)
    assert (src.seq, dst.seq) == (4, 3)
    slots[3].request, slots[4].request = slots[4].request, None
    assert compaction(slots) is None


def test_plan_batch_puts_generating_requests_first_in_the_budget() -> None:
    r1 = Request(id="x", prompt=[1], sampling=None, pending=[5, 6, 7])
    r2 = Request(id="y", prompt=[1], sampling=None, next_token=9)
    plan = plan_batch([r1, r2], budget=2)
    assert plan[0][0] is r2 and plan[1] == (r1, [5], False)


def test_common_prefix_matches_a_plain_scan() -> None:
    import random

    from corral.runner.slots import common_prefix

    rng = random.Random(7)
    for _ in range(3000):
        a = [rng.randint(0, 2) for _ in range(rng.randint(0, 40))]
        b = a[: rng.randint(0, len(a))] + [rng.randint(0, 2) for _ in range(rng.randint(0, 6))]
        expected = 0
        while expected < min(len(a), len(b)) and a[expected] == b[expected]:
            expected += 1
        assert common_prefix(a, b) == expected
        assert common_prefix(b, a) == expected


def test_unstreamed_request_gets_its_text_once_in_done() -> None:
    runner, eng, sock = make()
    eng.scripts.append([ord(c) for c in "hello"])
    runner.inbox.put({"kind": "submit", "id": "a", "prompt": "p", "stream": False})
    submit(runner, eng, "b", "q", "hey")
    run_until_idle(runner)
    assert "a" not in texts(sock)  # no frame per token for the unstreamed request
    assert dones(sock)["a"]["text"] == "hello"
    assert texts(sock) == {"b": "hey"} and "text" not in dones(sock)["b"]


def test_one_write_per_decode_step() -> None:
    runner, eng, sock = make()
    writes: list[bytes] = []
    original = sock.sendall

    def counting(data: bytes) -> None:
        writes.append(data)
        original(data)

    sock.sendall = counting  # type: ignore[method-assign]
    submit(runner, eng, "a", "hi", "xyz")
    submit(runner, eng, "b", "yo", "uvw")
    run_until_idle(runner)
    assert texts(sock) == {"a": "xyz", "b": "uvw"}
    assert len(writes) <= len(eng.batches)  # both streams' tokens of a step travel together
    assert any(len(protocol_frames(w)) >= 2 for w in writes)


def protocol_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        (length,) = protocol.HEADER.unpack(data[:protocol.HEADER.size])
        frames.append(data[protocol.HEADER.size:protocol.HEADER.size + length])
        data = data[protocol.HEADER.size + length:]
    return frames


def test_the_loop_pauses_once_after_a_streamed_request_gets_its_first_text(monkeypatch: Any) -> None:
    """With every core decoding, the server and client get a moment to pass the first text on."""
    import os

    from corral.runner import loop

    pauses: list[float] = []
    monkeypatch.setattr(loop.time, "sleep", pauses.append)
    eng, sock = FakeEngine(2, 8), FakeSocket()
    eng.n_threads = os.cpu_count() or 1
    runner = Runner(eng, sock)  # type: ignore[arg-type]
    submit(runner, eng, "a", "p", "hello")
    eng.scripts.append([ord(c) for c in "quiet"])
    runner.inbox.put({"kind": "submit", "id": "b", "prompt": "q", "stream": False})
    run_until_idle(runner)
    assert texts(sock) == {"a": "hello"}
    assert pauses == [loop.FIRST_TEXT_PAUSE]  # a's first text only: not b (unstreamed), not a's later text

    pauses.clear()
    eng.n_threads = 1 if (os.cpu_count() or 1) > 1 else 0
    runner = Runner(eng, FakeSocket())  # type: ignore[arg-type]
    submit(runner, eng, "c", "p", "hi")
    run_until_idle(runner)
    assert pauses == []  # cores to spare: no pause
