"""What the client-side commands share: the client, the heartbeat check, human formatting, tables."""

from __future__ import annotations

import sys

import httpx

from corral.cli.humanize import human_bytes
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
    """Ollama's ``format.HumanBytes`` (98.6 MB is ``98 MB``); see :mod:`corral.cli.humanize`."""
    return human_bytes(int(n))


def table(header: list[str], rows: list[list[str]]) -> str:
    """Ollama's list/ps table (tablewriter, borderless, no white space, four-space padding): every cell
    left-aligned and padded to its column; four spaces after each data cell, the last one included, and a
    single space after the header's last cell."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    last = len(header) - 1
    head = "".join(c.ljust(w) + (" " if i == last else "    ") for i, (c, w) in enumerate(zip(header, widths,
                                                                                               strict=True)))
    body = ["".join(c.ljust(w) + "    " for c, w in zip(r, widths, strict=True)) for r in rows]
    return "".join(line + "\n" for line in [head, *body])
