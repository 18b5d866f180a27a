"""The scheduler's rules per node (issue 22), with a backend of several made-up nodes over fake runners
(``corral.scheduler.fakerunner``: real processes and channels, no model). The Ray backend itself is tested on a
real cluster in tests/test_ray.py; these pin down the choices."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest

from corral.scheduler.backend import LocalBackend, Node
from corral.scheduler.handle import RunnerSpec
from corral.scheduler.scheduler import ModelRef, Scheduler

MB = 2**20


class Nodes(LocalBackend):
    """A cluster as the scheduler sees one: fixed nodes, runners as local fake subprocesses."""

    clustered = True

    def __init__(self, *nodes: Node) -> None:
        super().__init__()
        self.list = list(nodes)

    async def nodes(self, used: dict[str, int]) -> list[Node]:
        return list(self.list)

    def threads(self, spec: RunnerSpec, node: Node) -> int:
        return spec.num_thread or max(1, int(node.cpus or 0))


@pytest.fixture(autouse=True)
def _fake_runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CORRAL_FAKE_RUNNER", "1")
    yield


def model(name: str, size: int, replicas: int = 1) -> ModelRef:
    return ModelRef(name=name, digest=name, details={}, estimate_bytes=size, replicas=replicas)


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def spec(name: str, parallel: int = 1) -> RunnerSpec:
    return RunnerSpec(model_path="/store/blobs/" + digest(name).replace(":", "-"), num_ctx=64,
                      num_parallel=parallel, num_thread=1)


def scheduler(backend: Nodes, max_loaded: int = 3) -> Scheduler:
    return Scheduler(max_loaded=max_loaded, max_queue=16, default_keep_alive=300, load_timeout=30,
                     backend=backend)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_models_go_where_they_fit_and_never_to_a_node_without_cpus() -> None:
    nodes = Nodes(Node("a", capacity=500 * MB, cpus=1), Node("head", capacity=4000 * MB, cpus=0),
                  Node("b", capacity=300 * MB, cpus=1))

    async def go() -> list[str]:
        s = scheduler(nodes)
        try:
            for name, size in (("big", 400 * MB), ("small", 250 * MB)):
                async with s.use(model(name, size), spec(name), None) as entry:
                    assert entry.node.id in ("a", "b")
            return [e.node.id for e in sorted(s.loaded.values(), key=lambda e: e.model.name)]
        finally:
            await s.shutdown()

    # big fits only a; small then fits only b (a's CPU is taken); the head offers memory but no CPU
    assert run(go()) == ["a", "b"]


def test_a_node_holding_the_weights_wins_over_more_memory() -> None:
    nodes = Nodes(Node("roomy", capacity=4000 * MB, cpus=2),
                  Node("holder", capacity=600 * MB, cpus=2, blobs=frozenset({digest("m")})))

    async def go() -> str:
        s = scheduler(nodes)
        try:
            async with s.use(model("m", 100 * MB), spec("m"), None) as entry:
                return entry.node.id
        finally:
            await s.shutdown()

    assert run(go()) == "holder"


def test_no_node_can_hold_it_is_an_error_not_a_wait() -> None:
    nodes = Nodes(Node("a", capacity=100 * MB, cpus=1))

    async def go() -> None:
        s = scheduler(nodes)
        try:
            async with s.use(model("huge", 900 * MB), spec("huge"), None):
                pass
        finally:
            await s.shutdown()

    with pytest.raises(Exception, match="no node of the cluster has room"):
        run(go())


def test_idle_runner_is_evicted_from_the_node_that_must_make_room() -> None:
    nodes = Nodes(Node("a", capacity=500 * MB, cpus=4))

    async def go() -> list[str]:
        s = scheduler(nodes)
        try:
            async with s.use(model("first", 400 * MB), spec("first"), None):
                pass
            async with s.use(model("second", 400 * MB), spec("second"), None):
                pass
            return [e.model.name for e in s.loaded.values()]
        finally:
            await s.shutdown()

    assert run(go()) == ["second"]


def test_waiting_requests_start_a_replica_on_another_node_and_new_ones_go_to_the_least_loaded() -> None:
    nodes = Nodes(Node("a", capacity=1000 * MB, cpus=1), Node("b", capacity=1000 * MB, cpus=1))
    ref, sp = model("m", 100 * MB, replicas=2), spec("m", parallel=1)

    async def go() -> tuple[list[str], str]:
        s = scheduler(nodes)
        try:
            first = await s.acquire(ref, sp, None)
            second = await s.acquire(ref, sp, None)  # waits for first's slot: a replica is asked for
            assert second is first
            for _ in range(200):
                if len(s.loaded) == 2:
                    break
                await asyncio.sleep(0.05)
            third = await s.acquire(ref, sp, None)  # the replica has no request yet
            for e in (first, second, third):
                s.release(e)
            return sorted(e.node.id for e in s.loaded.values()), third.node.id
        finally:
            await s.shutdown()

    placed, third = run(go())
    assert placed == ["a", "b"]
    assert third == "b"
