"""Pull and push through the server, the SDKs and the CLI, against a real OCI registry (docker-registry)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.store.blobs import hash_file
from corral.store.manifest import MEDIA_TYPE_LICENSE, MEDIA_TYPE_MODEL, MEDIA_TYPE_PARAMS, MEDIA_TYPE_TEMPLATE
from corral.store.models import Store
from corral.store.names import ModelName
from tests import registry_fixture, test_registry
from tests.registry_fixture import DockerRegistry, FaultProxy, tiny_model
from tests.servers import CorralServer, wait_until
from tests.test_registry import options, push

# Session fixtures shared with test_tutorial.py.
registry = registry_fixture.registry
mirror_server = registry_fixture.mirror_server
mirror_llama = registry_fixture.mirror_llama
basic_registry = test_registry.basic_registry  # the htpasswd-protected registry of the auth tests
_no_user_credentials = test_registry._no_user_credentials  # autouse: no developer credentials leak in

MB = 1000 * 1000


# --- the server, the SDK, the CLI -------------------------------------------------------------------


def _progress_lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.iter_lines() if line.strip()]


def _stream(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("POST", url + path, json=body, timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        return _progress_lines(r)


@pytest.mark.slow
def test_create_push_rm_pull_run_round_trip(server: CorralServer, registry: DockerRegistry) -> None:
    name = f"{registry.host}/test/roundtrip-smol:latest"
    r = httpx.post(server.url + "/api/create", json={"model": name, "from": "smollm2:135m", "stream": False,
                                                      "system": "You answer in one short sentence.",
                                                      "parameters": {"num_predict": 16}}, timeout=120)
    assert r.status_code == 200, r.text
    path = ModelName.parse(name).manifest_path(server.models)
    manifest_bytes = path.read_bytes()

    lines = _stream(server.url, "/api/push", {"model": name, "insecure": True})
    statuses = [x["status"] for x in lines]
    assert statuses[0] == "retrieving manifest" and statuses[-2:] == ["pushing manifest", "success"]
    layers = {x["digest"] for x in lines if "digest" in x}
    assert len(layers) == 5 and all(x["status"] == f"pushing {x['digest'][7:19]}" for x in lines if "digest" in x)
    assert registry.manifest("test/roundtrip-smol", "latest").content == manifest_bytes

    assert httpx.request("DELETE", server.url + "/api/delete", json={"model": name}).status_code == 200
    assert not path.exists()
    lines = _stream(server.url, "/api/pull", {"model": name, "insecure": True})
    assert [x["status"] for x in lines if "digest" not in x] == [
        "pulling manifest", "verifying sha256 digest", "writing manifest", "success"]
    assert path.read_bytes() == manifest_bytes
    tags = {m["name"]: m for m in httpx.get(server.url + "/api/tags").json()["models"]}
    assert tags[name]["digest"] == hashlib.sha256(manifest_bytes).hexdigest()

    r = httpx.post(server.url + "/api/generate", json={"model": name, "prompt": "Say hi.", "stream": False},
                   timeout=300)
    assert r.status_code == 200 and r.json()["response"].strip()


@pytest.mark.slow
def test_cp_then_push_through_the_server_mounts(server: CorralServer, registry: DockerRegistry) -> None:
    first = f"{registry.host}/team/mounted-smol:latest"
    second = f"{registry.host}/elsewhere/mounted-smol:latest"
    for target in (first, second):
        assert httpx.post(server.url + "/api/copy", json={"source": "smollm2:135m", "destination": target}
                          ).status_code == 200
    try:
        r = httpx.post(server.url + "/api/push", json={"model": first, "insecure": True, "stream": False}, timeout=300)
        assert r.status_code == 200 and r.json() == {"status": "success"}
        start = len(registry.access_log())
        r = httpx.post(server.url + "/api/push", json={"model": second, "insecure": True, "stream": False},
                       timeout=300)
        assert r.status_code == 200 and r.json() == {"status": "success"}
        requests = registry.access_log()[start:]
        assert [r for r in requests if r[0] == "POST" and "mount=" in r[1] and r[2] == 201]
        assert not [r for r in requests if r[0] == "PATCH"]  # nothing uploaded again
    finally:
        for target in (first, second):
            httpx.request("DELETE", server.url + "/api/delete", json={"model": target})


def test_a_client_that_leaves_cancels_the_pull_and_the_next_pull_resumes(
        server: CorralServer, registry: DockerRegistry, tmp_path: Path) -> None:
    source = Store(tmp_path / "source")
    model = tiny_model(source, f"{registry.host}/library/leaving:latest", size=4 * MB, seed="leaving")
    push(source, model, options(tmp_path))
    weights = model.manifest.layers[0]
    proxy = FaultProxy(registry.port)
    proxy.rate = MB  # bytes per second: a 4 s download
    name = f"{proxy.host}/library/leaving:latest"
    final = Store(server.models).blobs.path(weights.digest)
    try:
        with httpx.stream("POST", server.url + "/api/pull", json={"model": name, "insecure": True}, timeout=60) as r:
            for line in r.iter_lines():
                part = json.loads(line)
                if part.get("digest") == weights.digest and part.get("completed", 0) > 0:
                    break  # leave mid-download
        wait_until(lambda: proxy.live() == 0, timeout=60, what="the server to drop its registry connection")

        def saved() -> int:  # the part's state is written as the cancelled download unwinds
            return int(json.loads(final.with_name(final.name + "-partial-0").read_text())["Completed"])

        kept = wait_until(saved, timeout=60, what="the partial download's state to be saved")
        time.sleep(0.5)
        assert saved() == kept and proxy.live() == 0  # the download was stopped, not left running
        assert 0 < kept < weights.size and not final.exists()

        proxy.rate = None
        proxy.heal()
        r = httpx.post(server.url + "/api/pull", json={"model": name, "insecure": True, "stream": False}, timeout=120)
        assert r.status_code == 200 and r.json() == {"status": "success"}
        assert proxy.down_bytes < weights.size and hash_file(final) == (weights.digest, weights.size)
    finally:
        proxy.close()
        httpx.request("DELETE", server.url + "/api/delete", json={"model": name})


def test_cli_progress_view_draws_bars_on_a_terminal_and_lines_into_a_pipe() -> None:
    import io

    from corral.cli.transfer import ProgressView

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    steps = [("pulling manifest", None, None, None), ("pulling 0123456789ab", "sha256:0123456789ab", 200, 0),
             ("pulling 0123456789ab", "sha256:0123456789ab", 200, 100),
             ("pulling 0123456789ab", "sha256:0123456789ab", 200, 200), ("success", None, None, None)]
    pipe = io.StringIO()
    view = ProgressView(pipe)
    for step in steps:
        view.update(*step)
    view.finish()
    assert pipe.getvalue().splitlines() == [
        "pulling manifest", "pulling 0123456789ab: 100% ▕" + "█" * 25 + "▏ 200 B/200 B", "success"]
    tty = Terminal()
    view = ProgressView(tty)
    for step in steps:
        view.update(*step)
    view.finish()
    drawn = tty.getvalue()
    assert "\x1b[1F" in drawn and "  0% ▕" in drawn and drawn.endswith("\x1b[2Ksuccess\n")  # redrawn in place


def test_api_errors(server: CorralServer, registry: DockerRegistry) -> None:
    missing = f"{registry.host}/library/does-not-exist:latest"
    r = httpx.post(server.url + "/api/pull", json={"model": missing, "insecure": True, "stream": False})
    assert r.status_code == 500 and r.json() == {"error": "pull model manifest: file does not exist"}
    lines = _stream(server.url, "/api/pull", {"model": missing, "insecure": True})
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    r = httpx.post(server.url + "/api/pull", json={"model": "a/b/c/d", "stream": False})
    assert r.status_code == 400 and r.json() == {"error": "invalid model name"}
    r = httpx.post(server.url + "/api/push", json={"stream": False})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}
    r = httpx.post(server.url + "/api/push", json={"model": "nowhere/to-be-found", "stream": False})
    assert r.status_code == 404 and r.json() == {"error": "model 'nowhere/to-be-found' not found"}
    r = httpx.post(server.url + "/api/pull", json={"model": f"http://{registry.host}/x/y", "stream": False})
    assert r.status_code == 500 and r.json() == {"error": "insecure protocol http"}


def test_sdks_pull_and_push_with_progress(server: CorralServer, registry: DockerRegistry) -> None:
    import ollama

    import corral

    name = f"{registry.host}/sdk/smol:latest"
    assert httpx.post(server.url + "/api/copy", json={"source": "smollm2:135m", "destination": name}
                      ).status_code == 200
    try:
        for package in (corral, ollama):
            client = package.Client(host=server.url)
            parts = list(client.push(name, insecure=True, stream=True))
            assert parts[-1].status == "success" and any(p.digest and p.completed == p.total for p in parts)
            assert client.pull(name, insecure=True).status == "success"
            with pytest.raises(package.ResponseError) as failed:
                client.pull(f"{registry.host}/sdk/absent", insecure=True)
            assert failed.value.error == "pull model manifest: file does not exist"
    finally:
        httpx.request("DELETE", server.url + "/api/delete", json={"model": name})


def corral_cli(host: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "OLLAMA_HOST": host, "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    return subprocess.run([sys.executable, "-m", "corral", *args], env=full, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_air_gapped_pull_through_the_default_registry_setting(mirror_server: CorralServer, mirror_llama: str) -> None:
    """An empty store, CORRAL_REGISTRY set: `llama3.2` comes whole from the test registry and runs."""
    for m in httpx.get(mirror_server.url + "/api/tags").json()["models"]:  # a scratch store: start empty
        httpx.request("DELETE", mirror_server.url + "/api/delete", json={"model": m["name"]})
    assert not list((mirror_server.models / "blobs").iterdir())
    lines = _stream(mirror_server.url, "/api/pull", {"model": "llama3.2"})
    assert lines[-1] == {"status": "success"}
    weights = [x for x in lines if x.get("total", 0) > 50 * MB]
    assert weights[0].get("completed", 0) < weights[0]["total"] == weights[-1]["completed"]  # downloaded, not found
    tags = {m["name"]: m["digest"] for m in httpx.get(mirror_server.url + "/api/tags").json()["models"]}
    assert tags["llama3.2:latest"] == mirror_llama
    r = httpx.post(mirror_server.url + "/api/generate", timeout=300,
                   json={"model": "llama3.2", "prompt": "Say hi.", "stream": False})
    assert r.status_code == 200 and r.json()["response"].strip()


@pytest.mark.slow
def test_cli_push_pull_and_run_pulls_a_missing_model(server: CorralServer, mirror_server: CorralServer,
                                                      registry: DockerRegistry) -> None:
    name = f"{registry.host}/cli/smol:latest"
    assert httpx.post(server.url + "/api/copy", json={"source": "llama3.2", "destination": name}).status_code == 200
    try:
        done = corral_cli(server.host, "push", name, "--insecure")
        assert done.returncode == 0, done.stderr
        lines = done.stderr.splitlines()
        assert lines[0] == "retrieving manifest" and lines[-1] == "success"
        assert any(line.startswith("pushing ") and ": 100% ▕" in line for line in lines)

        done = corral_cli(server.host, "push", name)  # an http registry without --insecure
        assert done.returncode == 1 and "Error: " in done.stderr

        done = corral_cli(mirror_server.host, "run", name, "Say hi.", "--insecure")
        assert done.returncode == 0, done.stderr
        assert "pulling manifest" in done.stderr and "success" in done.stderr and done.stdout.strip()
        weights = [line for line in done.stderr.splitlines() if line.startswith("pulling ") and "%" in line]
        assert weights and all(": 100% ▕" in line for line in weights)

        done = corral_cli(mirror_server.host, "pull", name, "--insecure")
        assert done.returncode == 0 and done.stderr.splitlines()[-1] == "success"
        done = corral_cli(mirror_server.host, "pull", "127.0.0.1:1/cli/none", "--insecure")
        assert done.returncode == 1 and "cannot reach registry 127.0.0.1:1" in done.stderr
    finally:
        httpx.request("DELETE", server.url + "/api/delete", json={"model": name})
        httpx.request("DELETE", mirror_server.url + "/api/delete", json={"model": name})


@pytest.mark.slow
def test_a_manifest_laid_out_as_ollamas_registry_serves_it_pulls_and_runs(
        server: CorralServer, registry: DockerRegistry, mirror_server: CorralServer) -> None:
    """Reference §4.2: compact manifest, no trailing newline; a ConfigV2 with rootfs; gemma's layer set."""
    source = Store(server.models).get("smollm2:135m")
    assert source.model_layer is not None and source.model_path is not None
    repo = "library/smollm2-layout"
    layers = [(MEDIA_TYPE_MODEL, source.model_path, source.model_layer.digest)]
    staging = registry.root / "staging"
    staging.mkdir(exist_ok=True)
    for media_type, content in ((MEDIA_TYPE_LICENSE, b"Apache License 2.0 (test copy)\n"),
                                (MEDIA_TYPE_TEMPLATE, b"{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n"
                                                      b"{{ end }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n"
                                                      b"<|im_start|>assistant\n"),
                                (MEDIA_TYPE_PARAMS, b'{"num_predict":16,"stop":["<|im_end|>"]}')):
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        (staging / digest[7:]).write_bytes(content)
        layers.append((media_type, staging / digest[7:], digest))
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                         "model_type": "135M", "file_type": "Q4_1", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d for _, _, d in layers]}},
                        separators=(",", ":")).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    (staging / config_digest[7:]).write_bytes(config)
    for _, path, digest in [*layers, (None, staging / config_digest[7:], config_digest)]:
        registry.seed_blob(repo, Path(path), digest)  # hard links into the registry's storage
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": m, "digest": d, "size": Path(p).stat().st_size} for m, p, d in layers]},
        separators=(",", ":")).encode()
    r = httpx.put(f"{registry.url}/v2/{repo}/manifests/135m", content=manifest,
                  headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 201, r.text

    # Through CORRAL_REGISTRY: the name is Ollama's own, `smollm2-layout:135m` on registry.ollama.ai.
    r = httpx.post(mirror_server.url + "/api/pull", json={"model": "smollm2-layout:135m", "stream": False},
                   timeout=300)
    assert r.status_code == 200 and r.json() == {"status": "success"}, r.text
    stored = ModelName.parse("smollm2-layout:135m").manifest_path(mirror_server.models)
    assert stored.read_bytes() == manifest and str(stored).endswith("registry.ollama.ai/library/smollm2-layout/135m")
    shown = httpx.post(mirror_server.url + "/api/show", json={"model": "smollm2-layout:135m"}).json()
    assert shown["details"]["family"] == "llama" and shown["details"]["parameter_size"] == "135M"
    assert shown["license"].startswith("Apache License 2.0")
    r = httpx.post(mirror_server.url + "/api/chat", timeout=300, json={
        "model": "smollm2-layout:135m", "stream": False, "messages": [{"role": "user", "content": "Say hi."}]})
    assert r.status_code == 200 and r.json()["message"]["content"].strip()


def test_server_reads_credentials_from_its_auth_file(basic_registry: DockerRegistry, tmp_path: Path) -> None:
    """The server process finds credentials in CORRAL_REGISTRY_AUTH_FILE; without them it says 401 clearly."""
    models = tmp_path / "models"
    models.mkdir()
    store = Store(models)
    name = f"{basic_registry.host}/library/server-auth:latest"
    model = tiny_model(store, name, seed="server-auth")
    auth_file = tmp_path / "auth.json"
    srv = CorralServer(models=models, env={"HOME": str(tmp_path), "CORRAL_REGISTRY_AUTH_FILE": str(auth_file)}).start()
    try:
        r = httpx.post(srv.url + "/api/push", json={"model": name, "insecure": True, "stream": False}, timeout=120)
        assert r.status_code == 500 and r.json()["error"].startswith("unauthorized: ")
        assert "no credentials for" in r.json()["error"]
        auth_file.write_text(json.dumps({"auths": {basic_registry.host: {"username": "alice",
                                                                           "password": "wonderland"}}}))
        r = httpx.post(srv.url + "/api/push", json={"model": name, "insecure": True, "stream": False}, timeout=120)
        assert r.status_code == 200 and r.json() == {"status": "success"}
        assert "wonderland" not in srv.log()
    finally:
        srv.stop()
    assert model.manifest_path.exists()


def test_registry_package_exports_what_it_lists() -> None:
    import types

    import corral.registry as package

    public = {name for name, value in vars(package).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"}
    assert public == set(package.__all__)
