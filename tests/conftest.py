"""Session-scoped fixtures: one temporary store with the bundled models hard-linked in, one server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.store.testing import alias, make_temp_store
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
    for name in TUTORIAL_ALIASES:
        alias(store, CHAT_MODEL, name)
    return store.root


@pytest.fixture(scope="session")
def server(models_dir: Path) -> Iterator[CorralServer]:
    srv = CorralServer(models=models_dir, env={"OLLAMA_NUM_PARALLEL": "2"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_url(server: CorralServer) -> str:
    return server.url


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; local test traffic must never leave the machine.
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
