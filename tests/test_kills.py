"""Fault tests (issue 17): the server SIGKILLed at random points of an upload, a create, a copy, a pull and a
delete, about twenty times each, and restarted on the same store after every kill.

After each restart:

- no half-written manifest: every manifest file parses, and every blob a manifest names is there, whole
  (its bytes hash to its name; its size is the manifest's);
- no orphan: no runner or quantizer of the killed server lives on, and every temporary file left behind is one
  that prune removes; on every other restart prune runs (``prune_unreferenced(older_than=0)``) and after it
  no temporary file is left and every blob is referenced (on the others the leftovers stay, so that the next
  pull resumes from a crashed one's partial download);
- the server lists exactly the models on disk, and every listed model loads (a one-token generate answers
  200; a manifest already seen to load, byte for byte the same, over blobs checked whole again, is not
  loaded again, which keeps the file to a few minutes).

The kill comes after a random delay, drawn (from a seeded generator) across the time the operation takes
uninterrupted, measured first. A full disk is tests/test_hardening.py's. ``CORRAL_KILLS=N`` sets the number
of kills per operation.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.store.blobs import TEMP_PREFIX, is_blob_filename
from corral.store.create import create_from_gguf
from corral.store.errors import StoreError
from corral.store.manifest import Manifest
from corral.store.models import MANIFEST_TEMP_PREFIX, Store
from corral.store.prune import prune_unreferenced
from corral.store.testing import make_temp_store
from tests import registry_fixture
from tests.ggufmaker import write_tiny_llama
from tests.registry_fixture import DockerRegistry
from tests.servers import CorralServer, child_pids, wait_until

pytestmark = pytest.mark.slow

registry = registry_fixture.registry  # the session's docker-registry

BASE = "smollm2:135m"
TINY = "tiny"
KILLS = int(os.environ.get("CORRAL_KILLS") or 20)


# --- a store whose server gets killed -----------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Victim:
    """A store, the server on it, and what has been checked of it."""

    models: Path
    env: dict[str, str]
    rng: random.Random
    server: CorralServer | None = None
    loaded: set[str] = field(default_factory=set)
    """sha256 of manifest bytes seen to load."""
    whole: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """Blob file name -> (inode, size, mtime) when its bytes were last seen to hash to its name."""
    restarts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> None:
        self.server = CorralServer(models=self.models, env=self.env).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def kill_during(self, action: Callable[[str], httpx.Response], delay: float,
                    inspect: Callable[[httpx.Response | None], None] | None = None) -> None:
        """Run ``action(url)`` in a thread, SIGKILL the server ``delay`` seconds later, start it again, give
        ``inspect`` the action's response (None when the kill came first), check the store."""
        assert self.server is not None and self.server.proc is not None
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["r"] = action(self.url)
            except httpx.HTTPError as exc:
                result["e"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(delay)
        pid = self.server.proc.pid
        children = child_pids(pid)
        self.server.stop(signal.SIGKILL)
        thread.join(timeout=120)
        assert not thread.is_alive(), "the client never noticed the server was gone"
        # a runner exits when its channel closes; a quantizer must not go on writing into the store either
        wait_until(lambda: not [c for c in children if _alive(c)], timeout=60,
                   what=f"the killed server's children to exit: {[_cmdline(c) for c in children if _alive(c)]}")
        self.restarts += 1
        self.start()
        if inspect is not None:
            inspect(result.get("r"))
        self.check(prune=self.restarts % 2 == 0)

    # -- the checks ----------------------------------------------------------------------------------------

    def check(self, *, prune: bool) -> None:
        store = Store(self.models)
        temps = self._check_files(store)
        if prune:
            prune_unreferenced(store, older_than=0)
            left = self._check_files(store)
            assert not left, f"temporary files left after prune: {left}"
            referenced, unreadable = store.scan_references()
            assert not unreadable
            unreferenced = [p.name for p in store.blobs.root.iterdir()
                            if "sha256:" + p.name[len("sha256-"):] not in referenced]
            assert not unreferenced, f"blobs nobody references after prune: {unreferenced}"
        else:
            # each one is something prune removes: a manifest temporary, or a file in blobs/ whose name is
            # not a blob's (temporaries of writes and quantizations, partial downloads and their state)
            for path in temps:
                assert path.name.startswith(MANIFEST_TEMP_PREFIX) or not is_blob_filename(path.name), path
        self._check_models(store)
        assert self.server is not None
        log = self.server.log()
        assert "Traceback" not in log, log

    def _check_files(self, store: Store) -> list[Path]:
        """Check every manifest parses and every blob is whole; return the temporary files."""
        temps: list[Path] = []
        for dirpath, _dirs, files in os.walk(store.manifests_dir):
            for name in files:
                path = Path(dirpath) / name
                if name.startswith(MANIFEST_TEMP_PREFIX):
                    temps.append(path)
                    continue
                try:
                    Manifest.parse(path.read_bytes())
                except StoreError as exc:
                    pytest.fail(f"a half-written manifest {path}: {exc}: {path.read_bytes()[:200]!r}")
        for path in store.blobs.root.iterdir():
            if not is_blob_filename(path.name):
                temps.append(path)
                continue
            st = path.stat()
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if self.whole.get(path.name) == key:
                continue
            got = hashlib.sha256(path.read_bytes()).hexdigest()
            assert "sha256-" + got == path.name, f"a blob whose bytes are not its digest: {path}"
            self.whole[path.name] = key
        return temps

    def _check_models(self, store: Store) -> None:
        on_disk = {}
        for name, path in store.iter_manifests():
            data = path.read_bytes()
            manifest = Manifest.parse(data)
            for layer in [manifest.config, *manifest.layers]:
                blob = store.blobs.path(layer.digest)
                assert blob.is_file(), f"{name}: blob {layer.digest} missing"
                assert blob.stat().st_size == layer.size, f"{name}: blob {layer.digest} has the wrong size"
            on_disk[name.display_shortest()] = hashlib.sha256(data).hexdigest()
        listed = {m["name"].removesuffix(":latest"): m["digest"]
                  for m in httpx.get(self.url + "/api/tags", timeout=30).json()["models"]}
        assert listed == {k.removesuffix(":latest"): v for k, v in on_disk.items()}
        for name, digest in sorted(on_disk.items()):
            if digest in self.loaded:
                continue
            r = httpx.post(self.url + "/api/generate", timeout=300, json={
                "model": name, "prompt": "hi", "stream": False, "options": {"num_predict": 1}})
            assert r.status_code == 200, f"{name} does not load: {r.text}"
            self.loaded.add(digest)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny F16 llama with smollm2's tokenizer: it loads in a moment and can be quantized."""
    root = tmp_path_factory.mktemp("tiny")
    source = make_temp_store(root / "source", names=[BASE])
    path = source.get(BASE).model_path
    assert path is not None
    return write_tiny_llama(root / "tiny-f16.gguf", path)


def _victim(root: Path, tiny_gguf: Path, seed: str, env: dict[str, str] | None = None) -> Victim:
    store = Store(root / "models")
    create_from_gguf(store, TINY, tiny_gguf, params={"num_predict": 1})
    victim = Victim(models=store.root, env={"OLLAMA_NUM_PARALLEL": "1", **(env or {})},
                    rng=random.Random(f"corral-kills-{seed}"))
    victim.start()
    victim.check(prune=False)
    return victim


@pytest.fixture
def victim(request: pytest.FixtureRequest, tmp_path: Path, tiny_gguf: Path) -> Iterator[Victim]:
    v = _victim(tmp_path, tiny_gguf, request.node.name)
    try:
        yield v
    finally:
        v.stop()


def _timed(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = action()
    return r, time.monotonic() - t0


def _delay(victim: Victim, took: float) -> float:
    """Somewhere in the operation, or just before or after it."""
    return victim.rng.uniform(0, max(took * 1.2, 0.03))


# --- the operations -----------------------------------------------------------------------------------------


def test_killed_during_blob_uploads(victim: Victim) -> None:
    source = make_temp_store(victim.models.parent / "source", names=[BASE]).get(BASE).model_path
    assert source is not None
    data = source.read_bytes()  # ~100 MB: an upload that takes a while
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob = Store(victim.models).blobs.path(digest)

    def upload(url: str) -> httpx.Response:
        chunks = (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20))
        return httpx.post(f"{url}/api/blobs/{digest}", content=chunks, timeout=120)

    r, took = _timed(lambda: upload(victim.url))
    assert r.status_code == 201 and blob.is_file()
    def inspect(r: httpx.Response | None) -> None:
        victim.outcomes["whole" if blob.is_file() else "absent"] += 1
        if r is not None:
            assert r.status_code == 201 and blob.is_file()

    for _ in range(KILLS):
        Store(victim.models).blobs.remove(digest)  # an upload from scratch every time
        victim.kill_during(upload, _delay(victim, took), inspect)
    # the next upload of the same bytes works (whatever the kills left)
    assert upload(victim.url).status_code in (200, 201) and blob.is_file()


def test_killed_during_creates(victim: Victim) -> None:
    def create(i: int) -> Callable[[str], httpx.Response]:
        # every other one quantizes (a child process writing a temporary blob for a second or so); three
        # names, so that some replace a model a kill left behind
        body: dict[str, Any] = {"model": f"made-{i % 3}", "from": TINY, "system": f"made {i % 2}",
                                "parameters": {"num_predict": 1, "temperature": 0}, "stream": False}
        if i % 2:
            body["quantize"] = "q4_K_M"
        return lambda url: httpx.post(url + "/api/create", json=body, timeout=300)

    took = {}
    for i in (0, 1):
        r, took[i] = _timed(lambda i=i: create(i)(victim.url))
        assert r.status_code == 200, r.text
    victim.check(prune=True)
    def inspect(r: httpx.Response | None) -> None:
        victim.outcomes["answered" if r is not None else "killed"] += 1
        if r is not None:
            assert r.status_code == 200, r.text

    for i in range(KILLS):
        victim.kill_during(create(i), _delay(victim, took[i % 2]), inspect)


def test_a_quantizer_dies_with_its_server(victim: Victim) -> None:
    """A create's quantizer is a child process, which a SIGKILLed server cannot stop: it used to run on to the
    end (minutes, on every core, for a real model) while the restarted server already used the store."""
    r = httpx.post(victim.url + "/api/create", timeout=300, json={
        "model": "whole", "from": TINY, "quantize": "q4_K_M", "stream": False})
    assert r.status_code == 200, r.text
    layer = Store(victim.models).get("whole").model_layer
    assert layer is not None
    assert victim.server is not None and victim.server.proc is not None
    with httpx.stream("POST", victim.url + "/api/create", timeout=300, json={
            "model": "cut", "from": TINY, "quantize": "q4_K_M"}) as stream:
        for line in stream.iter_lines():
            if json.loads(line).get("completed"):
                break  # a tensor is done: the quantizer is at work
        quantizers = [c for c in child_pids(victim.server.proc.pid) if "corral.store.quantize" in _cmdline(c)]
        assert quantizers
        victim.server.stop(signal.SIGKILL)
    wait_until(lambda: not [q for q in quantizers if _alive(q)], timeout=120, what="the quantizer to end")
    temps = [p for p in Store(victim.models).blobs.root.iterdir() if p.name.startswith(TEMP_PREFIX)]
    # it stopped with the server: its output never reached the size of a whole quantization
    assert temps and all(p.stat().st_size < layer.size for p in temps), ([p.stat().st_size for p in temps],
                                                                         layer.size)
    victim.start()
    assert Store(victim.models).resolve("cut") is None
    victim.check(prune=True)


def test_killed_during_copies(victim: Victim) -> None:
    def copy(i: int) -> Callable[[str], httpx.Response]:
        body = {"source": TINY, "destination": f"copy-{i % 3}"}
        return lambda url: httpx.post(url + "/api/copy", json=body, timeout=60)

    r, took = _timed(lambda: copy(0)(victim.url))
    assert r.status_code == 200
    def inspect(r: httpx.Response | None) -> None:
        victim.outcomes["answered" if r is not None else "killed"] += 1
        if r is not None:
            assert r.status_code == 200, r.text

    for i in range(KILLS):
        victim.kill_during(copy(i), _delay(victim, took), inspect)


def test_killed_during_deletes(victim: Victim) -> None:
    def make() -> None:
        # a model with layers of its own (a system prompt, a config), so a delete has blobs to remove
        r = httpx.post(victim.url + "/api/create", timeout=120, json={
            "model": "doomed", "from": TINY, "system": "doomed", "stream": False})
        assert r.status_code == 200, r.text

    def delete(url: str) -> httpx.Response:
        return httpx.request("DELETE", url + "/api/delete", json={"model": "doomed"}, timeout=60)

    make()
    r, took = _timed(lambda: delete(victim.url))
    assert r.status_code == 200
    def inspect(r: httpx.Response | None) -> None:
        gone = Store(victim.models).resolve("doomed") is None
        victim.outcomes["gone" if gone else "kept"] += 1
        if r is not None:
            assert r.status_code == 200 and gone, r.text

    for _ in range(KILLS):
        make()
        victim.kill_during(delete, _delay(victim, took), inspect)


@pytest.fixture
def pull_victim(registry: DockerRegistry, tmp_path: Path, tiny_gguf: Path) -> Iterator[tuple[Victim, str]]:
    """A store without the model, and a registry repository holding smollm2 (~100 MB: a pull that takes a while),
    its blobs hard-linked into the registry's storage."""
    source = make_temp_store(tmp_path / "source", names=[BASE]).get(BASE)
    repo = f"kills/smol-{uuid.uuid4().hex[:8]}"
    for layer in [source.manifest.config, *source.manifest.layers]:
        registry.seed_blob(repo, source.store.blobs.path(layer.digest), layer.digest)
    r = httpx.put(f"{registry.url}/v2/{repo}/manifests/latest", content=source.manifest_path.read_bytes(),
                  headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 201, r.text
    v = _victim(tmp_path, tiny_gguf, "pull")
    try:
        yield v, f"{registry.host}/{repo}:latest"
    finally:
        v.stop()


def test_killed_during_pulls(pull_victim: tuple[Victim, str]) -> None:
    victim, name = pull_victim

    def pull(url: str) -> httpx.Response:
        return httpx.post(url + "/api/pull", json={"model": name, "insecure": True, "stream": False}, timeout=300)

    r, took = _timed(lambda: pull(victim.url))
    assert r.status_code == 200 and r.json() == {"status": "success"}, r.text
    victim.check(prune=True)  # the pulled model loads

    def inspect(r: httpx.Response | None) -> None:
        victim.outcomes["pulled" if Store(victim.models).resolve(name) is not None else "not pulled"] += 1
        if r is not None:
            assert r.status_code == 200 and r.json() == {"status": "success"}, r.text

    for _ in range(KILLS):
        if Store(victim.models).resolve(name) is not None:
            r = httpx.request("DELETE", victim.url + "/api/delete", json={"model": name}, timeout=60)
            assert r.status_code == 200, r.text  # pull it again, from scratch or from what a kill left
        victim.kill_during(pull, _delay(victim, took), inspect)
    # whatever the kills left, the next pull completes
    r = pull(victim.url)
    assert r.status_code == 200 and r.json() == {"status": "success"}, r.text
    victim.check(prune=True)
