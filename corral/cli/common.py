"""What the client-side commands share: the client, the heartbeat check, human formatting."""

from __future__ import annotations

import datetime
import sys

import httpx

from corral.client import Client

NOT_RUNNING = "could not connect to corral server, run 'corral serve' to start it"


def connect() -> Client:
    """A client for OLLAMA_HOST, after checking the server answers (HEAD /), as Ollama's CLI does."""
    client = Client()
    try:
        client._client.head("/", timeout=5)
    except httpx.HTTPError:
        print(f"Error: {NOT_RUNNING}", file=sys.stderr)
        raise SystemExit(1) from None
    return client


def human_size(n: float) -> str:
    """Decimal units with Ollama's rounding: 98 MB, 1.3 GB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.0f} {unit}" if n >= 10 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} PB"


def human_ago(when: datetime.datetime, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return _relative((now - when).total_seconds(), "ago")


def human_until(when: datetime.datetime, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return _relative((when - now).total_seconds(), "from now")


def _relative(seconds: float, suffix: str) -> str:
    s = abs(seconds)
    if s < 1:
        return "Less than a second " + suffix if suffix == "ago" else "Now"
    for size, name in ((31536000, "year"), (2592000, "month"), (604800, "week"), (86400, "day"),
                       (3600, "hour"), (60, "minute"), (1, "second")):
        if s >= size:
            n = int(s // size)
            if n == 1:
                article = "An" if name == "hour" else "A"
                return f"{article} {name} {suffix}" if suffix == "ago" else f"1 {name} {suffix}"
            return f"{n} {name}s {suffix}"
    return f"{int(s)} seconds {suffix}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("    ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
