"""Where runners run: the seam between the scheduler's rules and the processes it starts.

The scheduler decides which runners exist, for how long, and which node takes a new one; a backend says
what nodes there are (with the memory and CPUs each offers) and starts a runner on the node chosen. The
local backend has one node, this machine, and starts runner subprocesses (:class:`RunnerHandle`); the Ray
backend (:mod:`corral.scheduler.raybackend`, imported only for ``--cluster``) has the cluster's live nodes
and starts Ray actors wrapping the same engine and loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.scheduler.handle import RunnerHandle, RunnerSpec
from corral.scheduler.memory import available_memory


@dataclass(frozen=True)
class Node:
    """A place for runners. ``capacity``: the bytes its runners may use in all (what runs there now
    included); ``cpus``: the CPUs runners may claim there (a cluster's head node may offer none), None
    where CPUs are not counted."""

    id: str
    address: str = ""
    capacity: int = 0
    cpus: float | None = None
    blobs: frozenset[str] = frozenset()  # the digests it holds already (a cluster node's own folder)

    @property
    def label(self) -> str:
        """How logs and /api/ps name it."""
        return f"{self.address}/{self.id[:12]}" if self.address else self.id


class Backend(Protocol):
    clustered: bool

    async def nodes(self, used: dict[str, int]) -> list[Node]:
        """The nodes a runner may go to now; ``used``: the scheduler's estimate of what its runners take
        on each (by node id)."""
        ...

    def threads(self, spec: RunnerSpec, node: Node) -> int:
        """The CPUs a runner of ``spec`` claims on ``node`` (0: not counted)."""
        ...

    def runner(self, spec: RunnerSpec, node: Node, size: int) -> RunnerHandle:
        """A handle, not yet started, for a runner of ``spec`` on ``node`` (``size``: its estimate)."""
        ...

    def connect(self) -> None:
        """Blocking set-up before the server starts (joining a cluster); raises when that fails."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


LOCAL = "local"


class LocalBackend:
    """This machine: runners are subprocesses, memory is what the system offers (or ``max_memory``)."""

    clustered = False

    def __init__(self, max_memory: int | None = None) -> None:
        self.max_memory = max_memory

    async def nodes(self, used: dict[str, int]) -> list[Node]:
        return [Node(LOCAL, capacity=available_memory(self.max_memory, used.get(LOCAL, 0)))]

    def threads(self, spec: RunnerSpec, node: Node) -> int:
        return 0

    def runner(self, spec: RunnerSpec, node: Node, size: int) -> RunnerHandle:
        return RunnerHandle(spec)

    def connect(self) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
