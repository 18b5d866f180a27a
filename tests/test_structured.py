"""Structured outputs on the real model: ``format`` as a grammar, corral's ``options.grammar``, Ollama's 400s,
and ollama-python's own structured-outputs example (model name and options adapted, nothing else)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sdk.sdist import fetch_sdist, unpack
from tests.servers import REPO, CorralServer

CHAT = "smollm2:135m"
GREETING = {"type": "object", "properties": {"greeting": {"type": "string", "maxLength": 24},
                                             "polite": {"type": "boolean"}},
            "required": ["greeting", "polite"]}


def post(server: CorralServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=300)


def lines(r: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


@pytest.mark.parametrize("stream", [False, True])
def test_schema_format_on_chat_and_generate(server: CorralServer, stream: bool) -> None:
    options = {"temperature": 0.8, "seed": 7, "num_predict": 200}
    messages = [{"role": "user", "content": "Greet me in JSON."}]
    r = post(server, "/api/chat", {"model": CHAT, "messages": messages, "format": GREETING, "stream": stream,
                                   "options": options})
    assert r.status_code == 200, r.text
    if stream:
        parts = lines(r)
        text = "".join(p["message"]["content"] for p in parts)
        final = parts[-1]
        assert len(parts) > 3  # it streamed
    else:
        final = r.json()
        text = final["message"]["content"]
    # the grammar bounds every part, so the object always closes and the reply stops there
    assert final["done_reason"] == "stop"
    doc = json.loads(text)
    assert list(doc) == ["greeting", "polite"] and isinstance(doc["polite"], bool) and len(doc["greeting"]) <= 24

    r = post(server, "/api/generate", {"model": CHAT, "prompt": "Greet me in JSON.", "format": GREETING,
                                       "stream": False, "options": options})
    assert r.status_code == 200 and r.json()["done_reason"] == "stop"
    assert set(json.loads(r.json()["response"])) == {"greeting", "polite"}


def test_json_format_gives_an_object(server: CorralServer) -> None:
    r = post(server, "/api/generate", {"model": CHAT, "prompt": "Describe a cat as JSON.", "format": "json",
                                       "stream": False, "options": {"temperature": 0, "num_predict": 96}})
    assert r.status_code == 200
    body = r.json()
    text = body["response"]
    assert text.startswith("{")
    if body["done_reason"] == "stop":
        assert isinstance(json.loads(text), dict)


def test_raw_grammar_option(server: CorralServer) -> None:
    grammar = r'root ::= "Hello, " [A-Z] [a-z]{2,6} "!"'
    for stream in (False, True):
        r = post(server, "/api/generate", {"model": CHAT, "prompt": "Say hello.", "stream": stream,
                                           "options": {"grammar": grammar, "seed": 3}})
        assert r.status_code == 200
        parts = lines(r) if stream else [r.json()]
        text = "".join(p["response"] for p in parts)
        assert text.startswith("Hello, ") and text.endswith("!") and 10 <= len(text) <= 15, text
        assert parts[-1]["done_reason"] == "stop"


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"format": "yaml"}, 400, 'invalid format: "\\"yaml\\""; expected "json" or a valid JSON Schema object'),
    ({"format": 3}, 400, 'invalid format: "3"; expected "json" or a valid JSON Schema object'),
    ({"format": {"type": "bogus"}}, 400, "invalid JSON schema in format"),
    ({"format": {"$ref": "#/$defs/nowhere"}}, 400, "invalid JSON schema in format"),
    ({"format": "json", "options": {"grammar": "root ::= \"x\""}}, 400,
     'option "grammar" cannot be combined with "format"'),
    ({"options": {"grammar": 7}}, 400, 'option "grammar" must be of type string'),
    ({"options": {"grammar": "root ::= undefined-rule"}}, 400, "invalid grammar"),
])
@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_bad_formats(server: CorralServer, path: str, body: dict[str, Any], status: int, error: str) -> None:
    base: dict[str, Any] = {"model": CHAT, "stream": False}
    base.update({"prompt": "x"} if path == "/api/generate" else {"messages": [{"role": "user", "content": "x"}]})
    r = post(server, path, {**base, **body})
    assert (r.status_code, r.json()) == (status, {"error": error})


# --- the official example ----------------------------------------------------------------------------------

DRIVER = """
import json, sys
import ollama
import pydantic

source = sys.stdin.read()
replies = []
real_chat = ollama.chat


def chat(*args, **kwargs):
    reply = real_chat(*args, **kwargs)
    replies.append(reply)
    return reply


ollama.chat = chat  # the example's `from ollama import chat` picks this up
results = []
for seed in range(20):
    replies.clear()
    valid = True
    try:
        exec(source.replace("SEED", str(seed)), {"__name__": "__main__"})
    except pydantic.ValidationError:
        valid = False
    reply = replies[-1]
    results.append({"seed": seed, "done_reason": reply.done_reason, "valid": valid,
                    "content": reply.message.content})
print(json.dumps(results))
"""


def _example_source(tmp: Path) -> str:
    source = (unpack(fetch_sdist(), "examples", tmp) / "structured-outputs.py").read_text()
    # The adaptation: model name, and the acceptance test's sampling (temperature 0.8, a seed, 512 tokens).
    assert "model='llama3.1:8b'" in source and "options={'temperature': 0}" in source
    source = source.replace("model='llama3.1:8b'", f"model='{CHAT}'")
    return source.replace("options={'temperature': 0}",
                          "options={'temperature': 0.8, 'seed': SEED, 'num_predict': 512}")


@pytest.fixture
def fresh_server(models_dir: Path) -> Iterator[CorralServer]:
    """A server of its own: replies at temperature 0.8 depend (through the prompt cache's arithmetic) on what
    the runner evaluated before, so the example runs from a known state and its count is reproducible."""
    srv = CorralServer(models=models_dir, env={"OLLAMA_NUM_PARALLEL": "1"}).start()
    yield srv
    srv.stop()


@pytest.mark.timeout(3600)  # 20 replies of up to 512 tokens; a busy 2-core machine can make that slow
def test_official_structured_outputs_example(fresh_server: CorralServer, tmp_path: Path) -> None:
    source = _example_source(tmp_path)
    env = {**os.environ, "OLLAMA_HOST": fresh_server.host, "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([sys.executable, "-c", DRIVER], input=source, env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=3500)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 20
    stopped = [r for r in results if r["done_reason"] == "stop"]
    invalid = [r for r in stopped if not r["valid"]]
    assert not invalid, invalid  # every reply that ended by itself validates against FriendList
    print("structured-outputs example:", [(r["seed"], r["done_reason"]) for r in results])
    assert len(stopped) >= 18, [(r["seed"], r["done_reason"], r["content"][-80:]) for r in results]
