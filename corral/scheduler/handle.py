"""The server's end of one runner process: spawn it, talk to it over its channel, notice when it dies.

Each request gets its own asyncio queue keyed by request id; one reader task routes frames into them. When
the channel breaks (the runner crashed, was OOM-killed or SIGKILLed), every in-flight request receives an
error naming how the process ended, as Ollama's ``llama runner process has terminated: ...``.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from corral.runner import protocol

log = logging.getLogger("corral.runner")


class RunnerError(Exception):
    """A runner failed to load or ended while serving; the message is meant for the client."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # a machine-readable reason the runner gave (e.g. ``input_too_long``)

    @property
    def client_mistake(self) -> bool:
        """The request itself was at fault (a 400, not a 500): too large to send, or refused as bad."""
        return self.code in ("too_large", "bad_input")


@dataclass(frozen=True)
class RunnerSpec:
    """What identifies a runner: two requests with equal specs can share one process."""

    model_path: str
    num_ctx: int
    num_parallel: int
    num_batch: int = 512
    num_thread: int = 0
    use_mmap: bool = True
    adapters: tuple[str, ...] = ()
    embedding: bool = False
    kv_type: str = "f16"  # the KV cache's element type: f16, q8_0, q4_0 (quantized ones need flash attention)
    flash_attn: bool | None = None  # None: llama.cpp decides
    prompt_cache_mb: int = 0  # host memory for prompts evicted from the slots (0: none)
    draft_path: str = ""  # a draft model for speculative decoding (the model's DRAFT layer)
    projector: str = ""  # a vision projector (the model's projector layer): images in prompts
    draft_num_predict: int = 0  # tokens the draft guesses a step (Ollama's draft_num_predict; 0: no drafting)
    prompt_cache_dir: str = ""  # where those survive the runner (this spec's own folder; "": nowhere)

    def argv(self, fd: int) -> list[str]:
        return [sys.executable, "-m", runner_module(), "--fd", str(fd), *self.options()]

    def options(self) -> list[str]:
        """The runner's command-line options (a Ray actor parses the same ones)."""
        args = ["--model", self.model_path, "--ctx-size", str(self.num_ctx), "--parallel", str(self.num_parallel),
                "--batch-size", str(self.num_batch), "--threads", str(self.num_thread)]
        if not self.use_mmap:
            args.append("--no-mmap")
        for a in self.adapters:
            args += ["--lora", a]
        if self.embedding:
            args.append("--embedding")
        if self.kv_type != "f16":
            args += ["--kv-type", self.kv_type]
        if self.flash_attn is not None:
            args += ["--flash-attn", "on" if self.flash_attn else "off"]
        if self.projector:
            args += ["--projector", self.projector]
        if self.draft_path and self.draft_num_predict > 0:
            args += ["--draft", self.draft_path, "--draft-max", str(self.draft_num_predict)]
        if self.prompt_cache_mb:
            args += ["--prompt-cache-mb", str(self.prompt_cache_mb)]
            if self.prompt_cache_dir:
                args += ["--prompt-cache-dir", self.prompt_cache_dir]
        return args


def runner_module() -> str:
    """The module a runner process runs: ``CORRAL_FAKE_RUNNER=1`` swaps the engine for a scripted one (see
    :mod:`corral.scheduler.fakerunner`), so tests of routes and errors need no model and no load time."""
    fake = os.environ.get("CORRAL_FAKE_RUNNER", "").strip().lower() not in ("", "0", "false", "no", "off")
    return "corral.scheduler.fakerunner" if fake else "corral.runner"


def describe_exit(returncode: int | None) -> str:
    """Go's ProcessState wording, which Ollama's error text carries."""
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"signal: {-returncode}"
        words = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted",
                 "SIGTERM": "terminated", "SIGBUS": "bus error", "SIGILL": "illegal instruction"}
        return f"signal: {words.get(name, name.lower())}"
    return f"exit status {returncode}"


@dataclass
class Stream:
    """One request's view of the channel."""

    id: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


class RunnerHandle:
    _ids = itertools.count(1)

    def __init__(self, spec: RunnerSpec) -> None:
        self.spec = spec
        self.proc: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._streams: dict[str, Stream] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.dead = False
        self.exit_reason = ""
        self.closed = asyncio.Event()
        self.cancel_reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=64)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self, timeout: float | None) -> None:
        """Spawn the process and wait for ``ready``; on failure, kill it and raise RunnerError."""
        parent, child = socket.socketpair()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.spec.argv(child.fileno()), pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        finally:
            child.close()
        reader, self._writer = await asyncio.open_connection(sock=parent, limit=protocol.MAX_FRAME)
        self._stderr_task = asyncio.create_task(self._pump_stderr())
        try:
            first = await asyncio.wait_for(self._read(reader), timeout)
        except (TimeoutError, protocol.ChannelClosed, asyncio.IncompleteReadError) as exc:
            await self.kill()
            if isinstance(exc, TimeoutError):
                raise RunnerError("timed out waiting for llama runner to start") from None
            raise RunnerError(f"llama runner process has terminated: {self._why()}") from None
        if first.get("kind") != "ready":
            await self.kill()
            raise RunnerError(first.get("error") or "llama runner failed to start")
        self.info = first
        self._reader_task = asyncio.create_task(self._route(reader))

    async def _read(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        header = await reader.readexactly(protocol.HEADER.size)
        (length,) = protocol.HEADER.unpack(header)
        return protocol.decode(await reader.readexactly(length))

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._stderr_tail.append(line)
                log.debug("runner %s: %s", self.proc.pid, line)

    async def _route(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                msg = await self._read(reader)
                stream = self._streams.get(msg.get("id", ""))
                if stream is not None:
                    stream.queue.put_nowait(msg)
        except (asyncio.IncompleteReadError, protocol.ChannelClosed, ConnectionError, OSError):
            pass
        await self._on_exit()

    async def _on_exit(self) -> None:
        self.dead = True
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._stderr_task is not None:
            try:
                await asyncio.wait_for(self._stderr_task, 1)
            except (TimeoutError, asyncio.CancelledError):
                pass
        self.exit_reason = self._why()
        error = {"kind": "error", "error": f"llama runner process has terminated: {self.exit_reason}"}
        for stream in self._streams.values():
            stream.queue.put_nowait(error)
        self.closed.set()

    def _why(self) -> str:
        why = describe_exit(self.proc.returncode if self.proc else None)
        errors = [line for line in self._stderr_tail if "error" in line.lower()]
        return f"{why}: {errors[-1]}" if errors and not why.startswith("signal") else why

    # --- requests -----------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        if self.dead or self._writer is None:
            raise RunnerError(f"llama runner process has terminated: {self.exit_reason or 'unknown'}")
        try:
            frame = protocol.encode(message)
        except protocol.FrameTooLarge as exc:
            raise RunnerError(f"request too large: {exc}", "too_large") from None
        self._writer.write(frame)

    def _open(self) -> Stream:
        stream = Stream(id=str(next(self._ids)))
        self._streams[stream.id] = stream
        return stream

    async def call(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A request with one reply (tokenize, detokenize, stats, embed)."""
        stream = self._open()
        try:
            self._send({"kind": kind, "id": stream.id, **fields})
            msg = await stream.queue.get()
            if msg["kind"] == "error":
                raise RunnerError(msg["error"], msg.get("code"))
            return msg
        finally:
            self._streams.pop(stream.id, None)

    async def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return list((await self.call("tokenize", text=text, add_special=add_special))["tokens"])

    async def detokenize(self, tokens: list[int]) -> str:
        return str((await self.call("detokenize", tokens=tokens))["text"])

    async def generate(self, **submit: Any) -> AsyncGenerator[dict[str, Any], None]:
        """Streams ``token`` messages and ends with ``done``; raises RunnerError on ``error``.

        Closing the iterator early (client gone) sends ``cancel`` and waits briefly for the runner's
        ``done`` so the slot is known to be free.
        """
        stream = self._open()
        finished = False
        try:
            self._send({"kind": "submit", "id": stream.id, **submit})
            while True:
                msg = await stream.queue.get()
                kind = msg["kind"]
                if kind == "error":
                    finished = True
                    raise RunnerError(msg["error"], msg.get("code"))
                if kind == "done":
                    finished = True
                yield msg
                if finished:
                    return
        finally:
            if not finished and not self.dead:
                try:
                    self._send({"kind": "cancel", "id": stream.id})
                except RunnerError:
                    self._streams.pop(stream.id, None)
                else:
                    # We may be inside a cancelled scope (client gone), where no await may run: collect
                    # the runner's final report in a task of its own.
                    task = asyncio.get_running_loop().create_task(self._collect_cancel(stream))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            else:
                self._streams.pop(stream.id, None)

    async def _collect_cancel(self, stream: Stream) -> None:
        try:
            async with asyncio.timeout(30):
                while True:
                    msg = await stream.queue.get()
                    if msg["kind"] in ("done", "error"):
                        self.cancel_reports.append(msg)
                        log.info("request %s canceled by its client; %s token(s) generated after the cancel",
                                 stream.id, msg.get("tokens_after_cancel", "?"))
                        return
        except TimeoutError:
            pass
        finally:
            self._streams.pop(stream.id, None)

    # --- lifetime -----------------------------------------------------------------------------------

    async def kill(self) -> None:
        """Close the channel (the runner exits on EOF) and make sure the process is gone."""
        if self._writer is not None:
            self._writer.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                # a runner with a prompt cache folder first writes its cache there (at most 8 s)
                await asyncio.wait_for(self.proc.wait(), 10 if self.spec.prompt_cache_dir else 3)
            except TimeoutError:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await self.proc.wait()
        if self._reader_task is not None:
            await asyncio.wait([self._reader_task], timeout=5)
