"""The prompt cache's bookkeeping and its folder, without an engine: caps, prefixes, and files it must not
trust (torn, foreign, another layout), none of which may stop a runner."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from corral.runner.promptcache import MAGIC, MIN_TOKENS, PromptCache

A = list(range(100, 100 + MIN_TOKENS * 2))
B = list(range(500, 500 + MIN_TOKENS * 2))


def test_best_prefix_cap_and_covering() -> None:
    cache = PromptCache(cap_bytes=250)
    cache.put(A, b"a" * 100)
    cache.put(A[:MIN_TOKENS], b"x" * 10)  # covered by A already: not kept
    assert [len(e.tokens) for e in cache.entries] == [len(A)]
    cache.put(B, b"b" * 100)
    entry, n = cache.best([*A[:40], 1, 2, 3])
    assert entry is not None and entry.tokens == A and n == 40
    cache.put([*A, 7, 7], b"c" * 100)  # extends A: A goes
    assert [e.tokens[0] for e in cache.entries] == [500, 100]
    cache.load(cache.entries[0])  # B used again: now the newer of the two
    cache.put(list(range(900, 900 + MIN_TOKENS)), b"d" * 100)  # over the cap: the least recently used goes
    assert [e.tokens[0] for e in cache.entries] == [500, 900]
    assert cache.used <= 250
    cache.put(list(range(MIN_TOKENS - 1)), b"s")  # too short to keep
    cache.put(B, b"z" * 300)  # larger than the whole cache
    assert len(cache.entries) == 2  # neither was kept


def test_the_folder_survives_bad_files(tmp_path: Path) -> None:
    cache = PromptCache(cap_bytes=1 << 20, directory=tmp_path)
    cache.put(A, b"state-a")
    cache.save([])
    [saved] = list(tmp_path.glob("*.kv"))
    (tmp_path / "short.kv").write_bytes(MAGIC + b"\x01")  # cut inside the header length
    head = json.dumps([1, 2]).encode()  # a header that is not an object
    (tmp_path / "list.kv").write_bytes(MAGIC + struct.pack("<Q", len(head)) + head)
    (tmp_path / "foreign.kv").write_bytes(b"GGUF....")
    (tmp_path / "x.tmp-123").write_bytes(b"half")  # a write cut short
    again = PromptCache(cap_bytes=1 << 20, directory=tmp_path)
    assert [e.tokens for e in again.entries] == [A]
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]
    entry, _ = again.best(A)
    assert entry is not None and again.load(entry) == b"state-a"
    saved.write_bytes(saved.read_bytes()[:20])  # torn after the scan: dropped when read
    assert again.load(entry) is None and not again.entries
