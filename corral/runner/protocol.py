"""The channel between the server and a runner: length-prefixed JSON frames over a stream socket.

One persistent channel per runner, multiplexed by request id (``id``). Both ends import this module; it
depends on the standard library only, so the runner can one day sit on another machine.

Frame: 4-byte big-endian payload length, then a UTF-8 JSON object with at least ``kind``.

Server → runner: ``submit``, ``cancel``, ``tokenize``, ``detokenize``.
Runner → server: ``ready`` (once, after the model loaded), ``token`` (text for one request), ``done``,
``error``, ``result`` (reply to tokenize/detokenize).
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # a tokenized 1M-token context fits; anything larger is a protocol error


class ChannelClosed(Exception):
    """The other end closed the channel (EOF) or sent a malformed frame."""


class FrameTooLarge(ValueError):
    """A message too large to send: the other end would take it for a broken channel and hang up."""


def encode(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    if len(payload) > MAX_FRAME:
        raise FrameTooLarge(f"{len(payload)} bytes of JSON, over the channel's limit of {MAX_FRAME >> 20} MiB")
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes) -> dict[str, Any]:
    message = json.loads(payload)
    if not isinstance(message, dict):
        raise ChannelClosed("frame is not a JSON object")
    return message


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ChannelClosed("channel closed")
        chunks += chunk
    return bytes(chunks)


def recv_blocking(sock: socket.socket) -> dict[str, Any]:
    """Read one frame from a blocking socket (the runner's side)."""
    (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    if length > MAX_FRAME:
        raise ChannelClosed(f"frame of {length} bytes exceeds the limit")
    return decode(_recv_exact(sock, length))
