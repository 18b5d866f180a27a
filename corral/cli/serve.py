"""``corral serve``: the server in the foreground, configured by the OLLAMA_* environment."""

from __future__ import annotations

import argparse

from corral.config import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    from corral.server.app import serve

    serve(Settings.from_env())
    return 0
