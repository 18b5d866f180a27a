"""Which runners are loaded, for how long, and who waits: Ollama's scheduling rules (reference §6).

- One runner per :class:`RunnerSpec` (weights, load options, embedding mode). A request whose spec differs
  from the loaded runner of the same weights waits for that runner to go idle, then reloads it.
- Requests for a loaded model skip the load queue; others wait there and load one at a time, first come
  first served. ``OLLAMA_MAX_QUEUE`` bounds every model's queue, loaded or not (Ollama's bounds only the load
  queue, its issue #7758): the requests of a model that wait (for its load, or for one of its runner's
  ``num_parallel`` slots) number at most that; one more is a 503, and other models go on serving.
- Before a load, runners are evicted while the loaded count would pass ``OLLAMA_MAX_LOADED_MODELS`` or the
  memory estimate would not fit: idle ones with the shortest keep-alive first; otherwise wait for one to go idle.
- An idle runner unloads when its keep-alive expires; ``keep_alive`` 0 unloads it as soon as it is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from corral.runner.blobfetch import digest_of
from corral.scheduler.backend import Backend, LocalBackend, Node
from corral.scheduler.handle import RunnerError, RunnerHandle, RunnerSpec

log = logging.getLogger("corral.scheduler")


@dataclass(frozen=True)
class ModelRef:
    """What the scheduler needs to know of a model: how /api/ps names it and its memory estimate."""

    name: str
    digest: str
    details: dict[str, Any]
    estimate_bytes: int
    replicas: int = 1  # runners of it to keep on different nodes while all are busy (CORRAL_REPLICAS)


# How long a freshly loaded runner waits for the requests that asked for it before keep_alive applies.
LOAD_GRACE = 5.0


class QueueFull(Exception):
    """More requests wait than ``OLLAMA_MAX_QUEUE`` allows."""


@dataclass
class SchedulerStats:
    """What happened to runners, by model name, for the server's metrics (the scheduler knows nothing of
    Prometheus): loads, unloads (an expired keep-alive, a reload, a request), evictions to make room, and
    runners that ended on their own."""

    loads: Counter[str] = field(default_factory=Counter)
    unloads: Counter[str] = field(default_factory=Counter)
    evictions: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)


@dataclass
class Loaded:
    """A runner the scheduler keeps, with what /api/ps reports about it."""

    spec: RunnerSpec
    handle: RunnerHandle
    model: ModelRef
    size: int
    keep_alive: float
    refs: int = 0
    expires_at: float = math.inf  # wall-clock seconds; inf = never
    loaded_at: float = field(default_factory=time.time)
    node: Node = field(default_factory=lambda: Node("local"))
    replica: int = 0  # several runners of one spec (replicas on a cluster) differ by this
    _timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return self.refs == 0

    @property
    def key(self) -> tuple[RunnerSpec, int]:
        return (self.spec, self.replica)


class Scheduler:
    def __init__(self, *, max_loaded: int, max_queue: int, default_keep_alive: float, load_timeout: float,
                 max_memory: int | None = None, backend: Backend | None = None) -> None:
        self.max_loaded = max_loaded or 3  # Ollama's auto: 3 per GPU, 3 on CPU (on a cluster: per node)
        self.max_queue = max_queue
        self.default_keep_alive = default_keep_alive
        self.load_timeout = load_timeout
        self.backend: Backend = backend or LocalBackend(max_memory)
        self.loaded: dict[tuple[RunnerSpec, int], Loaded] = {}
        self._replicating: set[RunnerSpec] = set()
        self._load_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._pending = 0
        self._background: set[asyncio.Task[None]] = set()
        self._loading: dict[RunnerSpec, asyncio.Task[Loaded]] = {}
        self._waiters: dict[RunnerSpec, int] = {}
        self._starting: set[RunnerSpec] = set()
        self._queued: Counter[str] = Counter()  # requests waiting for a load, by weights
        self._names: dict[str, str] = {}  # weights -> the model name last seen for them (metrics)
        self.stats = SchedulerStats()

    # --- acquiring a runner -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def use(self, model: ModelRef, spec: RunnerSpec, keep_alive: float | None) -> AsyncIterator[Loaded]:
        """Hold a runner for one request; on exit its keep-alive timer starts if it went idle."""
        entry = await self.acquire(model, spec, keep_alive)
        try:
            yield entry
        finally:
            self.release(entry)

    def queue_depth(self, model_path: str) -> int:
        """The requests for these weights that wait: for a load, or for a slot of a loaded runner."""
        waiting = self._queued[model_path]
        for entry in self.loaded.values():
            if entry.spec.model_path == model_path:
                waiting += max(0, entry.refs - entry.spec.num_parallel)
        return waiting

    def queue_depths(self) -> dict[str, int]:
        """:meth:`queue_depth` by model name, for every model loaded or waited for."""
        paths = {e.spec.model_path for e in self.loaded.values()} | {p for p, n in self._queued.items() if n}
        out: Counter[str] = Counter()
        for path in paths:
            out[self._names.get(path, path)] += self.queue_depth(path)
        return dict(out)

    async def acquire(self, model: ModelRef, spec: RunnerSpec, keep_alive: float | None) -> Loaded:
        self._names[spec.model_path] = model.name
        entry = self._ready(spec)
        if entry is not None and entry.refs < entry.spec.num_parallel:  # a free slot: no wait at all
            self._hold(entry, keep_alive)
            return entry
        if self.queue_depth(spec.model_path) >= self.max_queue:
            raise QueueFull
        if entry is not None:  # loaded and healthy: skip the load queue, wait in the runner's for a slot
            self._hold(entry, keep_alive)
            self._replicate(model, spec)
            return entry
        if self._pending >= self.max_queue:
            raise QueueFull
        self._pending += 1
        self._queued[spec.model_path] += 1
        log.info("request queued for %s: %d pending", spec.model_path, self._pending)
        try:
            while True:
                # One load task per spec, shared by everyone waiting for it and shielded from their
                # cancellation: a client that gives up does not abort a load others may need.
                task = self._loading.get(spec)
                if task is None:
                    task = asyncio.get_running_loop().create_task(self._load_serialised(model, spec, keep_alive))
                    self._loading[spec] = task
                    task.add_done_callback(functools.partial(self._loaded_or_failed, spec))
                self._waiters[spec] = self._waiters.get(spec, 0) + 1
                try:
                    entry = await asyncio.shield(task)
                except asyncio.CancelledError:
                    # The client left. A load nobody waits for any more is dropped, unless the runner is
                    # already starting (then it finishes and idles out like any other).
                    if self._waiters.get(spec, 1) <= 1 and spec not in self._starting:
                        task.cancel()
                    raise
                finally:
                    self._waiters[spec] -= 1
                    if not self._waiters[spec]:
                        del self._waiters[spec]
                        self._notify()  # a runner nobody waits for any more may be unloaded now
                if not entry.handle.dead and self.loaded.get(entry.key) is entry:
                    self._hold(entry, keep_alive)
                    self._replicate(model, spec)
                    return entry
        finally:
            self._pending -= 1
            self._queued[spec.model_path] -= 1

    def _loaded_or_failed(self, spec: RunnerSpec, _task: asyncio.Task[Loaded]) -> None:
        self._loading.pop(spec, None)

    async def _load_serialised(self, model: ModelRef, spec: RunnerSpec, keep_alive: float | None) -> Loaded:
        async with self._load_lock:  # loads one at a time, first come first served (the lock is FIFO)
            entry = self._ready(spec)
            if entry is None:
                entry = await self._load(model, spec, keep_alive)
                # Idle until a waiter holds it, which happens only after this task has ended: keep_alive 0
                # must not unload it in between (the waiters would find it gone and load it again, forever).
                # The grace unloads it still if every waiter has left meanwhile.
                self._start_expiry(entry, at_least=LOAD_GRACE)
            return entry

    def find_ready(self, spec: RunnerSpec) -> Loaded | None:
        """The loaded, healthy runner for ``spec``, if any (acquire will not wait for it)."""
        return self._ready(spec)

    def _ready(self, spec: RunnerSpec) -> Loaded | None:
        """The healthy runner of ``spec`` with the fewest requests (there is more than one when replicated)."""
        ready = [e for e in self.loaded.values() if e.spec == spec and not e.handle.dead]
        return min(ready, key=lambda e: (e.refs, e.replica)) if ready else None

    def _replicate(self, model: ModelRef, spec: RunnerSpec) -> None:
        """Requests wait for a slot of ``spec``'s runners: start another runner on a node that has none, if
        the model asks for replicas and a node has room without evicting anything. The waiting requests stay
        where they are; the next ones go to the runner with the fewest."""
        if model.replicas <= 1 or spec in self._replicating or spec in self._loading:
            return
        mine = [e for e in self.loaded.values() if e.spec == spec and not e.handle.dead]
        if len(mine) >= model.replicas or sum(e.refs for e in mine) <= sum(e.spec.num_parallel for e in mine):
            return
        self._replicating.add(spec)

        async def load() -> None:
            try:
                async with self._load_lock:
                    node = await self._place(model.estimate_bytes, spec, replica=True)
                    if node is None:
                        log.info("no node has room for another replica of %s", model.name)
                        return
                    entry = await self._load(model, spec, None, node=node)
                    self._start_expiry(entry)
            except Exception as exc:  # a replica that fails to load changes nothing for the requests
                log.warning("replica of %s not loaded: %s", model.name, exc)
            finally:
                self._replicating.discard(spec)

        task = asyncio.get_running_loop().create_task(load())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _hold(self, entry: Loaded, keep_alive: float | None) -> None:
        entry.refs += 1
        if keep_alive is not None:  # sticky: a request without keep_alive keeps the runner's own
            entry.keep_alive = keep_alive
        if entry._timer is not None:
            entry._timer.cancel()
            entry._timer = None
        entry.expires_at = time.time() + entry.keep_alive if math.isfinite(entry.keep_alive) else math.inf

    def release(self, entry: Loaded) -> None:
        entry.refs -= 1
        if entry.refs > 0 or entry.handle.dead:
            if entry.handle.dead:
                self._forget(entry)
            return
        self._start_expiry(entry)
        self._notify()

    def _start_expiry(self, entry: Loaded, at_least: float = 0.0) -> None:
        if entry._timer is not None:
            entry._timer.cancel()
            entry._timer = None
        delay = max(entry.keep_alive, at_least)
        if delay <= 0:
            self._schedule_unload(entry)
        elif math.isfinite(delay):
            entry.expires_at = time.time() + delay
            loop = asyncio.get_running_loop()
            entry._timer = loop.call_later(delay, self._schedule_unload, entry)
        else:
            entry.expires_at = math.inf

    def _schedule_unload(self, entry: Loaded) -> None:
        task = asyncio.get_running_loop().create_task(self.unload_entry(entry))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _notify(self) -> None:
        async def _wake() -> None:
            async with self._changed:
                self._changed.notify_all()
        task = asyncio.get_running_loop().create_task(_wake())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- loading and eviction -----------------------------------------------------------------------

    async def _load(self, model: ModelRef, spec: RunnerSpec, keep_alive: float | None,
                    node: Node | None = None) -> Loaded:
        # A runner of the same weights with other load options goes first: it must not share memory with
        # its replacement (Ollama's needsReload). An embedding runner and a generating one of the same model
        # stay side by side: Ollama serves both from one runner, so a program alternating chat and embed
        # on one model never waits for a load there.
        for other in [e for e in self.loaded.values() if e.spec != spec
                      and e.spec.model_path == spec.model_path and e.spec.embedding == spec.embedding]:
            await self._wait_idle(other)
            await self.unload_entry(other)
        size = model.estimate_bytes
        if node is None:
            node = await self._make_room(size, spec)
        taken = {e.replica for e in self.loaded.values() if e.spec == spec}
        replica = min(set(range(len(taken) + 1)) - taken)
        handle = self.backend.runner(spec, node, size)
        t0 = time.perf_counter()
        timeout = None if math.isinf(self.load_timeout) else self.load_timeout
        self._starting.add(spec)
        try:
            await handle.start(timeout)
        except BaseException:
            await asyncio.shield(handle.kill())  # never leave a half-started runner behind
            raise
        finally:
            self._starting.discard(spec)
        log.info("loaded %s in %.2fs (pid %s, ctx %d x %d%s)", spec.model_path, time.perf_counter() - t0,
                 handle.pid, spec.num_ctx, spec.num_parallel,
                 f", node {node.label}" if self.backend.clustered else "")
        self.stats.loads[model.name] += 1
        entry = Loaded(spec=spec, handle=handle, model=model, size=size,
                       keep_alive=self.default_keep_alive if keep_alive is None else keep_alive,
                       node=node, replica=replica)
        entry.loaded_at = time.time()
        self.loaded[entry.key] = entry
        watcher = asyncio.get_running_loop().create_task(self._watch(entry))
        self._background.add(watcher)
        watcher.add_done_callback(self._background.discard)
        return entry

    async def _watch(self, entry: Loaded) -> None:
        """A runner that dies leaves the table at once; its requests already got their error lines."""
        await entry.handle.closed.wait()
        if self.loaded.get(entry.key) is entry:
            log.warning("runner %s ended: %s", entry.handle.pid, entry.handle.exit_reason)
            self.stats.crashes[entry.model.name] += 1
            self._forget(entry)

    def _forget(self, entry: Loaded) -> None:
        if self.loaded.get(entry.key) is entry:
            del self.loaded[entry.key]
        if entry._timer is not None:
            entry._timer.cancel()
        self._notify()

    async def _place(self, size: int, spec: RunnerSpec, *, replica: bool = False) -> Node | None:
        """Among the nodes where a runner of ``size`` fits now (Ollama's rules, per node: at most
        ``max_loaded`` runners, their estimates within the node's memory), one that holds the weights already
        (nothing to fetch), then the one with the most memory left; None if none fits. A replica goes only to
        a node without a runner of its spec."""
        used: Counter[str] = Counter()
        for e in self.loaded.values():
            used[e.node.id] += e.size
        weights = digest_of(spec.model_path)
        best: tuple[tuple[bool, int], Node] | None = None
        for node in await self.backend.nodes(dict(used)):
            there = [e for e in self.loaded.values() if e.node.id == node.id]
            if len(there) + 1 > self.max_loaded or (replica and any(e.spec == spec for e in there)):
                continue
            claimed = sum(self.backend.threads(e.spec, node) for e in there) + self.backend.threads(spec, node)
            if node.cpus is not None and claimed > node.cpus:
                continue
            left = node.capacity - used[node.id] - size
            # on one machine, one model always gets its chance, as Ollama tries a load even when tight
            if left < 0 and (self.backend.clustered or self.loaded):
                continue
            rank = (weights in node.blobs, left)
            if best is None or rank > best[0]:
                best = (rank, node)
        return best[1] if best else None

    async def _make_room(self, size: int, spec: RunnerSpec) -> Node:
        while (node := await self._place(size, spec)) is None:
            idle = sorted((e for e in self.loaded.values() if not self._claimed(e)),
                          key=lambda e: (e.keep_alive, e.spec.model_path))
            if idle:
                log.info("evicting %s to make room", idle[0].spec.model_path)
                self.stats.evictions[idle[0].model.name] += 1
                await self.unload_entry(idle[0])
                continue
            if not self.loaded:  # nothing to wait for: no node can ever take it
                raise RunnerError(f"no node of the cluster has room for this model ({size / 2**20:.0f} MiB "
                                  f"with its context), nor the CPUs its threads claim")
            async with self._changed:
                await self._changed.wait()
        return node

    def _claimed(self, entry: Loaded) -> bool:
        """In use, or about to be: requests that waited for this runner's load hold it only once they
        wake, after the load has ended. Unloading it in between (to load another runner) sent them back
        to load it again: with two sets of load options, the two loads undid each other forever."""
        return not entry.idle or self._waiters.get(entry.spec, 0) > 0

    async def _wait_idle(self, entry: Loaded) -> None:
        while self._claimed(entry) and self.loaded.get(entry.key) is entry:
            async with self._changed:
                await self._changed.wait()

    # --- unloading ----------------------------------------------------------------------------------

    async def unload_entry(self, entry: Loaded) -> None:
        if not entry.idle:
            entry.keep_alive = 0  # unload as soon as the last request ends
            return
        if self.loaded.get(entry.key) is entry:
            self.stats.unloads[entry.model.name] += 1
        self._forget(entry)
        await entry.handle.kill()

    async def expire(self, model_path: str) -> bool:
        """Unload every runner of these weights when idle (keep_alive 0 with an empty prompt)."""
        found = False
        for entry in [e for e in self.loaded.values() if e.spec.model_path == model_path]:
            found = True
            await self.unload_entry(entry)
        return found

    def find(self, model_path: str) -> Loaded | None:
        for entry in self.loaded.values():
            if entry.spec.model_path == model_path and not entry.handle.dead:
                return entry
        return None

    def ps(self) -> list[Loaded]:
        return sorted(self.loaded.values(), key=lambda e: -e.expires_at if math.isfinite(e.expires_at)
                      else -math.inf)

    async def shutdown(self) -> None:
        entries = list(self.loaded.values())
        self.loaded.clear()
        await asyncio.gather(*(e.handle.kill() for e in entries), return_exceptions=True)
        await self.backend.close()


__all__ = ["Loaded", "ModelRef", "QueueFull", "RunnerError", "RunnerSpec", "Scheduler", "SchedulerStats"]
