"""``corral pull MODEL`` and ``corral push MODEL``: the server's progress as one line per step.

On a terminal every layer gets a bar that is redrawn in place (``pulling 633fc5be925f: 42% ▕███  ▏
41 MB/98 MB``); into a pipe or a file each step is written once, a layer when it is complete, so logs
stay readable.  ``corral run`` calls :func:`pull_with_progress` for a model the server lacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from corral.cli.common import connect
from corral.cli.humanize import human_bytes
from corral.client import Client, ResponseError

__all__ = ["ProgressView", "cmd_pull", "cmd_push", "pull_with_progress"]

_BAR = 25
_REDRAW = 0.1


class ProgressView:
    """Renders progress parts (``status``, ``digest``, ``total``, ``completed``) to a stream."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.lines: dict[str, str] = {}
        self._written: set[str] = set()
        self._drawn = 0
        self._drawn_at = 0.0

    @staticmethod
    def render(status: str, total: int, completed: int) -> str:
        if not total:
            return status
        fraction = min(max(completed / total, 0.0), 1.0)
        filled = int(fraction * _BAR)
        bar = "█" * filled + " " * (_BAR - filled)
        return f"{status}: {int(fraction * 100):3d}% ▕{bar}▏ {human_bytes(completed)}/{human_bytes(total)}"

    def update(self, status: str, digest: str | None = None, total: int | None = None,
               completed: int | None = None) -> None:
        key = digest or status
        total, completed = total or 0, completed or 0
        new = key not in self.lines
        self.lines[key] = self.render(status, total, completed) if digest else status
        if self.tty:
            # New lines and finished layers show at once; a moving bar at most every 0.1 s.
            if new or not digest or completed >= total or time.monotonic() - self._drawn_at >= _REDRAW:
                self._redraw()
        elif key not in self._written and (not digest or (total and completed >= total)):
            self._written.add(key)
            print(self.lines[key], file=self.out, flush=True)

    def finish(self) -> None:
        if self.tty:
            self._redraw()
            return
        for key, line in self.lines.items():  # layers that never completed (an error cut them short)
            if key not in self._written:
                self._written.add(key)
                print(line, file=self.out, flush=True)

    def _redraw(self) -> None:
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        body = "".join(f"\x1b[2K{line}\n" for line in self.lines.values())
        self.out.write(up + body)
        self.out.flush()
        self._drawn = len(self.lines)
        self._drawn_at = time.monotonic()


def _show(parts: Iterable[Any], view: ProgressView) -> None:
    try:
        for part in parts:
            view.update(part.status or "", part.digest, part.total, part.completed)
    finally:
        view.finish()


def pull_with_progress(client: Client, model: str, *, insecure: bool = False, out: TextIO | None = None) -> int:
    """Pull ``model`` through the server, drawing its progress; 0 on success, else 1 (error printed)."""
    try:
        _show(client.pull(model, insecure=insecure, stream=True), ProgressView(out))
    except ResponseError as exc:
        print(f"Error: {exc.error}", file=sys.stderr)
        return 1
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    return pull_with_progress(connect(), args.model, insecure=args.insecure)


def cmd_push(args: argparse.Namespace) -> int:
    client = connect()
    try:
        _show(client.push(args.model, insecure=args.insecure, stream=True), ProgressView())
    except ResponseError as exc:
        print(f"Error: {exc.error}", file=sys.stderr)
        return 1
    return 0
