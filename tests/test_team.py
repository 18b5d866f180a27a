"""Running corral for a team (issue 18): API keys, Prometheus metrics, per-model queue limits, request logs.

Every check runs against a real ``corral serve`` on the real engine, through raw HTTP and the official
``ollama``, ``openai`` and ``anthropic`` clients.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral.config import TRACE, Settings, log_level, parse_api_keys
from corral.server import anthropic as anthropic_routes
from corral.server import auth
from corral.server import ollama as ollama_routes
from corral.server import openai as openai_routes
from corral.store.testing import make_temp_store
from tests.servers import REPO, CorralServer, free_port, wait_until

SMOL, GEMMA = "smollm2:135m", "gemma3:270m"
ENV_KEYS = ("team-key-1", "team-key-2")
FILE_KEY = "file-key-3"
WRONG = "team-key-9"
SHORT = {"num_predict": 2, "temperature": 0}


# --- API keys ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CorralServer, Path]]:
    root = tmp_path_factory.mktemp("keyed")
    store = make_temp_store(root, names=[SMOL])
    keys_file = root / "keys.txt"
    keys_file.write_text(f"# the team's keys\n\n{FILE_KEY}\n")
    srv = CorralServer(models=store.root, env={"CORRAL_API_KEYS": ",".join(ENV_KEYS),
                                               "CORRAL_API_KEYS_FILE": str(keys_file)}).start()
    yield srv, keys_file
    srv.stop()


def _all_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the server has, path parameters filled in, and /metrics."""
    out = [("GET", "/metrics")]
    for route in [*ollama_routes.routes(), *anthropic_routes.routes(), *openai_routes.routes()]:
        path = re.sub(r"\{digest\}", "sha256:" + "0" * 64, route.path)
        path = re.sub(r"\{[^}]+\}", "x", path)
        out += [(m, path) for m in sorted(route.methods or []) if not (path == "/" and m in ("GET", "HEAD"))]
    return out


def _expected_body(path: str) -> Any:
    if path.startswith("/v1/messages"):
        return {"type": "error", "error": {"type": "authentication_error", "message": "unauthorized"}}
    if path.startswith("/v1/"):
        return {"error": {"message": "unauthorized", "type": "invalid_request_error", "param": None,
                          "code": "invalid_api_key"}}
    return {"error": "unauthorized"}


@pytest.mark.parametrize(("method", "path"), _all_routes())
def test_every_route_needs_a_key(keyed: tuple[CorralServer, Path], method: str, path: str) -> None:
    srv, _ = keyed
    body = b"{}" if method not in ("GET", "HEAD", "DELETE") else b""
    for headers in ({}, {"Authorization": f"Bearer {WRONG}"}, {"x-api-key": WRONG}, {"Authorization": WRONG},
                    {"Authorization": "Basic " + ENV_KEYS[0]}, {"Authorization": "Bearer"}):
        r = httpx.request(method, srv.url + path, content=body, headers=headers, timeout=30)
        assert r.status_code == 401, (method, path, headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        if method != "HEAD":
            got = r.json()
            got.pop("request_id", None)  # Anthropic's envelope carries a fresh id
            assert got == _expected_body(path), (path, got)
    for headers in ({"Authorization": f"Bearer {ENV_KEYS[1]}"}, {"authorization": f"bearer {FILE_KEY}"},
                    {"x-api-key": ENV_KEYS[0]}):
        r = httpx.request(method, srv.url + path, content=body, headers={
            k: v.encode() for k, v in headers.items()}, timeout=60)
        assert r.status_code != 401, (method, path, headers, r.text)


def test_liveness_and_preflight_need_no_key(keyed: tuple[CorralServer, Path]) -> None:
    srv, _ = keyed
    assert httpx.get(srv.url + "/").text == "Ollama is running"
    assert httpx.head(srv.url + "/").status_code == 200
    r = httpx.options(srv.url + "/api/chat", headers={"Origin": "http://localhost:3000",
                                                      "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
    # a refusal keeps the CORS headers a browser needs to read it
    r = httpx.get(srv.url + "/api/tags", headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_official_clients(keyed: tuple[CorralServer, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    srv, _ = keyed
    messages = [{"role": "user", "content": "Hi"}]
    # ollama: from OLLAMA_API_KEY (read when the client is made), or headers
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=srv.url).list()
    assert err.value.status_code == 401 and err.value.error == "unauthorized"
    monkeypatch.setenv("OLLAMA_API_KEY", ENV_KEYS[0])
    assert ollama.Client(host=srv.url).chat(SMOL, messages=messages, options=SHORT).done
    monkeypatch.setenv("OLLAMA_API_KEY", WRONG)
    with pytest.raises(ollama.ResponseError):
        ollama.Client(host=srv.url).list()
    monkeypatch.delenv("OLLAMA_API_KEY")
    client = ollama.Client(host=srv.url, headers={"Authorization": f"Bearer {FILE_KEY}"})
    assert SMOL in {m.model for m in client.list().models}

    # corral's own SDK, the same way
    import corral

    monkeypatch.setenv("OLLAMA_API_KEY", ENV_KEYS[1])
    assert corral.Client(host=srv.url).show(SMOL).modelfile
    monkeypatch.delenv("OLLAMA_API_KEY")
    with pytest.raises(corral.ResponseError) as cerr:
        corral.Client(host=srv.url).show(SMOL)
    assert cerr.value.status_code == 401

    # openai: api_key is its bearer token
    good = openai.OpenAI(base_url=srv.url + "/v1", api_key=ENV_KEYS[1], max_retries=0)
    reply = good.chat.completions.create(model=SMOL, messages=messages, max_tokens=2)  # type: ignore[arg-type]
    assert reply.choices[0].message.role == "assistant"
    with pytest.raises(openai.AuthenticationError) as oerr:
        openai.OpenAI(base_url=srv.url + "/v1", api_key=WRONG, max_retries=0).models.list()
    assert oerr.value.status_code == 401 and oerr.value.code == "invalid_api_key"

    # anthropic: x-api-key
    a = anthropic.Anthropic(base_url=srv.url, api_key=FILE_KEY, max_retries=0)
    msg = a.messages.create(model=SMOL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert msg.type == "message"
    with pytest.raises(anthropic.AuthenticationError) as aerr:
        anthropic.Anthropic(base_url=srv.url, api_key=WRONG, max_retries=0).messages.create(
            model=SMOL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert aerr.value.status_code == 401


def test_the_cli_sends_the_key(keyed: tuple[CorralServer, Path]) -> None:
    srv, _ = keyed
    env = {**os.environ, "OLLAMA_HOST": srv.host, "NO_PROXY": "127.0.0.1"}
    env.pop("OLLAMA_API_KEY", None)
    refused = subprocess.run([sys.executable, "-m", "corral", "list"], env=env, capture_output=True, text=True,
                             timeout=60, cwd=REPO)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr
    ok = subprocess.run([sys.executable, "-m", "corral", "list"], env={**env, "OLLAMA_API_KEY": ENV_KEYS[0]},
                        capture_output=True, text=True, timeout=60, cwd=REPO)
    assert ok.returncode == 0 and SMOL in ok.stdout, ok.stderr


def test_a_changed_key_file_applies_without_a_restart(keyed: tuple[CorralServer, Path]) -> None:
    srv, keys_file = keyed
    pid = srv.proc.pid if srv.proc else 0

    def status(key: str) -> int:
        return httpx.get(srv.url + "/api/tags", headers={"Authorization": f"Bearer {key}"}).status_code

    assert status(FILE_KEY) == 200 and status("rotated") == 401
    try:
        tmp = keys_file.with_suffix(".new")
        tmp.write_text("rotated\n")
        tmp.replace(keys_file)  # as an editor or a secrets manager replaces it
        assert status("rotated") == 200 and status(FILE_KEY) == 401
        assert status(ENV_KEYS[0]) == 200  # the environment's keys stay
        keys_file.unlink()  # a file that cannot be read: its keys are gone, the server fails closed
        assert status("rotated") == 401 and status(ENV_KEYS[0]) == 200
        assert "cannot read the API keys file" in srv.log()
    finally:
        keys_file.write_text(f"{FILE_KEY}\n")
    assert status(FILE_KEY) == 200
    assert srv.proc is not None and srv.proc.pid == pid and srv.proc.poll() is None


def test_keys_are_never_logged(keyed: tuple[CorralServer, Path]) -> None:
    srv, _ = keyed
    httpx.get(srv.url + "/api/tags", headers={"Authorization": f"Bearer {ENV_KEYS[0]}"})
    httpx.get(srv.url + "/api/tags", headers={"Authorization": f"Bearer {WRONG}"})
    log = srv.log()
    assert "CORRAL_API_KEYS" in log  # the config line is there, with a count in place of the keys
    for key in (*ENV_KEYS, FILE_KEY, WRONG, "rotated"):
        assert key not in log


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every known key is compared, as equal-length digests, whichever matches (or none)."""
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    ring = auth.KeyRing(["a", "bb", "ccc"])
    for offered, ok in ((b"a", True), (b"ccc", True), (b"nope", False), (b"a" * 10_000, False)):
        calls.clear()
        assert ring.accepts(offered) is ok
        assert len(calls) == 3 and all(len(x) == len(y) == 32 for x, y in calls)
    assert ring.accepts(None) is False


def test_keys_from_the_environment() -> None:
    assert parse_api_keys(" a, b ,,c ") == ["a", "b", "c"]
    assert parse_api_keys("# comment\nkey one\n\n  two  \n") == ["key one", "two"]
    s = Settings.from_env({"CORRAL_API_KEYS": "secret-1,secret-2"})
    assert s.auth_enabled and s.api_keys == ["secret-1", "secret-2"]
    assert "secret" not in repr(s) and "secret" not in str(s.as_env_map())
    assert not Settings.from_env({}).auth_enabled
    assert Settings.from_env({"CORRAL_API_KEYS_FILE": "/nonexistent"}).auth_enabled  # fails closed


def _serve_until_listening(env: dict[str, str], tmp_path: Path) -> str:
    """Start `corral serve`, wait until it answers, stop it; its log."""
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "corral", "serve"], cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "CORRAL_NO_BUNDLED": "1",
                                                               "OLLAMA_MODELS": str(tmp_path / "models"), **env})
    try:
        port = env["OLLAMA_HOST"].rsplit(":", 1)[1]
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=60, what="corral serve to answer")
    finally:
        proc.terminate()
        proc.wait(30)
    return log_path.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_open_server_without_keys_warns(tmp_path: Path) -> None:
    log = _serve_until_listening({"OLLAMA_HOST": f"0.0.0.0:{free_port()}"}, tmp_path)
    assert "without API keys" in log
    log = _serve_until_listening({"OLLAMA_HOST": f"0.0.0.0:{free_port()}", "CORRAL_API_KEYS": "k"}, tmp_path)
    assert "without API keys" not in log
    log = _serve_until_listening({"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, tmp_path)
    assert "without API keys" not in log


# --- metrics and per-model queues ---------------------------------------------------------------------------


def scrape(srv: CorralServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels (parsed by prometheus_client's own parser)."""
    r = httpx.get(srv.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    root = tmp_path_factory.mktemp("metered")
    store = make_temp_store(root, names=[SMOL, GEMMA])
    srv = CorralServer(models=store.root, env={"OLLAMA_MAX_QUEUE": "1", "OLLAMA_NUM_PARALLEL": "2"}).start()
    yield srv
    srv.stop()


def test_metrics_count_a_known_sequence(metered: CorralServer) -> None:
    srv = metered
    chat = {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "stream": False, "options": SHORT}
    replies = [httpx.post(srv.url + "/api/chat", json=chat, timeout=120).json() for _ in range(2)]
    embed = httpx.post(srv.url + "/api/embed", json={"model": SMOL, "input": ["one", "two words"]}, timeout=120)
    assert embed.status_code == 200
    missing = httpx.post(srv.url + "/api/chat", json={**chat, "model": "no-such-model"}, timeout=30)
    assert missing.status_code == 404

    # a request is counted once its answer has gone out: wait for the last one, then every count is final
    wait_until(lambda: sample(scrape(srv), "corral_requests_total", route="/api/chat", method="POST",
                              status="404") == 1, timeout=10, what="the 404 to be counted")
    m = scrape(srv)
    assert sample(m, "corral_requests_total", route="/api/chat", method="POST", status="200") == 2
    assert sample(m, "corral_requests_total", route="/api/chat", method="POST", status="404") == 1
    assert sample(m, "corral_requests_total", route="/api/embed", method="POST", status="200") == 1
    assert sample(m, "corral_requests_total", route="/api/generate", method="POST", status="200") == 0
    assert sample(m, "corral_request_duration_seconds_count", route="/api/chat") == 3
    prompt = sum(r["prompt_eval_count"] for r in replies) + embed.json()["prompt_eval_count"]
    assert sample(m, "corral_prompt_tokens_total", model=SMOL) == prompt
    assert sample(m, "corral_generated_tokens_total", model=SMOL) == sum(r["eval_count"] for r in replies)
    assert sample(m, "corral_time_to_first_token_seconds_count", model=SMOL) == 2
    assert sample(m, "corral_generation_tokens_per_second_count", model=SMOL) == 2
    assert sample(m, "corral_queue_wait_seconds_count", model=SMOL) == 3
    # a chat runner and an embedding runner: two loads, both loaded, nothing evicted or crashed
    assert sample(m, "corral_model_loads_total", model=SMOL) == 2
    assert sample(m, "corral_loaded_models") == 2 == len(srv.runners())
    assert sample(m, "corral_model_memory_bytes", model=SMOL) > 0
    assert sample(m, "corral_model_evictions_total", model=SMOL) == 0
    assert sample(m, "corral_runner_crashes_total", model=SMOL) == 0
    # labels are bounded: no label holds what a client made up
    assert not any("no-such-model" in str(labels) for _, labels in m)


def _long_stream(srv: CorralServer, model: str) -> Any:
    """A generation that keeps a runner's slot busy: greedy counting never reaches an end of text."""
    body = {"model": model, "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True,
            "options": {"num_predict": 3000, "temperature": 0}}
    return httpx.stream("POST", srv.url + "/api/generate", json=body, timeout=120)


def test_a_full_model_queue_is_503_while_another_model_serves(metered: CorralServer) -> None:
    """``OLLAMA_MAX_QUEUE`` bounds a loaded model's queue too (Ollama's does not, its issue #7758): with one slot
    (``PARAMETER num_parallel 1``) busy and one request waiting, the next is a 503; another model serves on."""
    srv = metered
    r = httpx.post(srv.url + "/api/create", json={"model": "solo", "from": SMOL, "stream": False,
                                                  "parameters": {"num_parallel": 1}}, timeout=120)
    assert r.status_code == 200, r.text
    before = scrape(srv)
    with _long_stream(srv, "solo") as busy:
        lines = busy.iter_lines()  # keep a reference: a collected iterator closes the response
        next(lines)  # solo's one slot is taken
        waiting: list[Any] = []

        def second() -> None:
            try:
                with _long_stream(srv, "solo") as r2:
                    waiting.append(r2.status_code)
            except httpx.HTTPError as exc:
                waiting.append(exc)

        t = threading.Thread(target=second, daemon=True)
        t.start()
        wait_until(lambda: sample(scrape(srv), "corral_queue_depth", model="solo:latest") == 1, timeout=30,
                   what="the second request to wait for solo's slot")
        r = httpx.post(srv.url + "/api/chat", timeout=60, json={
            "model": "solo", "messages": [{"role": "user", "content": "Hi"}], "stream": False, "options": SHORT})
        assert r.status_code == 503
        assert r.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
        other = httpx.post(srv.url + "/api/chat", timeout=120, json={
            "model": GEMMA, "messages": [{"role": "user", "content": "Hi"}], "stream": False, "options": SHORT})
        assert other.status_code == 200, other.text
    t.join(120)
    assert waiting == [200]
    wait_until(lambda: sample(scrape(srv), "corral_requests_total", route="/api/generate", method="POST",
                              status="200") >= 2, timeout=10, what="the two streams to be counted")
    after = scrape(srv)
    assert sample(after, "corral_requests_total", route="/api/chat", method="POST", status="503") == 1
    assert (sample(after, "corral_requests_total", route="/api/chat", method="POST", status="200")
            - sample(before, "corral_requests_total", route="/api/chat", method="POST", status="200")) == 1
    wait_until(lambda: sample(scrape(srv), "corral_queue_depth", model="solo:latest") == 0, timeout=30,
               what="solo's queue to empty")


def test_num_parallel_is_a_models_slots(metered: CorralServer) -> None:
    srv = metered
    ps = httpx.get(srv.url + "/api/ps").json()["models"]
    bad = httpx.post(srv.url + "/api/generate", json={"model": SMOL, "prompt": "x", "options": {"num_parallel": 65}})
    assert bad.status_code == 400 and bad.json() == {"error": "num_parallel must be between 1 and 64"}
    assert httpx.get(srv.url + "/api/ps").json()["models"] == ps  # a refused request loads and unloads nothing
    # two streams on a model with OLLAMA_NUM_PARALLEL=2 run side by side: nobody waits
    with _long_stream(srv, SMOL) as a, _long_stream(srv, SMOL) as b:
        la, lb = a.iter_lines(), b.iter_lines()
        next(la)
        next(lb)
        assert sample(scrape(srv), "corral_queue_depth", model=SMOL) == 0


# --- logs ---------------------------------------------------------------------------------------------------


def test_debug_levels() -> None:
    assert log_level("") == logging.INFO
    assert log_level("false") == log_level("0") == logging.INFO
    assert log_level("1") == log_level("true") == logging.DEBUG
    assert log_level("2") == TRACE
    assert log_level("-1") == logging.WARNING


def test_request_log_names_the_model(metered: CorralServer) -> None:
    srv = metered
    httpx.post(srv.url + "/api/show", json={"model": SMOL})
    httpx.get(srv.url + "/v1/models/" + GEMMA)
    # a request's line is written once its answer has gone out: polled, not read at once
    for line in (r'msg=200 \|.*\| POST +"/api/show" model="smollm2:135m"',
                 r'msg=200 \|.*\| GET +"/v1/models/gemma3:270m" model="gemma3:270m"'):
        wait_until(lambda line=line: re.search(line, srv.log()), timeout=10, what=f"a log line like {line}")


def test_json_logs(tmp_path: Path) -> None:
    store = make_temp_store(tmp_path, names=[SMOL])
    srv = CorralServer(models=store.root, env={"CORRAL_LOG_FORMAT": "json", "OLLAMA_DEBUG": "2"}).start()
    try:
        r = httpx.post(srv.url + "/api/generate", timeout=120, json={
            "model": SMOL, "prompt": "Hi", "stream": False, "options": SHORT})
        assert r.status_code == 200
        httpx.post(srv.url + "/api/generate", json={"model": "nope", "prompt": "Hi"})
    finally:
        srv.stop()
    records = [json.loads(line) for line in srv.log().splitlines() if line.strip()]
    assert records and all({"time", "level", "source", "msg"} <= set(r) for r in records)
    # OLLAMA_DEBUG=2: the request at debug level, its prompt at trace level
    assert any(r["level"] == "DEBUG" and r["msg"].startswith("completion request model=smollm2") for r in records)
    assert any(r["level"] == "TRACE" and "Hi" in r["msg"] for r in records)
    requests = [r for r in records if r["source"] == "corral.access" and r["path"] == "/api/generate"]
    assert [(r["status"], r["model"], r["method"]) for r in requests] == [(200, SMOL, "POST"), (404, "nope", "POST")]
    assert all(isinstance(r["duration"], float) and r["client"] == "127.0.0.1" for r in requests)
