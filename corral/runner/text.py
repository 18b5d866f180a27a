"""Turning generated token bytes into text that is safe to stream.

Two things make this harder than joining pieces: a multi-byte UTF-8 character may be split across tokens
(emitting the halves would show U+FFFD), and a stop string may span tokens (its beginning must be held back
until we know whether the rest follows).
"""

from __future__ import annotations


def _utf8_complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 sequence."""
    n = len(data)
    # Look back at most 3 bytes for the lead byte of an unfinished sequence.
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b & 0b1100_0000 == 0b1000_0000:  # continuation byte: keep looking for the lead
            continue
        if b & 0b1000_0000 == 0:  # ASCII: everything is complete
            return n
        need = 2 if b & 0b1110_0000 == 0b1100_0000 else 3 if b & 0b1111_0000 == 0b1110_0000 else 4
        return n if back >= need else n - back
    return n


class Utf8Assembler:
    """Accumulates token bytes and releases only whole characters."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def push(self, data: bytes) -> str:
        if not self._pending and data and data[-1] < 0x80:
            return data.decode("utf-8", errors="ignore")  # nothing held, ends in ASCII: whole (most tokens)
        buf = self._pending + data
        cut = _utf8_complete_prefix(buf)
        self._pending = buf[cut:]
        # Bytes that can never form a character (a sampled lead byte followed by an unrelated token) are
        # dropped: U+FFFD in an answer helps nobody, and the tokens themselves stay in `context`.
        return buf[:cut].decode("utf-8", errors="ignore")

    def flush(self) -> str:
        """End of generation: held bytes are an unfinished character (the limit cut it); drop them
        rather than show U+FFFD."""
        self._pending = b""
        return ""


class StopMatcher:
    """Holds back text that could be the start of a stop string and cuts at the first full match."""

    __slots__ = ("_held", "_stops", "stopped")

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Returns the text that may be emitted now; sets ``stopped`` when a stop string completed."""
        if not self._stops:
            return text
        buf = self._held + text
        first = -1
        for s in self._stops:
            i = buf.find(s)
            if i != -1 and (first == -1 or i < first):
                first = i
        if first != -1:
            self._held = ""
            self.stopped = True
            return buf[:first]
        # Keep the longest tail of buf that is a proper prefix of some stop string.
        keep = 0
        for s in self._stops:
            for k in range(min(len(s) - 1, len(buf)), keep, -1):
                if buf.endswith(s[:k]):
                    keep = k
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        out, self._held = self._held, ""
        return out
