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


_FUNCTION = '''def summarize_orders(orders, tax_rate, discount_codes):
    """Total the orders of each customer, with tax and discounts, and list the largest ones."""
    totals = {}
    counts = {}
    for order in orders:
        customer = order["customer"]
        subtotal = 0.0
        for item in order["items"]:
            price = item["price"] * item["quantity"]
            if item.get("taxable", True):
                price = price * (1.0 + tax_rate)
            subtotal += price
        code = order.get("discount_code")
        if code in discount_codes:
            subtotal = subtotal * (1.0 - discount_codes[code])
        totals[customer] = totals.get(customer, 0.0) + subtotal
        counts[customer] = counts.get(customer, 0) + 1
    report = []
    for customer, total in totals.items():
        average = total / counts[customer]
        report.append({"customer": customer, "total": round(total, 2), "orders": counts[customer],
                       "average": round(average, 2)})
    report.sort(key=lambda row: row["total"], reverse=True)
    largest = [row for row in report if row["total"] >= 1000.0]
    return {"report": report, "largest": largest, "customers": len(report)}
'''


def copy_task() -> str:
    """A raw prompt whose continuation is mostly a copy of its own text: a Python function, then the same
    function with its parameter ``tax_rate`` renamed, the first line already written."""
    renamed = _FUNCTION.split("\n", 1)[0].replace("tax_rate", "vat_rate")
    return ("# Rename the parameter `tax_rate` to `vat_rate` everywhere in this function; change nothing else.\n\n"
            f"# Before:\n{_FUNCTION}\n\n# After:\n{renamed}\n")
