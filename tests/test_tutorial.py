"""The user's tutorial, run as written: each example is a subprocess against `corral serve`.

Every example runs twice, with the official `ollama` package and with `corral` in its import. The only
edits are the import name and the one literal URL (`http://localhost:11434`), which points at the test
server (or at a recording proxy in front of it, to see the custom header arrive).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests import registry_fixture
from tests.registry_fixture import DockerRegistry
from tests.servers import CorralServer

HERE = Path(__file__).parent / "tutorial"
PACKAGES = ["ollama", "corral"]

# pull and push run against the tests' own registry through CORRAL_REGISTRY (tests/registry_fixture.py).
registry = registry_fixture.registry
mirror_server = registry_fixture.mirror_server
mirror_llama = registry_fixture.mirror_llama


def run_example(name: str, package: str, host: str, url: str | None = None,
                replace: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    source = (HERE / name).read_text()
    for old, new in (replace or {}).items():
        source = source.replace(old, new)
    if package != "ollama":
        source = source.replace("from ollama import", f"from {package} import")
        source = source.replace("import ollama", f"import {package} as ollama")
    if url is not None:
        source = source.replace("http://localhost:11434", url)
    env = {**os.environ, "OLLAMA_HOST": host, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("example", ["chat.py", "chat_stream.py", "async_chat.py", "async_stream.py"])
def test_chat_examples(server: CorralServer, package: str, example: str) -> None:
    done = run_example(example, package, server.host)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the model answered nothing"
    assert "\ufffd" not in done.stdout


class _Recorder(BaseHTTPRequestHandler):
    """Forwards to the corral server and remembers the request headers it saw."""

    target = ""
    seen: ClassVar[list[dict[str, str]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        r = httpx.request(self.command, self.target + self.path, content=body, headers=headers, timeout=300)
        self.send_response(r.status_code)
        for k, v in r.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_HEAD = do_DELETE = _forward  # noqa: N815


@pytest.fixture
def recorder(server: CorralServer) -> Iterator[str]:
    _Recorder.target = server.url
    _Recorder.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("package", PACKAGES)
def test_custom_client_sends_its_header(server: CorralServer, recorder: str, package: str) -> None:
    done = run_example("custom_client.py", package, server.host, url=recorder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    chats = [h for h in _Recorder.seen if h.get("content-type") == "application/json"]
    assert chats and all(h.get("x-some-header") == "some-value" for h in chats)


@pytest.mark.parametrize("package", PACKAGES)
def test_error_handling_example(server: CorralServer, package: str) -> None:
    done = run_example("error_handling.py", package, server.host)
    # chat() on an unknown model raises ResponseError with status 404; the example prints it, then tries
    # `pull`, which fails too: this server's default registry (registry.ollama.ai) is out of reach here.
    assert "Error: model 'does-not-yet-exist' not found" in done.stdout
    assert "ResponseError" in done.stderr and "cannot reach registry registry.ollama.ai" in done.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_error_handling_example_with_a_registry(mirror_server: CorralServer, package: str) -> None:
    # With CORRAL_REGISTRY set, the registry is reached and answers what Ollama's would: no such model.
    done = run_example("error_handling.py", package, mirror_server.host)
    assert "Error: model 'does-not-yet-exist' not found" in done.stdout
    assert "ResponseError: pull model manifest: file does not exist" in done.stderr


# --- pull and push, through the default-registry setting -------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_pull_example(mirror_server: CorralServer, mirror_llama: str, package: str) -> None:
    httpx.request("DELETE", mirror_server.url + "/api/delete", json={"model": "llama3.2"})
    done = run_example("pull.py", package, mirror_server.host)
    assert done.returncode == 0, done.stderr
    models = {m["name"]: m["digest"] for m in httpx.get(mirror_server.url + "/api/tags").json()["models"]}
    assert models["llama3.2:latest"] == mirror_llama  # the registry's manifest, byte for byte


@pytest.mark.parametrize("package", PACKAGES)
def test_push_example(mirror_server: CorralServer, mirror_llama: str, registry: DockerRegistry, package: str) -> None:
    r = httpx.post(mirror_server.url + "/api/pull", json={"model": "llama3.2", "stream": False}, timeout=300)
    assert r.status_code == 200, r.text
    r = httpx.post(mirror_server.url + "/api/copy", json={"source": "llama3.2", "destination": "user/llama3.2"})
    assert r.status_code == 200
    before = registry.manifest("user/llama3.2", "latest")
    if before.status_code == 200:  # pushed by the other package's run: remove it, so this run pushes again
        digest = before.headers["docker-content-digest"]
        assert httpx.delete(f"{registry.url}/v2/user/llama3.2/manifests/{digest}").status_code == 202
    done = run_example("push.py", package, mirror_server.host)
    assert done.returncode == 0, done.stderr
    served = registry.manifest("user/llama3.2", "latest")
    assert served.status_code == 200 and hashlib.sha256(served.content).hexdigest() == mirror_llama


# --- model management: show, create, copy, delete -------------------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_show_example(server: CorralServer, package: str) -> None:
    done = run_example("show.py", package, server.host)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_create_example(server: CorralServer, package: str) -> None:
    done = run_example("create.py", package, server.host)
    assert done.returncode == 0, done.stderr
    shown = httpx.post(server.url + "/api/show", json={"model": "example"}).json()
    assert shown["system"] == "You are Mario from Super Mario Bros."
    assert shown["details"]["parent_model"] == "llama3.2:latest"
    assert httpx.request("DELETE", server.url + "/api/delete", json={"model": "example"}).status_code == 200


@pytest.mark.parametrize("package", PACKAGES)
def test_copy_example(server: CorralServer, package: str) -> None:
    done = run_example("copy.py", package, server.host)
    assert done.returncode == 0, done.stderr
    models = {m["name"]: m["digest"] for m in httpx.get(server.url + "/api/tags").json()["models"]}
    assert models["user/llama3.2:latest"] == models["llama3.2:latest"]  # same manifest bytes
    assert httpx.request("DELETE", server.url + "/api/delete", json={"model": "user/llama3.2"}).status_code == 200


@pytest.mark.parametrize("package", PACKAGES)
def test_delete_example(server: CorralServer, package: str) -> None:
    # The tutorial deletes 'llama3.2' itself, a model the rest of the session needs: the example runs on a
    # fresh copy instead, with only the model name substituted.
    victim = f"llama3.2-delete-me-{package}"
    r = httpx.post(server.url + "/api/copy", json={"source": "llama3.2", "destination": victim})
    assert r.status_code == 200
    done = run_example("delete.py", package, server.host, replace={"'llama3.2'": repr(victim)})
    assert done.returncode == 0, done.stderr
    names = {m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]}
    assert f"{victim}:latest" not in names and "llama3.2:latest" in names


# --- embed ------------------------------------------------------------------------------------------

EMBED_CALL = "ollama.embed(model='llama3.2', input='The sky is blue because of rayleigh scattering')"


@pytest.mark.parametrize("package", PACKAGES)
def test_embed_example(server: CorralServer, package: str) -> None:
    # The example prints nothing: its call is kept as written, its result assigned and printed.
    assert EMBED_CALL in (HERE / "embed.py").read_text()
    done = run_example("embed.py", package, server.host, replace={
        EMBED_CALL: f"response = {EMBED_CALL}\nimport json\n"
                    "print(json.dumps([list(v) for v in response['embeddings']]))"})
    assert done.returncode == 0, done.stderr
    vectors = json.loads(done.stdout)
    assert len(vectors) == 1 and len(vectors[0]) > 0
    assert all(isinstance(v, float) and math.isfinite(v) for v in vectors[0])
    assert math.isclose(math.fsum(v * v for v in vectors[0]), 1.0, rel_tol=1e-4)
