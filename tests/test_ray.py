"""Runners on a Ray cluster (issue 22): a 3-node cluster on loopback, in a network namespace of its own.

The head node runs `corral serve --cluster`; every node's memory cap (Ray's `memory` resource) fits one of
the two bundled models, not both. Workers keep fetched blobs in folders of their own, so every model that
lands on one is fetched from the server and checked. Outputs are compared with the same request on the
ordinary local server (greedy, the same thread count), not with what a 135M model happens to say.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from corral.config import Settings
from corral.server.app import build_state
from corral.store.create import create_from_gguf
from corral.store.testing import make_temp_store
from tests.ggufmaker import write_tiny_llama
from tests.raycluster import ClusterServer, NodeSpec, RayCluster
from tests.servers import CorralServer, wait_until

CHAT, BASE = "smollm2:135m", "gemma3:270m"
GREEDY = {"temperature": 0, "seed": 7, "num_predict": 12, "num_thread": 1}


def _cluster_tools() -> str:
    """What a cluster test lacks here ("" when nothing); under CI a lack fails instead of skipping."""
    import importlib.util

    missing = [] if importlib.util.find_spec("ray") is not None else ["Ray (make setup installs corral[ray])"]
    missing += [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"missing for the Ray cluster tests: {', '.join(missing)}", pytrace=False)
    return ", ".join(missing)


MISSING = _cluster_tools()
pytestmark = pytest.mark.slow
needs_cluster = pytest.mark.skipif(bool(MISSING), reason=f"missing: {MISSING}")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = make_temp_store(tmp_path_factory.mktemp("raystore"))
    tokenizer = store.get(CHAT).model_path
    assert tokenizer is not None
    tiny = write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny.gguf", tokenizer, name="tiny-ray")
    create_from_gguf(store, "tiny-ray", tiny, link=False)
    return store.root


def _estimate(models: Path, name: str) -> int:
    """The scheduler's own memory estimate for ``name`` at the server's settings."""
    state = build_state(Settings(models=models, num_parallel=2))
    model = state.store.get(name)
    return state.model_ref(model, state.runner_spec(model, {"num_thread": 1})).estimate_bytes


@pytest.fixture(scope="module")
def cluster(store_dir: Path) -> Iterator[RayCluster]:
    sizes = [_estimate(store_dir, n) for n in (CHAT, BASE)]
    cap = int(max(sizes) * 1.15)
    assert cap < sum(sizes), "each node must fit one model, not both"
    # Two CPUs a node and one thread a runner: CPUs would allow two runners a node, memory allows one. The
    # head and the first worker are capped by Ray's `memory` resource, the second by CORRAL_MAX_MEMORY in the
    # environment of its `ray start` (its Ray memory is ample).
    c = RayCluster([NodeSpec(2, cap)])
    c.nodes += [NodeSpec(2, cap, {"CORRAL_NODE_BLOBS": str(c.temp / "blobs1")}),
                NodeSpec(2, 4 * cap, {"CORRAL_NODE_BLOBS": str(c.temp / "blobs2"), "CORRAL_MAX_MEMORY": str(cap)})]
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def cserver(cluster: RayCluster, store_dir: Path) -> Iterator[ClusterServer]:
    srv = ClusterServer(cluster, store_dir, {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_KEEP_ALIVE": "5m",
                                             "CORRAL_REPLICAS": f"{CHAT}=2", "OLLAMA_DEBUG": "1"})
    try:
        yield srv
    finally:
        srv.stop()


def _node_of(srv: ClusterServer, name: str) -> str:
    rows = [m for m in srv.ps() if m["name"] == name]
    assert len(rows) == 1, rows
    return str(rows[0]["node"])


def _raylet_of(cluster: RayCluster, node_label: str) -> int:
    node_id_prefix = node_label.rsplit("/", 1)[1]
    for i in range(len(cluster.nodes)):
        pid = cluster.raylet(i)
        if f"--node_id={node_id_prefix}" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
            return pid
    raise AssertionError(f"no raylet for node {node_label}")


@needs_cluster
def test_corrupted_blob_is_refused_then_a_good_one_is_fetched_and_served(cserver: ClusterServer, cluster: RayCluster,
                                                                          store_dir: Path) -> None:
    from corral.store.models import Store

    model = Store(store_dir).get("tiny-ray")
    assert model.model_path is not None and model.model_layer is not None
    blob, digest = model.model_path, model.model_layer.digest
    good = blob.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    client = ollama.Client(host=cserver.url, timeout=300)
    try:
        with pytest.raises(ollama.ResponseError) as info:
            client.generate(model="tiny-ray", prompt="hi", options={"num_predict": 2})
        assert info.value.status_code == 500
        assert "digest mismatch" in info.value.error and digest in info.value.error
    finally:
        blob.write_bytes(good)
    folders = [cluster.temp / f"blobs{i}" for i in (1, 2)]
    # nothing of the refused transfer stays on any node: no blob, no temporary file
    assert not [p for f in folders if f.exists() for p in f.iterdir()]
    assert not cserver.ps()

    reply = client.generate(model="tiny-ray", prompt="hi", options={"num_predict": 4, "temperature": 0})
    assert reply.done and reply.eval_count == 4
    fetched = [f / digest.replace(":", "-") for f in folders if (f / digest.replace(":", "-")).exists()]
    assert len(fetched) == 1, "the model runs on a worker, which fetched it"
    assert "sha256:" + hashlib.sha256(fetched[0].read_bytes()).hexdigest() == digest
    assert _node_of(cserver, "tiny-ray:latest").startswith("127.0.0.1/")
    cserver.unload_all()


@needs_cluster
def test_both_models_on_different_nodes_answer_as_a_local_runner(cserver: ClusterServer, server: CorralServer,
                                                                 cluster: RayCluster) -> None:
    remote = ollama.Client(host=cserver.url, timeout=300)
    local = ollama.Client(host=server.url, timeout=300)
    messages = [{"role": "user", "content": "Name three colors."}]
    got = remote.chat(model=CHAT, messages=messages, options=GREEDY)
    want = local.chat(model=CHAT, messages=messages, options=GREEDY)
    assert got.message.content == want.message.content and got.eval_count == want.eval_count
    base_messages = [{"role": "user", "content": "The capital of France is"}]
    got_g = remote.chat(model=BASE, messages=base_messages, options=GREEDY)
    want_g = local.chat(model=BASE, messages=base_messages, options=GREEDY)
    assert got_g.message.content == want_g.message.content and got_g.eval_count == want_g.eval_count

    rows = {m["name"]: m for m in cserver.ps()}
    assert set(rows) == {CHAT, BASE}
    assert rows[CHAT]["node"] != rows[BASE]["node"], "each node's memory fits one of them"
    # the official client still parses /api/ps with the added field
    assert {m.model for m in remote.ps().models} == {CHAT, BASE}
    # both went to workers (the head serves the API), which fetched and checked their blobs
    for f in (cluster.temp / "blobs1", cluster.temp / "blobs2"):
        for blob in f.glob("sha256-*"):
            assert "sha256-" + hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    stream = remote.chat(model=CHAT, messages=messages, options=GREEDY, stream=True)
    assert "".join(part.message.content for part in stream) == want.message.content
    # an embedding runner is one more runner: the head node has room for it
    got_e = remote.embed(model=CHAT, input=["a red apple", "the sea"], options={"num_thread": 1}).embeddings
    want_e = local.embed(model=CHAT, input=["a red apple", "the sea"], options={"num_thread": 1}).embeddings
    for g, w in zip(got_e, want_e, strict=True):
        assert len(g) == len(w) and max(abs(a - b) for a, b in zip(g, w, strict=True)) < 1e-4
    cserver.unload_all()


@needs_cluster
def test_busy_model_gets_a_replica_on_another_node(cserver: ClusterServer) -> None:
    """CORRAL_REPLICAS asks for two runners of the chat model: while the first is busy, a second loads on
    another node, and /api/ps shows both."""
    client = ollama.Client(host=cserver.url, timeout=300)
    long = {"num_predict": 160, "temperature": 0, "num_thread": 1, "num_parallel": 1}
    threads = [threading.Thread(target=client.generate, kwargs={"model": CHAT, "prompt": f"Count to {n}:",
                                                                 "options": long}) for n in (50, 60, 70)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len([m for m in cserver.ps() if m["name"] == CHAT]) == 2, timeout=120, interval=0.5,
                   what="a second runner of the busy model")
        nodes = {m["node"] for m in cserver.ps() if m["name"] == CHAT}
        assert len(nodes) == 2
    finally:
        for t in threads:
            t.join(timeout=300)
    cserver.unload_all()


@needs_cluster
def test_client_that_leaves_cancels_its_request_on_the_node(cserver: ClusterServer, cluster: RayCluster) -> None:
    body = {"model": CHAT, "prompt": "Write a long story.", "format": {"type": "string", "minLength": 2000},
            "options": {"temperature": 0, "num_predict": 1500, "num_thread": 1}}
    with httpx.stream("POST", cserver.url + "/api/generate", json=body, timeout=300) as r:
        lines = r.iter_lines()
        for _ in range(3):
            assert '"done":false' in next(lines)
    # the server cancels the Ray generator, the actor cancels the request in the runner's loop, which ends it
    logs = cluster.temp / "session_latest" / "logs"
    wait_until(lambda: any("canceled by its client: canceled" in p.read_text(errors="replace")
                           for p in logs.glob("worker-*.err")), timeout=60, interval=0.5,
               what="the runner's report of the cancel in the actor's log")
    cserver.unload_all()


@needs_cluster
def test_node_death_mid_stream_ends_that_stream_only(cserver: ClusterServer, cluster: RayCluster,
                                                     server: CorralServer) -> None:
    client = ollama.Client(host=cserver.url, timeout=300)
    # a long answer, whatever the model would say: a JSON string of at least 2000 characters
    endless = {"temperature": 0, "num_predict": 1500, "num_thread": 1}
    fmt = {"type": "string", "minLength": 2000}
    client.generate(model=CHAT, prompt="hi", options={"num_predict": 1, "num_thread": 1})
    client.generate(model=BASE, prompt="hi", options={"num_predict": 1, "num_thread": 1})
    victim = _node_of(cserver, CHAT)
    survivor = _node_of(cserver, BASE)
    assert victim != survivor

    other: dict[str, Any] = {}

    def other_stream() -> None:
        try:
            parts = list(client.generate(model=BASE, prompt="Once upon a time", stream=True,
                                         options={"temperature": 0, "num_predict": 200, "num_thread": 1}))
            other["text"] = "".join(p.response for p in parts)
            other["done"] = parts[-1].done
        except Exception as exc:  # recorded: the assertion below names it
            other["error"] = exc

    t = threading.Thread(target=other_stream)
    t.start()
    received = 0
    with pytest.raises(ollama.ResponseError) as info:
        for _part in client.generate(model=CHAT, prompt="Write a long story.", stream=True, format=fmt,
                                    options=endless):
            received += 1
            if received == 5:
                os.kill(_raylet_of(cluster, victim), 9)
    assert 5 <= received < 1500, (info.value, cserver.log())
    assert "llama runner process has terminated" in info.value.error
    assert victim.rsplit("/", 1)[1] in info.value.error, "the error names the runner's node"
    t.join(timeout=300)
    assert "error" not in other, other.get("error")
    assert other["done"] is True
    want = ollama.Client(host=server.url, timeout=300).generate(
        model=BASE, prompt="Once upon a time", options={"temperature": 0, "num_predict": 200, "num_thread": 1})
    assert other["text"] == want.response, "the other model's stream was not touched"

    assert httpx.get(cserver.url + "/api/version", timeout=10).status_code == 200
    deadline = time.monotonic() + 120
    while True:  # the dead node's raylet may answer briefly; a load there fails, and the next finds a live one
        try:
            reply = client.generate(model=CHAT, prompt="hi", options={"num_predict": 3, "num_thread": 1})
            break
        except ollama.ResponseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert reply.done
    assert _node_of(cserver, CHAT) != victim


def test_no_ray_imported_without_cluster(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from starlette.testclient import TestClient\n"
        "from corral.config import Settings\n"
        "from corral.server.app import create_app\n"
        "import corral.cli.main, corral.runner.rayactor, corral.scheduler.backend\n"
        f"app = create_app(Settings(models=__import__('pathlib').Path({str(tmp_path)!r}), bundled=False))\n"
        "with TestClient(app, base_url='http://127.0.0.1:11434') as c:\n"
        "    assert c.get('/api/ps').json() == {'models': []}\n"
        "    assert c.get('/api/blobs/sha256:' + '0' * 64).status_code == 405\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cluster_without_ray_names_the_extra(how: str) -> None:
    script = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
              "from corral.cli.main import main\n"
              f"sys.exit(main({['serve', '--cluster', '127.0.0.1:6390'] if how == 'flag' else ['serve']!r}))\n")
    env = {**os.environ, "OLLAMA_HOST": "127.0.0.1:0"}
    if how == "env":
        env["CORRAL_RAY_ADDRESS"] = "127.0.0.1:6390"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 1
    assert "pip install 'corral[ray]'" in out.stderr


@pytest.mark.skipif("Ray" in MISSING, reason="needs Ray")
def test_cluster_address_where_nothing_answers_is_a_clear_error(tmp_path: Path) -> None:
    from tests.servers import free_port

    port = free_port()  # nothing listens there
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(tmp_path),
           "CORRAL_NO_BUNDLED": "1", "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run([sys.executable, "-m", "corral", "serve", "--cluster", f"ray://127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1
    assert f"cannot join the Ray cluster at ray://127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif("Ray" in MISSING, reason="needs Ray")
def test_nodes_fetch_blobs_with_a_key_of_their_own_when_keys_are_on(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from corral.server.app import create_app

    settings = Settings(models=tmp_path / "models", bundled=False, cluster="127.0.0.1:1", api_keys=["users-key"])
    state = build_state(settings)  # builds the Ray backend; joining the cluster waits for the lifespan
    node_headers = state.scheduler.backend.headers  # type: ignore[attr-defined]
    assert node_headers["Authorization"].startswith("Bearer ") and "users-key" not in node_headers["Authorization"]
    data = b"weights, or something like them"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client = TestClient(create_app(settings, state=state), base_url="http://127.0.0.1:11434")  # no lifespan
    user = {"Authorization": "Bearer users-key"}
    assert client.post(f"/api/blobs/{digest}", content=data, headers=user).status_code == 201
    got = client.get(f"/api/blobs/{digest}", headers=node_headers)
    assert got.status_code == 200 and got.content == data
    assert client.get(f"/api/blobs/{digest}").status_code == 401
    assert client.get("/api/blobs/sha256:" + "0" * 64, headers=node_headers).status_code == 404
