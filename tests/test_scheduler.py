"""Scheduling against real servers: several models, eviction, keep-alive, queue limits, cancellation."""

from __future__ import annotations

import datetime
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.scheduler.memory import estimate_runner_bytes
from corral.store.models import Store
from tests.servers import CorralServer, runner_pids, wait_until

SMOL, GEMMA = "smollm2:135m", "gemma3:270m"
SHORT = {"temperature": 0, "num_predict": 4}


@pytest.fixture
def make_server(models_dir: Path) -> Iterator[Any]:
    started: list[CorralServer] = []

    def make(**env: str) -> CorralServer:
        srv = CorralServer(models=models_dir, env=env).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def ask(srv: CorralServer, model: str, **body: Any) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": False,
               "options": SHORT, **body}
    return httpx.post(srv.url + "/api/chat", json=payload, timeout=120)


def ps(srv: CorralServer) -> list[dict[str, Any]]:
    return list(httpx.get(srv.url + "/api/ps").json()["models"])


def loaded(srv: CorralServer) -> set[str]:
    return {m["name"] for m in ps(srv)}


def test_two_models_loaded_together(make_server: Any) -> None:
    srv = make_server()
    assert ask(srv, SMOL).status_code == 200
    assert ask(srv, GEMMA).status_code == 200
    assert loaded(srv) == {SMOL, GEMMA}
    assert len(srv.runners()) == 2


def test_max_loaded_models_one_evicts_the_first(make_server: Any) -> None:
    srv = make_server(OLLAMA_MAX_LOADED_MODELS="1")
    assert ask(srv, SMOL).status_code == 200
    first = srv.runners()
    assert ask(srv, GEMMA).status_code == 200
    assert loaded(srv) == {GEMMA}
    wait_until(lambda: not set(first) & set(srv.runners()), timeout=10, what="the evicted runner to exit")


def test_memory_cap_evicts(make_server: Any, models_dir: Path) -> None:
    store = Store(models_dir)
    sizes = []
    for name in (SMOL, GEMMA):
        m = store.get(name)
        meta = m.gguf()
        assert m.model_path is not None and meta is not None
        sizes.append(estimate_runner_bytes(m.model_path.stat().st_size, meta.kv, 4096, 1))
    cap = max(sizes) + 2**20  # room for either model, never both
    srv = make_server(CORRAL_MAX_MEMORY=str(cap))
    assert ask(srv, SMOL).status_code == 200
    assert ask(srv, GEMMA).status_code == 200
    assert loaded(srv) == {GEMMA}
    assert ps(srv)[0]["size"] <= cap


def _expires(entry: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00")).timestamp()


def test_keep_alive_rules(make_server: Any) -> None:
    srv = make_server()
    assert ask(srv, SMOL, keep_alive="10m").status_code == 200
    left = _expires(ps(srv)[0]) - time.time()
    assert 540 < left <= 600
    assert ask(srv, SMOL).status_code == 200  # no keep_alive: the runner keeps its 10m
    left = _expires(ps(srv)[0]) - time.time()
    assert 540 < left <= 600
    assert ask(srv, SMOL, keep_alive=-1).status_code == 200  # negative: forever
    # as Ollama: now plus the longest Go duration (2^63-1 ns, about 292 years)
    assert abs(_expires(ps(srv)[0]) - (time.time() + (2**63 - 1) / 1e9)) < 60
    assert ask(srv, SMOL, keep_alive=0).status_code == 200  # 0: unloaded as soon as the reply is done
    wait_until(lambda: not ps(srv), timeout=10, what="keep_alive 0 to unload")
    wait_until(lambda: not srv.runners(), timeout=10, what="the runner to exit")


@pytest.mark.parametrize("path", ["/api/chat", "/api/embed"])
def test_keep_alive_0_on_a_model_not_loaded_loads_answers_and_unloads(make_server: Any, path: str) -> None:
    """The load itself must not count as the idle moment after which keep_alive 0 unloads: the request
    that asked for the load would find the runner gone, and load it again, over and over."""
    srv = make_server()
    body: dict[str, Any] = {"model": SMOL, "keep_alive": 0, "stream": False, "options": SHORT}
    body.update({"messages": [{"role": "user", "content": "Hi"}]} if path == "/api/chat" else {"input": "Hi"})
    r = httpx.post(srv.url + path, json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json().get("message", {}).get("content") or r.json().get("embeddings")
    wait_until(lambda: not ps(srv) and not srv.runners(), timeout=10, what="the runner to unload and exit")
    assert srv.log().count("loaded ") == 1


def test_empty_request_loads_and_unloads(make_server: Any) -> None:
    srv = make_server()
    r = httpx.post(srv.url + "/api/generate", json={"model": SMOL}, timeout=120)
    assert r.json()["done_reason"] == "load" and loaded(srv) == {SMOL}
    r = httpx.post(srv.url + "/api/generate", json={"model": SMOL, "keep_alive": 0}, timeout=120)
    assert r.json()["done_reason"] == "unload"
    wait_until(lambda: not ps(srv), timeout=10, what="the model to unload")


def test_chat_and_embed_on_one_model_do_not_reload_each_other(make_server: Any) -> None:
    srv = make_server()
    for _ in range(2):
        assert ask(srv, SMOL).status_code == 200
        r = httpx.post(srv.url + "/api/embed", json={"model": SMOL, "input": "Hi"}, timeout=120)
        assert r.status_code == 200 and r.json()["embeddings"][0]
    assert srv.log().count("loaded ") == 2 and len(srv.runners()) == 2
    # one row for the model, as Ollama (which serves both from one runner) lists it; its size is both runners'
    [row] = ps(srv)
    assert row["name"] == SMOL and row["context_length"] == 4096
    stop = httpx.post(srv.url + "/api/generate", json={"model": SMOL, "keep_alive": 0}, timeout=60)
    assert stop.json()["done_reason"] == "unload"
    wait_until(lambda: not ps(srv) and not srv.runners(), timeout=10, what="both runners to unload")


def test_two_requests_with_different_load_options_are_both_served(make_server: Any) -> None:
    """Each needs its own runner of the same weights: the first is served, then the second reloads (the
    two loads once unloaded each other's fresh runner before its request could hold it, forever)."""
    srv = make_server()
    assert ask(srv, SMOL).status_code == 200  # a third set of options is loaded
    results: dict[int, int] = {}

    def one(num_ctx: int) -> None:
        results[num_ctx] = ask(srv, SMOL, options={**SHORT, "num_ctx": num_ctx}).status_code

    threads = [threading.Thread(target=one, args=(n,)) for n in (1024, 3072)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {1024: 200, 3072: 200}
    assert srv.log().count("loaded ") == 3


def test_load_option_change_reloads(make_server: Any) -> None:
    srv = make_server()
    assert ask(srv, SMOL).status_code == 200
    first = srv.runners()
    assert ps(srv)[0]["context_length"] == 4096
    assert ask(srv, SMOL, options={**SHORT, "num_ctx": 2048}).status_code == 200
    assert ps(srv)[0]["context_length"] == 2048
    assert len(srv.runners()) == 1 and srv.runners() != first
    assert ask(srv, SMOL, options={**SHORT, "num_ctx": 2048, "temperature": 0.5}).status_code == 200
    assert ps(srv)[0]["context_length"] == 2048  # a runtime option does not reload


def _stream_in_background(srv: CorralServer, model: str, out: list[Any], **body: Any) -> threading.Thread:
    def run() -> None:
        try:
            out.append(ask(srv, model, **body))
        except httpx.HTTPError as exc:
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _long_stream(srv: CorralServer) -> Any:
    """A generation that keeps smollm2's runner busy: greedy counting never reaches an end of text."""
    body = {"model": SMOL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True,
            "options": {"num_predict": 3000, "temperature": 0}}
    return httpx.stream("POST", srv.url + "/api/generate", json=body, timeout=120)


def test_full_queue_answers_503(make_server: Any) -> None:
    srv = make_server(OLLAMA_MAX_LOADED_MODELS="1", OLLAMA_MAX_QUEUE="1")
    with _long_stream(srv) as busy:
        lines = busy.iter_lines()  # keep a reference: a collected iterator closes the response
        next(lines)  # smollm2 is loaded and busy
        queued = srv.log().count("pending")
        waiting: list[Any] = []
        t = _stream_in_background(srv, GEMMA, waiting)  # needs smollm2 evicted: waits in the queue
        wait_until(lambda: srv.log().count("pending") > queued, timeout=10, what="the gemma request to queue")
        r = ask(srv, SMOL, options={**SHORT, "num_ctx": 1024})  # another load: the queue is full
        assert r.status_code == 503
        assert r.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}
    t.join(120)
    assert waiting and isinstance(waiting[0], httpx.Response) and waiting[0].status_code == 200
    assert loaded(srv) == {GEMMA}


def test_client_leaving_the_queue_is_dropped(make_server: Any) -> None:
    srv = make_server(OLLAMA_MAX_LOADED_MODELS="1")
    with _long_stream(srv) as busy:
        lines = busy.iter_lines()  # keep a reference: a collected iterator closes the response
        next(lines)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + "/api/chat", json={"model": GEMMA, "messages": [{"role": "user", "content": "x"}]},
                       timeout=httpx.Timeout(120, read=1.0))
        wait_until(lambda: "client left while its request waited" in srv.log(), timeout=10,
                   what="the server to notice the client left")
    time.sleep(0.5)  # let a wrongly kept load show up, if there were one
    assert GEMMA not in loaded(srv)


def test_disconnect_cancels_generation_and_frees_the_slot(make_server: Any) -> None:
    srv = make_server()
    with _long_stream(srv) as r:
        lines = r.iter_lines()
        for _ in range(3):
            next(lines)
    match = wait_until(lambda: re.search(r"canceled by its client; (\d+) token\(s\) generated after", srv.log()),
                       timeout=10, what="the runner's cancel report")
    assert int(match.group(1)) <= 2
    assert ask(srv, SMOL).status_code == 200  # the slot serves the next request


@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_a_client_leaving_a_non_streamed_request_cancels_it(make_server: Any, path: str) -> None:
    """The answer comes in one piece at the end, but a client that gives up first still stops the work."""
    srv = make_server()
    assert ask(srv, SMOL).status_code == 200  # loaded: the request below starts generating at once
    body: dict[str, Any] = {"model": SMOL, "stream": False, "options": {"num_predict": 3000, "temperature": 0}}
    body.update({"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True} if path == "/api/generate"
                else {"messages": [{"role": "user", "content": "Count from 1 to 1000, comma separated."}]})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(srv.url + path, json=body, timeout=httpx.Timeout(120, read=1.5))
    wait_until(lambda: re.search(r"canceled by its client; (\d+) token\(s\) generated after", srv.log()),
               timeout=10, what="the runner's cancel report")
    assert ask(srv, SMOL).status_code == 200


def test_second_chat_turn_evaluates_only_the_new_message(base_url: str) -> None:
    first = [{"role": "system", "content": "You are a helpful assistant. " * 20},
             {"role": "user", "content": "Tell me about the moon."}]
    r1 = httpx.post(base_url + "/api/chat", json={"model": SMOL, "messages": first, "stream": False,
                                                   "options": {"temperature": 0, "num_predict": 16}}, timeout=120)
    answer = r1.json()["message"]
    follow = "And the sun?"
    r2 = httpx.post(base_url + "/api/chat", json={
        "model": SMOL, "stream": False, "options": {"temperature": 0, "num_predict": 16},
        "messages": [*first, answer, {"role": "user", "content": follow}]}, timeout=120)
    # prompt_eval_count is the whole prompt (Ollama since 0.30.1); /v1's usage tells what the cache held
    assert r2.json()["prompt_eval_count"] > r1.json()["prompt_eval_count"] > 100
    again = [*first, answer, {"role": "user", "content": follow}]
    r3 = httpx.post(base_url + "/v1/chat/completions", timeout=120, json={
        "model": SMOL, "max_tokens": 1, "temperature": 0, "messages": again}).json()
    usage = r3["usage"]
    assert usage["prompt_tokens"] == r2.json()["prompt_eval_count"]
    # all but a token or so came from the cache (only the last is evaluated again, for its logits)
    assert usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"] <= 2


def test_context_overflow_is_handled_and_reported(base_url: str) -> None:
    small = {"temperature": 0, "num_predict": 4, "num_ctx": 256}
    history = []
    for i in range(12):
        history += [{"role": "user", "content": f"Question {i}: " + "tell me more " * 8},
                    {"role": "assistant", "content": "Sure. " * 10}]
    messages = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "Last one?"}]
    r = httpx.post(base_url + "/api/chat", json={"model": SMOL, "messages": messages, "stream": False,
                                                  "options": small}, timeout=120)
    body = r.json()
    assert r.status_code == 200, body
    assert body["truncated"]["messages"] >= 1
    assert body["prompt_eval_count"] < 256
    r = httpx.post(base_url + "/api/chat", json={"model": SMOL, "messages": messages, "stream": False,
                                                  "truncate": False, "options": small}, timeout=120)
    assert r.status_code == 400 and r.json()["error"].startswith("the prompt is longer than the context length")
    # streamed: the runner finds the prompt too long before any line is written, so the status is still 400
    r = httpx.post(base_url + "/api/chat", json={"model": SMOL, "messages": messages, "truncate": False,
                                                  "options": small}, timeout=120)
    assert r.status_code == 400 and r.json()["error"].startswith("the prompt is longer than the context length")
    with httpx.stream("POST", base_url + "/api/chat", json={"model": SMOL, "messages": messages,
                                                             "options": small}, timeout=120) as s:
        lines = [json.loads(line) for line in s.iter_lines() if line]
    assert s.status_code == 200 and lines[-1]["done"] and lines[-1]["truncated"]["messages"] >= 1
    long_prompt = "word " * 600
    r = httpx.post(base_url + "/api/generate", json={"model": SMOL, "prompt": long_prompt, "stream": False,
                                                      "options": small}, timeout=120)
    assert r.status_code == 200 and r.json()["truncated"]["tokens"] > 0
    r = httpx.post(base_url + "/api/generate", json={"model": SMOL, "prompt": long_prompt, "stream": False,
                                                      "shift": False, "options": small}, timeout=120)
    assert r.status_code == 400


def test_load_timeout_fails_cleanly(make_server: Any) -> None:
    srv = make_server(OLLAMA_LOAD_TIMEOUT="1ms")
    r = ask(srv, SMOL)
    assert r.status_code == 500 and "timed out waiting for llama runner to start" in r.json()["error"]
    wait_until(lambda: not srv.runners(), timeout=10, what="the stalled runner to be killed")
    assert httpx.get(srv.url + "/").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_no_runner_outlives_the_server(make_server: Any, models_dir: Path, sig: signal.Signals) -> None:
    srv = make_server()
    assert ask(srv, SMOL).status_code == 200 and ask(srv, GEMMA).status_code == 200
    runners = srv.runners()
    assert len(runners) == 2
    srv.stop(sig)
    wait_until(lambda: not set(runners) & set(runner_pids()), timeout=10, what="every runner to exit")


def test_stream_lines_are_json(base_url: str) -> None:
    with httpx.stream("POST", base_url + "/api/generate", json={"model": SMOL, "prompt": "Hi", "options": SHORT},
                      timeout=120) as r:
        assert all(isinstance(json.loads(line), dict) for line in r.iter_lines() if line)
