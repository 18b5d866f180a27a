"""Runners on a Ray cluster (``corral serve --cluster ADDRESS``): Ray places actors, corral schedules.

Ray is the cluster engine only. The scheduler keeps every rule it has on one machine (keep-alive,
eviction, queues, memory fit) and applies them per node; this backend tells it what the live nodes offer and
starts a runner as an actor pinned to the node the scheduler chose:

- **Nodes.** Ray's live nodes, each with a :class:`~corral.runner.rayactor.NodeAgent` (started on first
  sight). A node's memory is its Ray ``memory`` resource (``ray start --memory``), or what its agent reports
  free if that is less; its CPUs are Ray's ``CPU`` resource. A runner claims ``num_thread`` CPUs (all of the
  node's by default, as llama.cpp would use them) and its memory estimate, so Ray's own accounting agrees.
- **Blobs.** The server's own node reads the store as it is. Another node's agent fetches the blobs it
  lacks from this server, ``GET /api/blobs/{digest}``, checked against the digest as a pull is; nothing goes
  through Ray's object store.
- **Failures.** Restarts and retries are off (sampling cannot be replayed; the scheduler decides where a
  model loads again). An actor that dies, or whose node dies, ends its streams with Ollama's ``llama runner
  process has terminated: ...`` naming the node, and leaves the scheduler's table.

Imported only when ``--cluster`` asks for it: nothing else in corral imports Ray.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncGenerator
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from corral.runner.blobfetch import digest_of
from corral.runner.rayactor import NodeAgent, RunnerActor
from corral.scheduler.backend import Node
from corral.scheduler.handle import RunnerError, RunnerHandle, RunnerSpec

log = logging.getLogger("corral.scheduler")

RemoteRunner = ray.remote(RunnerActor)
RemoteAgent = ray.remote(NodeAgent)
AGENT_TIMEOUT = 5.0  # an agent that does not answer this fast is on a node being lost


def _cause(exc: BaseException) -> str:
    """What went wrong in a Ray task, without Ray's traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, RayError):
        return str(cause)
    text = str(exc)
    if "node has died" in text or "node died" in text:
        return "its node died"
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class RayBackend:
    clustered = True

    def __init__(self, address: str, server_url: str, headers: dict[str, str] | None = None) -> None:
        # ray://HOST:PORT names the cluster as the issue and users write it; corral joins it as a driver on
        # this node through the GCS at HOST:PORT (what `ray start --head` prints), not through Ray Client,
        # which needs grpcio (ray[client]) and a server the head does not start by default
        self.address = address.removeprefix("ray://")
        self.server_url = server_url
        self.headers = headers or {}
        self.home = ""  # the node this server runs on: it reads the store directly
        self._agents: dict[str, Any] = {}

    def connect(self) -> None:
        """Join the cluster (blocking; raises what ray.init raises)."""
        if ray.is_initialized():
            return
        host, _, port = self.address.rpartition(":")
        if host and port.isdigit():
            # ray.init retries an address where nothing answers for ever; say so at once instead
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
            except OSError as exc:
                raise ConnectionError(f"nothing answers at {self.address} ({exc.strerror or exc}); start the "
                                      "head node with `ray start --head --port PORT` and give its address") from None
        # Ray's C++ core otherwise installs a crash handler for SIGTERM too, which prints a stack dump over
        # uvicorn's graceful shutdown
        os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
        main = threading.current_thread() is threading.main_thread()
        before = signal.getsignal(signal.SIGTERM) if main else None
        ray.init(address=self.address, namespace="corral", log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=False)
        if main:  # Ray's own SIGTERM handler exits with status 15 after uvicorn's graceful shutdown re-raises it
            signal.signal(signal.SIGTERM, before)
        self.home = ray.get_runtime_context().get_node_id()

    async def start(self) -> None:
        await asyncio.to_thread(self.connect)
        nodes = await self.nodes({})
        log.info("joined the Ray cluster at %s: %d node(s): %s", self.address, len(nodes),
                 ", ".join(f"{n.label} ({n.capacity / 2**30:.1f} GiB, {n.cpus or 0:g} CPU)" for n in nodes))

    async def nodes(self, used: dict[str, int]) -> list[Node]:
        alive = [n for n in await asyncio.to_thread(ray.nodes) if n.get("Alive")]
        for gone in set(self._agents) - {n["NodeID"] for n in alive}:
            self._agents.pop(gone)
        for n in alive:
            if n["NodeID"] not in self._agents:
                strategy = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                self._agents[n["NodeID"]] = RemoteAgent.options(
                    num_cpus=0, max_restarts=0, max_task_retries=0, scheduling_strategy=strategy).remote()

        async def describe(n: dict[str, Any]) -> Node | None:
            try:
                info = await asyncio.wait_for(self._agents[n["NodeID"]].info.remote(), AGENT_TIMEOUT)
            except (RayError, TimeoutError) as exc:
                log.warning("node %s does not answer: %s", n["NodeID"][:12], _cause(exc))
                return None
            resources = n.get("Resources", {})
            free = int(info["mem_available"]) + used.get(n["NodeID"], 0)
            capacity = min(int(resources.get("memory", free)), free, info.get("max_memory") or free)
            # this server's own node reads the store: what its folder holds does not matter
            blobs = frozenset() if n["NodeID"] == self.home else frozenset(info["blobs"])
            return Node(n["NodeID"], address=n.get("NodeManagerAddress", ""), capacity=capacity,
                        cpus=float(resources.get("CPU", 0)), blobs=blobs)

        described = await asyncio.gather(*(describe(n) for n in alive))
        # this server's own node last: among equals the scheduler takes the first, and the head node also
        # carries the API server and Ray's control processes
        return sorted((n for n in described if n is not None), key=lambda n: n.id == self.home)

    def threads(self, spec: RunnerSpec, node: Node) -> int:
        return spec.num_thread or max(1, int(node.cpus or 0))

    def runner(self, spec: RunnerSpec, node: Node, size: int) -> RunnerHandle:
        return RayRunnerHandle(self, spec, node, size)

    async def local_paths(self, spec: RunnerSpec, node: Node) -> RunnerSpec:
        """``spec`` with paths that exist on ``node``: the store's on this server's node, else the node's
        own copies (fetched now where it lacks them). A prompt cache folder is this machine's, so elsewhere
        the cache lives in memory only."""
        if node.id == self.home:
            return spec
        files = [spec.model_path, *spec.adapters, spec.draft_path, spec.projector]
        digests: dict[str, str] = {}
        for f in filter(None, files):
            digest = digest_of(f)
            if digest is None:
                raise RunnerError(f"{f} is not a blob of the store, so node {node.label} cannot fetch it")
            digests[f] = digest
        try:
            where = await self._agents[node.id].ensure.remote(self.server_url, sorted(set(digests.values())),
                                                              self.headers)
        except RayError as exc:
            raise RunnerError(f"node {node.label} could not fetch the model: {_cause(exc)}") from None

        def local(f: str) -> str:
            return str(where[digests[f]]) if f else f

        return dataclasses.replace(spec, model_path=local(spec.model_path),
                                   adapters=tuple(local(a) for a in spec.adapters), draft_path=local(spec.draft_path),
                                   projector=local(spec.projector), prompt_cache_dir="")

    async def close(self) -> None:
        for agent in self._agents.values():
            try:
                ray.kill(agent, no_restart=True)
            except RayError:
                pass
        self._agents.clear()
        await asyncio.to_thread(ray.shutdown)


class RayRunnerHandle(RunnerHandle):
    """A runner actor behind the same interface as a runner subprocess's handle."""

    def __init__(self, backend: RayBackend, spec: RunnerSpec, node: Node, size: int) -> None:
        super().__init__(spec)
        self.backend = backend
        self.node = node
        self.size = size
        self.actor: Any = None
        self._pid: int | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    async def start(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                spec = await self.backend.local_paths(self.spec, self.node)
                threads = self.backend.threads(self.spec, self.node)
                spec = dataclasses.replace(spec, num_thread=threads)
                self.actor = RemoteRunner.options(
                    num_cpus=threads, memory=max(1, self.size), max_restarts=0, max_task_retries=0,
                    max_concurrency=10_000,  # every request is a pending call: never make one wait for another
                    scheduling_strategy=NodeAffinitySchedulingStrategy(self.node.id, soft=False),
                ).remote(spec.options())
                first = await self.actor.ready.remote()
        except TimeoutError:
            await self.kill()
            raise RunnerError("timed out waiting for llama runner to start") from None
        except RayError as exc:
            await self.kill()
            raise RunnerError(f"llama runner process has terminated: {self._where()}: {_cause(exc)}") from None
        if first.get("kind") != "ready":
            await self.kill()
            raise RunnerError(first.get("error") or "llama runner failed to start")
        self.info = first
        self._pid = first.get("pid")
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def _where(self) -> str:
        return f"ray actor on node {self.node.label}"

    async def _watch(self) -> None:
        try:
            why = await self.actor.watch.remote()
        except RayError as exc:
            why = _cause(exc)
        except asyncio.CancelledError:
            return
        self._ended(why)

    def _ended(self, why: str) -> None:
        if self.dead:
            return
        self.dead = True
        self.exit_reason = f"{self._where()}: {why}"
        log.info("runner %s ended: %s", self._pid, self.exit_reason)
        error = {"kind": "error", "error": f"llama runner process has terminated: {self.exit_reason}"}
        for stream in self._streams.values():
            stream.queue.put_nowait(error)
        self.closed.set()

    def _check(self) -> None:
        if self.dead or self.actor is None:
            raise RunnerError(f"llama runner process has terminated: {self.exit_reason or 'unknown'}")

    async def call(self, kind: str, **fields: Any) -> dict[str, Any]:
        stream = self._open()
        try:
            self._check()
            msg: dict[str, Any] = await self.actor.call.remote({"kind": kind, "id": stream.id, **fields})
        except RayError as exc:
            self._ended(_cause(exc))
            raise RunnerError(f"llama runner process has terminated: {self.exit_reason}") from None
        finally:
            self._streams.pop(stream.id, None)
        if msg["kind"] == "error":
            raise RunnerError(msg["error"], msg.get("code"))
        return msg

    async def generate(self, **submit: Any) -> AsyncGenerator[dict[str, Any], None]:
        stream = self._open()
        finished = False
        refs: Any = None
        try:
            self._check()
            refs = self.actor.generate.options(num_returns="streaming").remote(
                {"kind": "submit", "id": stream.id, **submit})
            async for ref in refs:
                for msg in await ref:
                    kind = msg["kind"]
                    if kind == "error":
                        finished = True
                        raise RunnerError(msg["error"], msg.get("code"))
                    finished = kind == "done"
                    yield msg
                    if finished:
                        return
            finished = True
            raise RunnerError(f"llama runner process has terminated: {self._where()}: the stream ended early")
        except RayError as exc:
            finished = True
            self._ended(_cause(exc))
            raise RunnerError(f"llama runner process has terminated: {self.exit_reason}") from None
        finally:
            self._streams.pop(stream.id, None)
            if not finished and refs is not None and not self.dead:
                try:
                    ray.cancel(refs)  # the actor's generator ends, and cancels the request in the loop
                except RayError:
                    pass

    async def kill(self) -> None:
        if self.actor is not None:
            try:
                # the loop writes its prompt cache (if it has a folder) before the process ends
                await asyncio.wait_for(self.actor.stop.remote(), 10 if self.spec.prompt_cache_dir else 3)
            except (RayError, TimeoutError):
                pass
            try:
                ray.kill(self.actor, no_restart=True)
            except RayError:
                pass
        if self._watcher is not None:
            self._watcher.cancel()
        self._ended("unloaded")
