"""``corral serve``: the server in the foreground, configured by the OLLAMA_* environment.

The address is bound first, as Ollama's ``net.Listen`` is: a taken port is reported at once in Go's words
(``Error: listen tcp 127.0.0.1:11434: bind: address already in use``, exit 1), before any model is
imported or ``Listening`` is logged.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from corral.config import Settings


class ListenError(Exception):
    """The address could not be bound; the message is Go's ``*net.OpError`` text."""


def _go_addr(host: str, port: int) -> str:
    """The address as Go prints it: resolved, IPv6 in brackets."""
    try:
        host = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    except OSError:
        pass
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (SO_REUSEADDR, as Go and uvicorn set it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except socket.gaierror as exc:
        sock.close()
        raise ListenError(f"listen tcp: lookup {host}: {exc.strerror or exc}") from None
    except OSError as exc:
        sock.close()
        # Go's errno texts are the C library's with a lower-case first letter.
        text = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(f"listen tcp {_go_addr(host, port)}: bind: {text[:1].lower()}{text[1:]}") from None
    return sock


RAY_MISSING = ("--cluster needs Ray, which is not installed here: pip install 'corral[ray]' "
               "(on the server and on every node of the cluster)")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if getattr(args, "cluster", None):
        settings.cluster = str(args.cluster)
    if settings.cluster:
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            print(f"Error: {RAY_MISSING}", file=sys.stderr)
            return 1
    try:
        sock = listen(settings.host, settings.port)
    except ListenError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    from corral.server.app import serve

    serve(settings, sock)
    return 0
