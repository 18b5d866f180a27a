"""Context shift during generation (issue 20, part 5): at a full context the runner keeps ``num_keep`` tokens,
drops half of the rest and goes on, as Ollama does by default; ``shift: false`` stops there with ``length``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from corral.store.testing import make_temp_store
from tests.servers import CorralServer

pytestmark = pytest.mark.slow

NUM_CTX = 128
# greedy counting never reaches an end of text, so only the context and num_predict can stop it
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    store = make_temp_store(tmp_path_factory.mktemp("shift"), names=["smollm2:135m", "gemma3:270m"])
    srv = CorralServer(models=store.root, env={"OLLAMA_NUM_PARALLEL": "2"}).start()
    yield srv
    srv.stop()


def generate(srv: CorralServer, model: str, **body: object) -> dict[str, object]:
    r = httpx.post(srv.url + "/api/generate", timeout=600, json={
        "model": model, "prompt": COUNTING, "raw": True, "stream": False,
        "options": {"num_ctx": NUM_CTX, "num_predict": 3 * NUM_CTX, "temperature": 0}, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


# gemma3 has a sliding-window cache: llama.cpp shifts it too
@pytest.mark.parametrize("model", ["smollm2:135m", "gemma3:270m"])
def test_a_generation_longer_than_the_context_completes(server: CorralServer, model: str) -> None:
    done = generate(server, model)
    assert done["eval_count"] == 3 * NUM_CTX and done["done_reason"] == "length"
    assert "shifted" in server.log()


@pytest.mark.parametrize("model", ["smollm2:135m", "gemma3:270m"])
def test_shift_false_stops_at_the_context(server: CorralServer, model: str) -> None:
    done = generate(server, model, shift=False)
    prompt = int(done["prompt_eval_count"])  # type: ignore[call-overload]
    assert done["done_reason"] == "length"
    assert prompt + int(done["eval_count"]) <= NUM_CTX  # type: ignore[call-overload]
    assert int(done["eval_count"]) < 3 * NUM_CTX  # type: ignore[call-overload]
