"""``corral list``, ``corral ps``, ``corral stop``."""

from __future__ import annotations

import argparse
import datetime
import sys

from corral.cli.common import connect, human_ago, human_size, human_until, table


def cmd_list(args: argparse.Namespace) -> int:
    client = connect()
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for m in client.list().models:
        modified = m.modified_at or datetime.datetime.now(datetime.timezone.utc)
        rows.append([m.model or "", (m.digest or "")[:12], human_size(m.size or 0), human_ago(modified)])
    print(table(rows))
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    client = connect()
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    now = datetime.datetime.now(datetime.timezone.utc)
    for m in client.ps().models:
        size, vram = m.size or 0, m.size_vram or 0
        if vram == 0:
            processor = "100% CPU"
        elif vram == size:
            processor = "100% GPU"
        else:
            cpu = round((size - vram) * 100 / size)
            processor = f"{cpu}%/{100 - cpu}% CPU/GPU"
        if m.expires_at is None or m.expires_at.year - now.year > 20:  # Ollama's rule for "Forever"
            until = "Forever"
        elif m.expires_at < now:
            until = "Stopping..."
        else:
            until = human_until(m.expires_at, now)
        rows.append([m.name or m.model or "", (m.digest or "")[:12], human_size(size), processor,
                     str(m.context_length or ""), until])
    print(table(rows))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    client = connect()
    loaded = [m.name for m in client.ps().models]
    from corral.store.names import InvalidModelName, ModelName

    try:
        wanted = ModelName.parse(args.model).display_shortest().lower()
    except InvalidModelName:
        wanted = args.model.lower()
    if not any((n or "").lower() == wanted for n in loaded):
        print(f'Error: couldn\'t find model "{args.model}" to stop', file=sys.stderr)
        return 1
    client.generate(model=args.model, prompt="", keep_alive=0)
    return 0
