"""The runner as a Ray actor, and the agent that prepares a node for runners.

:class:`RunnerActor` starts the same runner as on one machine, ``python -m corral.runner`` with the same
arguments, as its own child over a socket pair: the engine and batching loop cannot tell a Ray actor from the
server. The actor's methods are the server's end of that channel. A generating request comes back through a
Ray streaming generator, a few messages (at most ``BATCH_SECONDS`` of them) per yielded object, since each
object costs Ray a fraction of a millisecond however small; a generator the server cancels (its client left)
cancels the request in the loop, which then frees the slot.

:class:`NodeAgent` is one small actor per node: what the node has (free memory, the blobs in its folder),
and blobs fetched from the server that it lacks, digest-checked (:mod:`corral.runner.blobfetch`).

Neither imports Ray: the server applies ``ray.remote`` to them (``corral.scheduler.raybackend``), and Ray
imports this module by name on the node, where corral must be installed as on the server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from corral.runner import protocol
from corral.runner.meminfo import mem_available

BATCH_SECONDS = 0.02  # messages of one stream gathered into one yielded object (the first goes alone)
TERMINAL = ("done", "error")


class RunnerActor:
    def __init__(self, argv: list[str]) -> None:
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        # The runner is a process of its own, as on one machine: a crash in llama.cpp ends it, not this Ray
        # worker, which then reports how it ended; and its loop has the process (and the GIL) to itself. It
        # exits when its channel closes: on stop(), or when this process dies with its node.
        self._sock, child = socket.socketpair()
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "corral.runner", "--fd", str(child.fileno()), *argv],
                                          pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            child.close()

    async def ready(self) -> dict[str, Any]:
        """The runner's ``ready`` message (or its load error), with its pid; starts routing."""
        reader, self._writer = await asyncio.open_connection(sock=self._sock, limit=protocol.MAX_FRAME)
        try:
            first = await _read(reader)
        except (asyncio.IncompleteReadError, protocol.ChannelClosed, OSError):
            code = await asyncio.to_thread(self._proc.wait)
            return {"kind": "error", "error": f"llama runner process has terminated: {_describe_exit(code)}"}
        task = asyncio.get_running_loop().create_task(self._route(reader))
        self._tasks.add(task)
        return first

    async def _route(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                msg = await _read(reader)
                queue = self._queues.get(msg.get("id", ""))
                if queue is not None:
                    queue.put_nowait(msg)
        except (asyncio.IncompleteReadError, protocol.ChannelClosed, ConnectionError, OSError):
            pass
        self._closed.set()
        for queue in self._queues.values():
            queue.put_nowait({"kind": "error", "error": "the runner's loop ended"})

    def _send(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """Write one frame; an error message instead when it cannot go."""
        if self._writer is None or self._closed.is_set():
            return {"kind": "error", "id": msg.get("id", ""), "error": "the runner's loop ended"}
        try:
            self._writer.write(protocol.encode(msg))
        except protocol.FrameTooLarge as exc:
            return {"kind": "error", "id": msg.get("id", ""), "error": f"request too large: {exc}",
                    "code": "too_large"}
        return None

    async def call(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A request with one reply: tokenize, detokenize, embed, stats."""
        queue = self._queues[msg["id"]] = asyncio.Queue()
        try:
            failed = self._send(msg)
            return failed if failed is not None else await queue.get()
        finally:
            self._queues.pop(msg["id"], None)

    async def generate(self, msg: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        """A ``submit``'s messages, in batches, until ``done`` or ``error``."""
        rid = msg["id"]
        queue = self._queues[rid] = asyncio.Queue()
        finished = False
        try:
            failed = self._send(msg)
            if failed is not None:
                finished = True
                yield [failed]
                return
            loop = asyncio.get_running_loop()
            first = True
            while not finished:
                batch = [await queue.get()]
                deadline = loop.time() + (0 if first else BATCH_SECONDS)
                first = False
                while batch[-1]["kind"] not in TERMINAL:
                    if not queue.empty():
                        batch.append(queue.get_nowait())
                        continue
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(queue.get(), remaining))
                    except TimeoutError:
                        break
                finished = batch[-1]["kind"] in TERMINAL
                yield batch
        finally:
            if finished:
                self._queues.pop(rid, None)
            else:  # the server cancelled the generator: its client left
                self._send({"kind": "cancel", "id": rid})
                task = asyncio.get_running_loop().create_task(self._drain(rid, queue))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _drain(self, rid: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Wait (briefly) for a cancelled request's last message, so its queue does not outlive it."""
        try:
            async with asyncio.timeout(30):
                while (last := await queue.get())["kind"] not in TERMINAL:
                    pass
            # in the actor's log (the node's worker-*.err), as a local runner's is in the server's
            print(f"request {rid} canceled by its client: {last.get('done_reason', last['kind'])}, "
                  f"{last.get('tokens_after_cancel', '?')} token(s) generated after the cancel",
                  file=sys.stderr, flush=True)
        except TimeoutError:
            pass
        finally:
            self._queues.pop(rid, None)

    async def watch(self) -> str:
        """Returns, with how the runner process ended, when its channel has closed; the server keeps one
        call of this pending, and learns through Ray's error that the actor or its node died."""
        await self._closed.wait()
        code = await asyncio.to_thread(self._proc.wait)
        return _describe_exit(code)

    async def stop(self) -> None:
        """Close the channel: the loop writes its prompt cache if it has a folder, then ends the process."""
        if self._writer is not None:
            self._writer.close()
        await asyncio.to_thread(self._proc.wait)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal: {signal.Signals(-code).name}"
        except ValueError:
            return f"signal: {-code}"
    return f"exit status {code}"


async def _read(reader: asyncio.StreamReader) -> dict[str, Any]:
    (length,) = protocol.HEADER.unpack(await reader.readexactly(protocol.HEADER.size))
    return protocol.decode(await reader.readexactly(length))


def node_blob_folder() -> Path:
    """Where a node keeps the blobs it fetched: ``CORRAL_NODE_BLOBS`` in the environment ``ray start`` ran
    with, else ``~/.cache/corral/blobs``."""
    configured = os.environ.get("CORRAL_NODE_BLOBS", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "corral" / "blobs"


class NodeAgent:
    """One per node, placed there by the server; sync methods, so two loads' fetches take turns."""

    def __init__(self) -> None:
        self.folder = node_blob_folder()

    def info(self) -> dict[str, Any]:
        held = []
        if self.folder.is_dir():
            held = sorted(p.name.replace("-", ":", 1) for p in self.folder.glob("sha256-*") if "." not in p.name)
        from corral.config import parse_bytes

        # CORRAL_MAX_MEMORY in the environment `ray start` ran with: this node's cap, as on one machine
        cap = parse_bytes(os.environ.get("CORRAL_MAX_MEMORY", ""))
        return {"mem_available": mem_available(), "max_memory": cap, "blobs": held}

    def ensure(self, url: str, digests: list[str], headers: dict[str, str]) -> dict[str, str]:
        """A local path for each digest, fetching from ``url`` (the server) those the folder lacks."""
        from corral.runner.blobfetch import fetch_blob

        return {d: str(fetch_blob(url, d, self.folder, headers)) for d in digests}
