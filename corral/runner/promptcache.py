"""Prompts cached outside the slots: sequence states in host memory under a byte cap (llama-server's
``--cache-ram``), optionally written to a folder when the runner ends and read back when a runner of the same
weights and load options starts (the server names the folder after them).

A slot's cache is lost the moment another prompt takes that slot; with this, the state it held is kept here
first, and a later request whose prompt starts the same way restores it instead of evaluating it again (a long
system prompt stays warm across many other conversations, a ``keep_alive`` expiry, a restart).

Nothing here touches llama.cpp: a state is the bytes ``llama_state_seq_get_data`` gave, with its tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from corral.runner.slots import common_prefix

MAGIC = b"CORRALKV1\n"
# a state shorter than this is cheaper to evaluate again than to keep (and to look through on every request)
MIN_TOKENS = 32


@dataclass
class Entry:
    tokens: list[int]
    size: int
    data: bytes | None = None  # None while it is only on disk
    path: Path | None = None
    used: float = field(default_factory=time.monotonic)


class PromptCache:
    def __init__(self, cap_bytes: int, directory: Path | None = None) -> None:
        self.cap = cap_bytes
        self.directory = directory
        self.entries: list[Entry] = []
        self.hits = 0
        if directory is not None:
            self._scan(directory)

    @property
    def used(self) -> int:
        return sum(e.size for e in self.entries if e.data is not None)

    def best(self, prompt: list[int]) -> tuple[Entry | None, int]:
        """The entry sharing the longest prefix with ``prompt``, and that length."""
        best: Entry | None = None
        best_n = 0
        for e in self.entries:
            n = common_prefix(e.tokens, prompt)
            if n > best_n:
                best, best_n = e, n
        return best, best_n

    def covers(self, tokens: list[int]) -> bool:
        """Whether some entry already holds ``tokens`` (or a longer run starting with them)."""
        return any(len(e.tokens) >= len(tokens) and e.tokens[:len(tokens)] == tokens for e in self.entries)

    def put(self, tokens: list[int], data: bytes) -> None:
        if len(tokens) < MIN_TOKENS or len(data) > self.cap or self.covers(tokens):
            return
        # an entry that is a prefix of this one is worth nothing more
        for e in [e for e in self.entries if len(e.tokens) <= len(tokens) and tokens[:len(e.tokens)] == e.tokens]:
            self.drop(e)
        self.entries.append(Entry(list(tokens), len(data), data))
        self._fit()

    def load(self, entry: Entry) -> bytes | None:
        """An entry's state, read from its file when only there (None when the file went bad: dropped)."""
        entry.used = time.monotonic()
        self.hits += 1
        if entry.data is not None:
            return entry.data
        try:
            assert entry.path is not None
            _, data = _read(entry.path, with_data=True)
            return data
        except Exception:  # a torn or foreign file: never the runner's end
            self.drop(entry)
            return None

    def _fit(self) -> None:
        """Least recently used entries go until the ones in memory fit the cap."""
        while self.used > self.cap:
            oldest = min((e for e in self.entries if e.data is not None), key=lambda e: e.used)
            self.drop(oldest)

    def drop(self, entry: Entry) -> None:
        if entry in self.entries:
            self.entries.remove(entry)
        if entry.path is not None:
            entry.path.unlink(missing_ok=True)

    # --- the folder ---------------------------------------------------------------------------------

    def _scan(self, directory: Path) -> None:
        try:
            for stale in directory.glob("*.tmp-*"):  # a write cut short by the runner's end
                stale.unlink(missing_ok=True)
            files = sorted(directory.glob("*.kv"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return
        total = 0
        for path in files:
            try:
                tokens, _ = _read(path, with_data=False)
                size = path.stat().st_size
            except Exception:
                path.unlink(missing_ok=True)  # a torn or foreign file: nothing can use it
                continue
            if total + size > self.cap:
                path.unlink(missing_ok=True)  # over the cap, oldest first
                continue
            total += size
            self.entries.append(Entry(tokens, size, None, path))

    def save(self, extra: list[tuple[list[int], bytes]], deadline: float = float("inf")) -> None:
        """Write every entry held only in memory (and ``extra``: what the slots hold now) to the folder, each
        file atomically, the most recently used first while the cap allows."""
        if self.directory is None:
            return
        for tokens, data in extra:
            self.put(tokens, data)
        self.directory.mkdir(parents=True, exist_ok=True)
        for e in sorted(self.entries, key=lambda e: e.used, reverse=True):
            if e.data is None or e.path is not None:
                continue
            if time.monotonic() > deadline:
                return
            name = hashlib.sha256(struct.pack(f"<{len(e.tokens)}i", *e.tokens)).hexdigest()[:32] + ".kv"
            path = self.directory / name
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            try:
                head = json.dumps({"tokens": e.tokens}).encode()
                with open(tmp, "wb") as f:
                    f.write(MAGIC + struct.pack("<Q", len(head)) + head)
                    f.write(e.data)
                os.replace(tmp, path)
                e.path = path
            except OSError:
                tmp.unlink(missing_ok=True)  # a full disk loses the cache, nothing else
                return


def _read(path: Path, *, with_data: bool) -> tuple[list[int], bytes | None]:
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a prompt cache file")
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 1 << 28:
            raise ValueError("bad header")
        head = json.loads(f.read(n))
        tokens = head.get("tokens") if isinstance(head, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ValueError("bad header")
        return tokens, (f.read() if with_data else None)
