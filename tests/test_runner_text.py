"""Streaming text assembly: split UTF-8 characters and stop strings that span tokens."""

from __future__ import annotations

import random

import pytest

from corral.runner.text import StopMatcher, Utf8Assembler


def _split_bytes(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, len(data) // 2)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("text", ["天空为什么是蓝色的？", "emoji 🌈🦙 mix ü é", "plain ascii"])
def test_utf8_assembler_never_emits_replacement(text: str) -> None:
    rng = random.Random(7)
    for _ in range(50):
        asm = Utf8Assembler()
        pieces = [asm.push(chunk) for chunk in _split_bytes(text.encode(), rng)]
        pieces.append(asm.flush())
        assert "\ufffd" not in "".join(pieces)
        assert "".join(pieces) == text


def test_utf8_assembler_drops_a_character_cut_by_the_end() -> None:
    asm = Utf8Assembler()
    assert asm.push(b"ok\xe5\xa4") == "ok"
    assert asm.flush() == ""


def _run_stop(chunks: list[str], stops: list[str]) -> tuple[str, bool]:
    m = StopMatcher(stops)
    out = []
    for c in chunks:
        out.append(m.push(c))
        if m.stopped:
            return "".join(out), True
    out.append(m.flush())
    return "".join(out), False


def test_stop_spanning_tokens_is_cut() -> None:
    text, stopped = _run_stop(["Hello wor", "ld<", "|end", "|> tail"], ["<|end|>"])
    assert stopped and text == "Hello world"


def test_partial_stop_is_released_when_it_does_not_complete() -> None:
    m = StopMatcher(["STOP"])
    assert m.push("a ST") == "a "
    assert m.push("AR") == "STAR"
    assert not m.stopped


def test_earliest_of_several_stops_wins() -> None:
    text, stopped = _run_stop(["x. y\n\nz"], ["\n\n", ". "])
    assert stopped and text == "x"


def test_stop_matcher_random_chunking_matches_reference() -> None:
    rng = random.Random(3)
    source = "The quick brown fox <END> jumps"
    for _ in range(100):
        cuts = sorted(rng.sample(range(1, len(source)), k=6))
        chunks = [source[a:b] for a, b in zip([0, *cuts], [*cuts, len(source)], strict=True)]
        text, stopped = _run_stop(chunks, ["<END>"])
        assert stopped and text == "The quick brown fox "


def test_utf8_assembler_drops_bytes_that_never_form_a_character() -> None:
    asm = Utf8Assembler()
    assert asm.push(b"a\xe8") == "a"
    assert asm.push("？".encode()) == "？"
