"""``POST /api/create`` with a ``from`` the store lacks: pulled from the registry first, as Ollama does.

The registry is the real test registry (``docker-registry``); a server of its own, with an empty store
and ``CORRAL_REGISTRY`` pointing there, stands for an Ollama whose registry holds the base model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests import registry_fixture
from tests.registry_fixture import DockerRegistry
from tests.servers import CorralServer

# Session fixtures shared with test_registry.py and test_tutorial.py.
registry = registry_fixture.registry
mirror_llama = registry_fixture.mirror_llama

NOT_FOUND = "pull model manifest: file does not exist"


@pytest.fixture(scope="module")
def empty_server(registry: DockerRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    """A server with an empty store whose default registry is the test registry."""
    srv = registry_fixture.start_mirror(registry, tmp_path_factory.mktemp("create-pull"))
    yield srv
    srv.stop()


def _lines(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("POST", url + "/api/create", json=body, timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def _tags(srv: CorralServer) -> dict[str, str]:
    return {m["name"]: m["digest"] for m in httpx.get(srv.url + "/api/tags").json()["models"]}


@pytest.mark.slow
def test_create_from_a_model_only_the_registry_has_pulls_it_then_creates(
        empty_server: CorralServer, mirror_llama: str) -> None:
    assert "llama3.2:latest" not in _tags(empty_server)
    lines = _lines(empty_server.url, {"model": "pulled-child", "from": "llama3.2",
                                      "system": "You answer in one short sentence."})
    assert "error" not in lines[-1], lines[-1]
    statuses = [x["status"] for x in lines]

    # The pull's own progress comes first, whole, then the create's.
    pull_end = statuses.index("success")
    assert statuses[0] == "pulling manifest"
    assert [s for s in statuses[:pull_end + 1] if not s.startswith("pulling ")] == [
        "verifying sha256 digest", "writing manifest", "success"]
    downloads = [x for x in lines[:pull_end] if x["status"].startswith("pulling ") and x.get("digest")]
    assert {x["status"] for x in downloads} == {f"pulling {x['digest'][7:19]}" for x in downloads}
    weights = [x for x in downloads if x.get("total", 0) > 50_000_000]
    assert weights and weights[-1]["completed"] == weights[-1]["total"]
    created = statuses[pull_end + 1:]
    assert created[-2:] == ["writing manifest", "success"]
    assert any(s.startswith("using existing layer sha256:") for s in created)
    assert any(s.startswith("creating new layer sha256:") for s in created)  # the system prompt

    # Both the pulled base (byte for byte what the registry serves) and the new model are in the store.
    tags = _tags(empty_server)
    assert tags["llama3.2:latest"] == mirror_llama
    assert "pulled-child:latest" in tags
    show = httpx.post(empty_server.url + "/api/show", json={"model": "pulled-child"}).json()
    assert show["system"] == "You answer in one short sentence."
    manifest = json.loads((empty_server.models / "manifests" / "registry.ollama.ai" / "library" / "pulled-child"
                           / "latest").read_text())
    weights_layer = next(x for x in manifest["layers"] if x["mediaType"].endswith(".model"))
    assert weights_layer["from"] == "llama3.2:latest"

    r = httpx.post(empty_server.url + "/api/generate", timeout=300,
                   json={"model": "pulled-child", "prompt": "Say hi.", "stream": False})
    assert r.status_code == 200, r.text
    assert r.json()["response"].strip()


@pytest.mark.slow
def test_create_from_a_present_base_pulls_nothing(empty_server: CorralServer, mirror_llama: str,
                                                  registry: DockerRegistry) -> None:
    if "llama3.2:latest" not in _tags(empty_server):  # run alone: bring the base in first
        assert httpx.post(empty_server.url + "/api/pull", json={"model": "llama3.2", "stream": False},
                          timeout=300).status_code == 200
    before = len(registry.access_log())
    lines = _lines(empty_server.url, {"model": "local-child", "from": "llama3.2", "system": "Be brief."})
    assert lines[-1] == {"status": "success"}
    assert not any(x["status"].startswith("pulling") for x in lines)
    assert len(registry.access_log()) == before  # not a single request to the registry


def test_create_from_a_model_present_nowhere_fails_with_ollamas_error(empty_server: CorralServer) -> None:
    body = {"model": "orphan-child", "from": "no-such-model-anywhere", "system": "x"}

    # Streamed: the pull's first status, then the error as the last line (Ollama answers 200 at once).
    lines = _lines(empty_server.url, body)
    assert lines == [{"status": "pulling manifest"}, {"error": NOT_FOUND}]

    # Not streamed: Ollama's 500 with the pull's error, through the official client as well.
    r = httpx.post(empty_server.url + "/api/create", json={**body, "stream": False}, timeout=120)
    assert r.status_code == 500 and r.json() == {"error": NOT_FOUND}
    with pytest.raises(ollama.ResponseError) as failed:
        ollama.Client(host=empty_server.url).create(model="orphan-child", from_="no-such-model-anywhere")
    assert failed.value.status_code == 500 and failed.value.error == NOT_FOUND

    tags = _tags(empty_server)
    assert "orphan-child:latest" not in tags and "no-such-model-anywhere:latest" not in tags


@pytest.mark.slow
def test_cli_create_from_a_missing_model_pulls_it(empty_server: CorralServer, mirror_llama: str,
                                                  tmp_path: Path) -> None:
    httpx.request("DELETE", empty_server.url + "/api/delete", json={"model": "llama3.2"})
    assert "llama3.2:latest" not in _tags(empty_server)
    env = {**os.environ, "OLLAMA_HOST": empty_server.host, "NO_PROXY": "127.0.0.1,localhost"}

    def create(name: str, modelfile: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "Modelfile").write_text(modelfile)
        return subprocess.run([sys.executable, "-m", "corral", "create", name], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    done = create("cli-child", "FROM llama3.2\nSYSTEM Be brief.\n")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "pulling manifest" in lines and lines[-1] == "success"
    assert lines.index("pulling manifest") < lines.index("writing manifest")
    tags = _tags(empty_server)
    assert tags["llama3.2:latest"] == mirror_llama and "cli-child:latest" in tags

    done = create("cli-orphan", "FROM no-such-model-anywhere\n")
    assert done.returncode == 1 and f"Error: {NOT_FOUND}" in done.stderr
