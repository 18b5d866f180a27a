"""``corral list``, ``corral ps``, ``corral stop``: Ollama's tables and its unload.

The tables are built by pure functions of the server's JSON and a clock (:func:`list_table`,
:func:`ps_table`), so their exact text is tested with fixed times and sizes.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from corral.cli.common import connect, table
from corral.cli.humanize import go_round, human_bytes, human_time, parse_time
from corral.client import Client, ResponseError

_FAR_PAST = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc)  # Go's zero time, for a missing expiry


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def list_table(models: Iterable[Mapping[str, Any]], prefix: str | None, now: datetime.datetime) -> str:
    """``NAME ID SIZE MODIFIED``; a prefix keeps the names that start with it, ignoring case (Ollama)."""
    rows = []
    for m in models:
        name = str(m.get("name") or m.get("model") or "")
        if prefix is not None and not name.lower().startswith(prefix.lower()):
            continue
        size = "-" if m.get("remote_model") else human_bytes(_int(m.get("size")))
        rows.append([name, str(m.get("digest") or "")[:12], size,
                     human_time(parse_time(m.get("modified_at")), "Never", now)])
    return table(["NAME", "ID", "SIZE", "MODIFIED"], rows)


def processor(size: int, vram: int) -> str:
    """Where a loaded model lives: ``100% GPU``, ``100% CPU``, ``48%/52% CPU/GPU``."""
    if vram == 0:
        return "100% CPU"
    if vram == size:
        return "100% GPU"
    if vram > size or size == 0:
        return "Unknown"
    cpu_percent = go_round((size - vram) / size * 100)  # 62.5 is 63, as in Go
    return f"{cpu_percent}%/{100 - cpu_percent}% CPU/GPU"


def until(expires_at: datetime.datetime | None, now: datetime.datetime) -> str:
    """The UNTIL column: ``4 minutes from now``, ``Forever``, or ``Stopping...`` once the time has passed
    (a missing time counts as long past, as Go's zero time does)."""
    when = expires_at or _FAR_PAST
    if now > when:
        return "Stopping..."
    return human_time(when, "Never", now)


def ps_table(models: Iterable[Mapping[str, Any]], prefix: str | None, now: datetime.datetime) -> str:
    """``NAME ID SIZE PROCESSOR CONTEXT UNTIL``; a prefix keeps the names that start with it, case and all
    (Ollama compares ``ps`` names exactly, ``list`` names without case)."""
    rows = []
    for m in models:
        name = str(m.get("name") or m.get("model") or "")
        if prefix is not None and not name.startswith(prefix):
            continue
        size = _int(m.get("size"))
        rows.append([name, str(m.get("digest") or "")[:12], human_bytes(size),
                     processor(size, _int(m.get("size_vram"))), str(_int(m.get("context_length"))),
                     until(parse_time(m.get("expires_at")), now)])
    return table(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], rows)


def _models(client: Client, path: str) -> list[Mapping[str, Any]]:
    # The wire JSON rather than the SDK's types: those leave out fields the table reads (remote_model).
    models = client._request_raw("GET", path).json().get("models") or []
    return [m for m in models if isinstance(m, Mapping)]


def cmd_list(args: argparse.Namespace) -> int:
    client = connect()
    try:
        sys.stdout.write(list_table(_models(client, "/api/tags"), getattr(args, "prefix", None), _now()))
    except ResponseError as e:
        print(f"Error: {e.error}", file=sys.stderr)
        return 1
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    client = connect()
    try:
        sys.stdout.write(ps_table(_models(client, "/api/ps"), getattr(args, "prefix", None), _now()))
    except ResponseError as e:
        print(f"Error: {e.error}", file=sys.stderr)
        return 1
    return 0


def unload(client: Client, model: str) -> None:
    """Ollama's loadOrUnloadModel with keep_alive 0: look the model up (so a missing one is "not found"),
    then ask for an unload, which succeeds whether or not it was loaded.  A remote model has nothing to
    unload.  Raises ResponseError."""
    info = client._request_raw("POST", "/api/show", json={"model": model}).json()
    if isinstance(info, Mapping) and info.get("remote_host"):
        return
    client._request_raw("POST", "/api/generate", json={"model": model, "keep_alive": 0})


def cmd_stop(args: argparse.Namespace) -> int:
    client = connect()
    try:
        unload(client, args.model)
    except ResponseError as e:
        message = f'couldn\'t find model "{args.model}" to stop' if "not found" in e.error else e.error
        print(f"Error: {message}", file=sys.stderr)
        return 1
    return 0
