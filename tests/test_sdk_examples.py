"""ollama-python 0.6.3's own ``examples/``, run unchanged against ``corral serve``, with both SDKs.

Each example is the file from the PyPI sdist (``tests/sdk/sdist.py``), run as ``python <example>.py`` in a
subprocess with ``OLLAMA_HOST`` pointing at a recording proxy (``tests/sdk/recorder.py``) in front of the
session server: once with the official ``ollama`` package, once with ``ollama`` resolving to corral's SDK
(``tests/sdk/ollama_shim.py``, first on ``PYTHONPATH``). The proxy shows what the SDK sent (its User-Agent
tells which SDK ran) and what the server answered; each check compares that with what the example printed.

The examples hard-code their models (``gemma4``, ``llama3.1:8b``, ``llama3.2``): this module creates them on
the server as copies of the bundled ``smollm2:135m`` with a ``num_predict`` cap (the examples set none, and
a 135M model left to ramble makes a slow suite, not a better test), and deletes them afterwards. ``pull.py``
and ``ps.py`` run against ``mirror_server`` (tests/registry_fixture.py), a corral whose default registry is
the tests' own registry, into which the session server pushes ``gemma4`` first.

Not run: the examples that need what the bundled models cannot do (tools, thinking, vision, logprobs,
fill-in-the-middle, image generation), ollama.com's web services, and System One (Ollama 0.35's service).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import registry_fixture
from tests.conftest import CHAT_MODEL
from tests.registry_fixture import DockerRegistry
from tests.sdk.recorder import Exchange, Recorder
from tests.sdk.sdist import fetch_sdist, unpack
from tests.servers import CorralServer

REPO = Path(__file__).resolve().parent.parent
SHIM = Path(__file__).resolve().parent / "sdk" / "ollama_shim.py"
PACKAGES = ("ollama", "corral")

# The examples' model names, made on the server as copies of the bundled chat model ("llama3.2", which
# embed.py uses, is one of conftest's tutorial aliases already).
ALIASES = {"gemma4": {"num_predict": 16}, "llama3.1:8b": {"num_predict": 256}}
CREATED = "my-assistant"  # by create.py

# pull.py and ps.py run against the tests' own registry, through CORRAL_REGISTRY (tests/registry_fixture.py).
registry = registry_fixture.registry
mirror_server = registry_fixture.mirror_server


@dataclass
class Run:
    """One example's run: its process, and the HTTP exchanges it made."""

    done: subprocess.CompletedProcess[str]
    exchanges: list[Exchange]

    def to(self, path: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.path == path]

    def ok(self) -> Run:
        assert self.done.returncode == 0, self.done.stderr
        return self


@dataclass(frozen=True)
class Example:
    name: str
    check: Callable[[Run, CorralServer], None]
    stdin: str = ""
    mirror: bool = False
    "Run against ``mirror_server``: corral with its default registry at the test registry, holding gemma4."


def words(text: str) -> str:
    """Text with whitespace normalized: printing changes line ends, not words."""
    return " ".join(text.split())


# --- checks ------------------------------------------------------------------------------------------


def answer(path: str, *, stream: bool) -> Callable[[Run, CorralServer], None]:
    """A chat or generate example: non-empty text, the final part ``done``, and the text is what it printed."""

    def check(run: Run, server: CorralServer) -> None:
        [exchange] = run.ok().to(path)
        assert exchange.status == 200
        assert exchange.request_json()["stream"] is stream
        parts = exchange.parts()
        assert len(parts) > 1 if stream else len(parts) == 1
        assert parts[-1]["done"] is True and parts[-1]["done_reason"] in ("stop", "length")
        text = "".join(p["message"]["content"] if path == "/api/chat" else p["response"] for p in parts)
        assert words(text), "the model answered nothing"
        assert words(run.done.stdout) == words(text)

    return check


def check_history(run: Run, server: CorralServer) -> None:
    # The example loops on input() forever: the end of stdin ends it with EOFError, after two turns.
    assert run.done.returncode != 0 and "EOFError" in run.done.stderr, run.done.stderr
    first, second = run.to("/api/chat")
    answers = []
    for exchange in (first, second):
        [part] = exchange.parts()
        assert part["done"] is True
        answers.append(part["message"]["content"])
        assert words(answers[-1]), "the model answered nothing"
    # The history grows by the first question and its answer.
    sent = second.request_json()["messages"]
    assert sent[:-1] == [*first.request_json()["messages"], {"role": "assistant", "content": answers[0]}]
    assert sent[-1] == {"role": "user", "content": "What did I just ask you?"}
    assert run.done.stdout.count("Chat with history: ") == 3
    assert all(words(a) in words(run.done.stdout) for a in answers)


def check_list(run: Run, server: CorralServer) -> None:
    [exchange] = run.ok().to("/api/tags")
    models = exchange.parts()[0]["models"]
    assert "gemma4:latest" in [m["model"] for m in models]
    for model in models:
        assert f"Name: {model['model']}\n  Size (MB): {model['size'] / 1024 / 1024:.2f}\n" in run.done.stdout


def check_show(run: Run, server: CorralServer) -> None:
    [exchange] = run.ok().to("/api/show")
    shown = exchange.parts()[0]
    assert shown["modelfile"].startswith("# Modelfile generated by") and "\nFROM " in shown["modelfile"]
    assert "completion" in shown["capabilities"]
    assert f"Modelfile:     {shown['modelfile']}\n" in run.done.stdout
    assert f"Capabilities:  {shown['capabilities']}\n" in run.done.stdout


def check_create(run: Run, server: CorralServer) -> None:
    [exchange] = run.ok().to("/api/create")
    system = "You are mario from Super Mario Bros."
    assert exchange.request_json() == {"model": CREATED, "from": "gemma4", "system": system, "stream": False}
    assert run.done.stdout.strip() == "success"
    shown = httpx.post(server.url + "/api/show", json={"model": CREATED}, timeout=60).json()
    assert shown["system"] == system
    assert [line for line in shown["modelfile"].splitlines() if line.startswith("SYSTEM") and system in line]


def check_embed(run: Run, server: CorralServer) -> None:
    vectors = ast.literal_eval(run.ok().done.stdout.strip())
    assert len(vectors) == 1 and len(vectors[0]) > 0
    assert all(isinstance(x, float) for x in vectors[0])


def check_structured(run: Run, server: CorralServer) -> None:
    # The example validates the reply against its pydantic model itself, and fails if it does not fit.
    [exchange] = run.ok().to("/api/chat")
    assert exchange.request_json()["format"]["required"] == ["friends"]
    assert run.done.stdout.startswith("friends=[FriendInfo(name=")


def check_pull(run: Run, server: CorralServer) -> None:
    [exchange] = run.ok().to("/api/pull")
    assert exchange.request_json() == {"model": "gemma4", "insecure": False, "stream": True}
    parts = exchange.parts()
    assert parts[-1] == {"status": "success"}
    assert any(p.get("total") and p.get("completed") == p["total"] for p in parts)  # a layer, to its end
    assert "success" in run.done.stdout.splitlines()
    names = [m["name"] for m in httpx.get(server.url + "/api/tags", timeout=60).json()["models"]]
    assert "gemma4:latest" in names


def check_ps(run: Run, server: CorralServer) -> None:
    [exchange] = run.ok().to("/api/ps")
    [model] = [m for m in exchange.parts()[0]["models"] if m["model"] == "gemma4:latest"]
    assert model["expires_at"]
    assert "Model:  gemma4:latest\n" in run.done.stdout
    assert "Expires at:  None" not in run.done.stdout


RUNNABLE = [
    Example("chat.py", answer("/api/chat", stream=False)),
    Example("chat-stream.py", answer("/api/chat", stream=True)),
    Example("async-chat.py", answer("/api/chat", stream=False)),
    Example("generate.py", answer("/api/generate", stream=False)),
    Example("generate-stream.py", answer("/api/generate", stream=True)),
    Example("async-generate.py", answer("/api/generate", stream=False)),
    Example("chat-with-history.py", check_history, stdin="Why is the grass green?\nWhat did I just ask you?\n"),
    Example("list.py", check_list),
    Example("show.py", check_show),
    Example("create.py", check_create),
    Example("embed.py", check_embed),
    Example("pull.py", check_pull, mirror=True),
    Example("ps.py", check_ps, mirror=True),
    Example("structured-outputs.py", check_structured),
    Example("async-structured-outputs.py", check_structured),
]

CASES = [pytest.param(example, id=example.name) for example in RUNNABLE]


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(fetch_sdist(), "examples", tmp_path_factory.mktemp("ollama-examples"))


@pytest.fixture(scope="module")
def shim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ollama-shim")
    (root / "ollama").mkdir()
    shutil.copyfile(SHIM, root / "ollama" / "__init__.py")
    return root


@pytest.fixture(scope="module")
def example_models(server: CorralServer) -> Iterator[None]:
    for name, parameters in ALIASES.items():
        body = {"model": name, "from": CHAT_MODEL, "parameters": parameters, "stream": False}
        r = httpx.post(server.url + "/api/create", json=body, timeout=120)
        assert r.status_code == 200, r.text
    yield
    for name in [*ALIASES, CREATED]:
        httpx.request("DELETE", server.url + "/api/delete", json={"model": name}, timeout=60)


@pytest.fixture(scope="module")
def recorders() -> Iterator[dict[str, Recorder]]:
    """One recording proxy per server, made on first use."""
    made: dict[str, Recorder] = {}
    yield made
    for rec in made.values():
        rec.__exit__()


@pytest.fixture(scope="module")
def mirror_gemma4(server: CorralServer, registry: DockerRegistry, mirror_server: CorralServer,
                  example_models: None) -> CorralServer:
    """``mirror_server``, with the test registry holding ``library/gemma4`` (pushed by the session server)."""
    target = f"{registry.host}/library/gemma4:latest"
    assert httpx.post(server.url + "/api/copy", json={"source": "gemma4", "destination": target}).status_code == 200
    r = httpx.post(server.url + "/api/push", json={"model": target, "insecure": True, "stream": False}, timeout=300)
    assert r.status_code == 200, r.text
    httpx.request("DELETE", server.url + "/api/delete", json={"model": target}, timeout=60)
    httpx.request("DELETE", mirror_server.url + "/api/delete", json={"model": "gemma4"}, timeout=60)
    return mirror_server


@pytest.fixture
def run_example(examples_dir: Path, shim_dir: Path, recorders: dict[str, Recorder],
                example_models: None) -> Callable[[str, str, str, CorralServer], Run]:
    def run(name: str, package: str, stdin: str, target: CorralServer) -> Run:
        if target.url not in recorders:
            recorders[target.url] = Recorder(target.url).__enter__()
        recorder = recorders[target.url]
        recorder.clear()
        env = {k: v for k, v in os.environ.items() if k != "OLLAMA_API_KEY"}
        path = [str(shim_dir)] if package == "corral" else []
        env.update(OLLAMA_HOST=recorder.host, PYTHONIOENCODING="utf-8",
                   PYTHONPATH=os.pathsep.join([*path, str(REPO)]))
        done = subprocess.run([sys.executable, str(examples_dir / name)], cwd=examples_dir, env=env,
                              input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=300)
        exchanges = list(recorder.exchanges)
        assert exchanges, f"{name} sent no request:\n{done.stderr}"
        # corral's User-Agent names corral after the ollama-python prefix: proof of which SDK ran.
        agents = {e.headers.get("user-agent", "") for e in exchanges}
        assert all(a.startswith("ollama-python/") and ("corral/" in a) == (package == "corral") for a in agents)
        return Run(done, exchanges)

    return run


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("example", CASES)
def test_example(example: Example, package: str, run_example: Callable[[str, str, str, CorralServer], Run],
                 server: CorralServer, request: pytest.FixtureRequest) -> None:
    # The registry and its server start only for the examples that need them.
    target = request.getfixturevalue("mirror_gemma4") if example.mirror else server
    example.check(run_example(example.name, package, example.stdin, target), target)
