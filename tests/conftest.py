"""Session-scoped fixtures: one temporary store with the bundled models hard-linked in, one server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store.create import create_from_gguf
from corral.store.testing import make_temp_store
from tests.servers import CorralServer

# The tutorial's model names, provided as copies of the bundled instruct model.
TUTORIAL_ALIASES = ("deepseek-coder", "llama3.2")
CHAT_MODEL = "smollm2:135m"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    store = make_temp_store(root)
    names = {m.short_name for m in store.list()}
    if CHAT_MODEL not in names:
        pytest.fail(f"bundled model {CHAT_MODEL} missing from the test store (run `make setup`)")
    base = store.get(CHAT_MODEL)
    assert base.model_path is not None
    for name in TUTORIAL_ALIASES:
        # Same weights (the blob is shared), plus a num_predict parameter: the tutorial's examples set no
        # limit, and a 135M model left to ramble makes a slow suite, not a better test.
        assert base.model_layer is not None
        create_from_gguf(store, name, base.model_path, params={**base.params, "num_predict": 48},
                         license=base.license, digest=base.model_layer.digest)
    return store.root


@pytest.fixture(scope="session")
def server(models_dir: Path) -> Iterator[CorralServer]:
    srv = CorralServer(models=models_dir, env={"OLLAMA_NUM_PARALLEL": "2"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_url(server: CorralServer) -> str:
    return server.url


@pytest.fixture(scope="session")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    """`corral serve` on a store of its own whose runners load no model (corral.scheduler.fakerunner): the
    real routes, scheduler and runner loop, answers in milliseconds."""
    store = make_temp_store(tmp_path_factory.mktemp("fake-store"))
    srv = CorralServer(models=store.root, env={"CORRAL_FAKE_RUNNER": "1"}).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; local test traffic must never leave the machine.
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# --- `slow`: what needs the real engine or the real model files --------------------------------------------
# `pytest -m "not slow"` is the inner loop. A test is slow when it uses the shared real-engine server (these
# fixtures, directly or through others), or when it is listed below; a few are marked where they are defined.
REAL_ENGINE_FIXTURES = {"server", "base_url"}
SLOW_TESTS = {
    "tests/test_scheduler.py": "starts servers of its own and loads real runners",
    "tests/test_structured.py": "structured outputs of the real model",
    "tests/test_options.py": "each option's effect on the real model",
    "tests/test_batching.py": "the real engine's batches",
    "tests/test_hardening.py": "servers of its own on the real model",
    "tests/test_registry.py": "pushes and pulls the bundled model through a real registry",
    "tests/test_quantize.py::test_quantize_blob_reports_progress_and_is_atomic": "quantizes with llama.cpp",
    "tests/test_embed.py::test_many_inputs_share_decodes": "a real embedding runner",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses_engine = REAL_ENGINE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_engine or any(item.nodeid.startswith(prefix) for prefix in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
