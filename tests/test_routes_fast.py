"""Routes, translations and error mapping against a server whose runners load no model.

``fake_server`` runs `corral serve` with ``CORRAL_FAKE_RUNNER=1``: the scheduler, the runner channel and the
batching loop are the real ones, the engine is :class:`corral.scheduler.fakerunner.FakeEngine`, which answers
the text after the last ``say:`` of its prompt (``ok`` without one), one byte per token. So these tests know
the exact reply and token counts, and the whole module runs in seconds: it is the inner loop
(``pytest -m "not slow"``); the same routes on the real model are covered by the slow tests.
"""

from __future__ import annotations

import json
import math
import os
import signal
from typing import Any

import httpx
import openai
import pytest

from corral.api.golden import check_wire
from tests.servers import CorralServer, child_pids, wait_until

CHAT = "smollm2:135m"


def post(server: CorralServer, path: str, body: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60)


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


# --- native API ---------------------------------------------------------------------------------------------


def test_chat_answers_and_counts(fake_server: CorralServer) -> None:
    r = post(fake_server, "/api/chat", {"model": CHAT, "messages": [{"role": "user", "content": "say: pong"}],
                                        "stream": False})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert check_wire("chat.final", body) == []
    assert body["message"] == {"role": "assistant", "content": "pong"}
    assert (body["done"], body["done_reason"], body["eval_count"]) == (True, "stop", len("pong"))
    # a token is a byte: the rendered prompt holds at least the user's text
    assert body["prompt_eval_count"] >= len("say: pong")


def test_chat_streams_ndjson(fake_server: CorralServer) -> None:
    r = post(fake_server, "/api/chat", {"model": CHAT, "messages": [{"role": "user", "content": "say: héllo"}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = ndjson(r)
    *chunks, final = lines
    assert all(check_wire("chat.chunk", c) == [] and c["done"] is False for c in chunks)
    assert check_wire("chat.final", final) == [] and final["done_reason"] == "stop"
    # é is two bytes, two tokens: the runner holds back half a character, so no chunk carries U+FFFD
    assert "".join(c["message"]["content"] for c in lines) == "héllo"
    assert final["eval_count"] == len("héllo".encode())


def test_generate_context_carries_the_conversation(fake_server: CorralServer) -> None:
    first = post(fake_server, "/api/generate", {"model": CHAT, "prompt": "say: first", "stream": False}).json()
    assert check_wire("generate.final", first) == [] and first["response"] == "first"
    assert isinstance(first["context"], list) and first["context"]
    # No "say:" in the new prompt: the fake can only answer "first" if the context was replayed before it.
    again = post(fake_server, "/api/generate", {"model": CHAT, "prompt": "and now?", "context": first["context"],
                                                "stream": False}).json()
    fresh = post(fake_server, "/api/generate", {"model": CHAT, "prompt": "and now?", "stream": False}).json()
    assert (again["response"], fresh["response"]) == ("first", "ok")


@pytest.mark.parametrize(
    ("options", "text", "reason"),
    [({"num_predict": 3}, "abc", "length"), ({"stop": ["d"]}, "abc", "stop"), ({}, "abcdef", "stop")],
)
def test_limits_and_stops(fake_server: CorralServer, options: dict[str, Any], text: str, reason: str) -> None:
    body = post(fake_server, "/api/generate", {"model": CHAT, "prompt": "say: abcdef", "options": options,
                                               "stream": False}).json()
    assert (body["response"], body["done_reason"]) == (text, reason)


def test_embed_normalises(fake_server: CorralServer) -> None:
    body = post(fake_server, "/api/embed", {"model": CHAT, "input": ["abc", "zzzz"]}).json()
    assert check_wire("embed", body) == []
    assert body["prompt_eval_count"] == 7
    vectors = body["embeddings"]
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors) and vectors[0] != vectors[1]
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-6) for v in vectors)


# --- OpenAI and Anthropic translations ---------------------------------------------------------------------


def test_openai_chat_completion(fake_server: CorralServer) -> None:
    client = openai.OpenAI(base_url=fake_server.url + "/v1", api_key="unused")
    done = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "say: hi there"}])
    assert done.object == "chat.completion" and done.model == CHAT
    assert done.choices[0].message.content == "hi there" and done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens == len("hi there")
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    cut = client.chat.completions.create(model=CHAT, max_tokens=2, messages=[{"role": "user", "content": "say: xyz"}])
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("xy", "length")


def test_openai_stream_is_sse(fake_server: CorralServer) -> None:
    r = post(fake_server, "/v1/chat/completions", {"model": CHAT, "stream": True,
                                                   "messages": [{"role": "user", "content": "say: streamed"}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "streamed"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


def test_anthropic_message(fake_server: CorralServer) -> None:
    r = post(fake_server, "/v1/messages", {"model": CHAT, "max_tokens": 64,
                                           "messages": [{"role": "user", "content": "say: bonjour"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["type"], body["role"], body["stop_reason"]) == ("message", "assistant", "end_turn")
    assert body["content"] == [{"type": "text", "text": "bonjour"}]
    assert body["usage"]["output_tokens"] == len("bonjour")


# --- errors -------------------------------------------------------------------------------------------------

NATIVE_ERRORS = [
    ("/api/chat", {"model": "nope", "messages": []}, 404, "model 'nope' not found"),
    ("/api/generate", {"model": "nope", "prompt": "x"}, 404, "model 'nope' not found"),
    ("/api/embed", {"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
    ("/api/chat", {"messages": []}, 400, "model is required"),
    ("/api/chat", b"{", 400, None),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), NATIVE_ERRORS)
def test_native_errors(fake_server: CorralServer, path: str, body: Any, status: int, message: str | None) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(fake_server.url + path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert list(r.json()) == ["error"] and "Traceback" not in r.json()["error"]
    if message is not None:
        assert r.json()["error"] == message


def test_family_error_envelopes(fake_server: CorralServer) -> None:
    r = post(fake_server, "/v1/chat/completions", {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model 'nope' not found"
    assert r.json()["error"]["type"] == "not_found_error"
    r = post(fake_server, "/v1/messages", {"model": "nope", "max_tokens": 8,
                                           "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "not_found_error"


def _fake_runners(server: CorralServer) -> list[int]:
    assert server.proc is not None
    pids = []
    for pid in child_pids(server.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"corral.scheduler.fakerunner" in f.read().split(b"\0"):
                    pids.append(pid)
        except OSError:
            pass
    return pids


def _loaded(server: CorralServer) -> list[str]:
    return [m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]]


def test_runner_killed_mid_stream(fake_server: CorralServer) -> None:
    """A runner that dies mid-answer ends the stream with Ollama's error line; the next request reloads."""
    model = "gemma3:270m"  # a runner of its own: the stall blocks every request of its runner
    post(fake_server, "/api/generate", {"model": model, "keep_alive": 0})  # not loaded, whatever ran before
    wait_until(lambda: model not in _loaded(fake_server), timeout=30, what=f"{model} to unload")
    before = set(_fake_runners(fake_server))
    body = {"model": model, "messages": [{"role": "user", "content": "stall: partial"}]}
    with httpx.stream("POST", fake_server.url + "/api/chat", json=body, timeout=60) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        text = ""
        while text != "partial":  # the fake says this much, then stalls until killed
            text += json.loads(next(lines))["message"]["content"]
        (pid,) = set(_fake_runners(fake_server)) - before
        os.kill(pid, signal.SIGKILL)
        rest = [json.loads(line) for line in lines if line]
    assert rest == [{"error": "llama runner process has terminated: signal: killed"}]
    wait_until(lambda: model not in _loaded(fake_server), timeout=30, what="the dead runner to leave /api/ps")
    again = post(fake_server, "/api/chat", {"model": model, "messages": [{"role": "user", "content": "say: back"}],
                                            "stream": False})
    assert again.json()["message"]["content"] == "back"
