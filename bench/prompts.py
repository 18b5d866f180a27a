"""Deterministic prompt text: story openings that make a model write long, and filler of a chosen length."""

from __future__ import annotations

import random

_WORD_TEXT = (
    "river mountain lantern harbor orchard signal winter copper meadow engine archive compass garden "
    "thunder village market canvas ribbon falcon granite library whisper pepper meteor saddle tunnel "
    "velvet quarry beacon cobalt feather glacier hammer island jasmine kettle ladder marble needle "
    "oyster parcel quartz rocket silver timber umbrella violet walnut yonder zephyr anchor bridge "
    "candle desert ember forest gravel hollow ivory jungle kernel lemon mirror nectar orbit pillow"
)
_WORDS = tuple(_WORD_TEXT.split())

_OPENINGS = (
    "The old lighthouse keeper had lived alone on the island for forty years. Every night he",
    "When the caravan reached the edge of the salt desert, the youngest trader",
    "Nobody in the village remembered who had built the clock tower, but every morning it",
    "The letter arrived on a rainy Tuesday, sealed with green wax, and inside it",
    "Captain Mira studied the storm on the horizon and ordered the crew to",
    "The expedition had been walking through the frozen forest for three days when",
    "The robot gardener had tended the greenhouse for a century when one day",
    "At the top of the mountain pass stood an inn where travellers told stories, and tonight",
)


def story(i: int, tag: str = "") -> str:
    """A raw continuation prompt that a model keeps writing from; ``i`` picks the opening."""
    head = f"Chapter {i + 1}{tag}\n\n"
    return head + _OPENINGS[i % len(_OPENINGS)]


def filler(n_words: int, seed: int) -> str:
    """``n_words`` words of plain sentences (about 1.3 tokens a word with a 49k vocabulary)."""
    rng = random.Random(seed)
    sentences: list[str] = []
    count = 0
    while count < n_words:
        k = min(rng.randint(6, 14), n_words - count)
        words = [rng.choice(_WORDS) for _ in range(k)]
        sentences.append(" ".join(words).capitalize() + ".")
        count += k
    return " ".join(sentences)
