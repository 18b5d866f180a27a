"""Every endpoint's JSON has Ollama's keys, order and omitempty behaviour, and parses with both SDKs' types."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama._types as official
import pytest

import corral.client._types as ours
from corral.api.golden import check_wire
from tests.servers import CorralServer

CHAT = "smollm2:135m"
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")


def _lines(r: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.text.splitlines() if x.strip()]


def _both(type_name: str, wire: dict[str, Any]) -> None:
    """The official type and ours both accept the object."""
    getattr(official, type_name)(**wire)
    getattr(ours, type_name)(**wire)


def test_generate_stream_contract(server: CorralServer) -> None:
    r = httpx.post(server.url + "/api/generate", json={"model": CHAT, "prompt": "Hi",
                                                        "options": {"temperature": 0, "num_predict": 5}},
                   timeout=120)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    chunks = _lines(r)
    for c in chunks[:-1]:
        assert check_wire("generate.chunk", c) == []
        assert not any(k in c for k in (*METRICS, "context", "thinking", "done_reason"))
        _both("GenerateResponse", c)
    final = chunks[-1]
    assert check_wire("generate.final", final) == []
    assert final["done"] is True and final["done_reason"] in ("stop", "length")
    assert all(isinstance(final[k], int) for k in METRICS)
    assert "thinking" not in final
    _both("GenerateResponse", final)


def test_chat_contract_stream_and_not(server: CorralServer) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}],
            "options": {"temperature": 0, "num_predict": 5}}
    chunks = _lines(httpx.post(server.url + "/api/chat", json=body, timeout=120))
    for c in chunks[:-1]:
        assert check_wire("chat.chunk", c) == []
        assert check_wire("chat.message", c["message"]) == []
        assert c["message"]["role"] == "assistant"
        _both("ChatResponse", c)
    assert check_wire("chat.final", chunks[-1]) == []
    whole = httpx.post(server.url + "/api/chat", json={**body, "stream": False}, timeout=120)
    assert whole.headers["content-type"] == "application/json; charset=utf-8"
    assert check_wire("chat.final", whole.json()) == []
    assert "context" not in whole.json()
    _both("ChatResponse", whole.json())


@pytest.mark.parametrize(("method", "path", "golden", "type_name", "body"), [
    ("GET", "/api/tags", "tags", "ListResponse", None),
    ("POST", "/api/show", "show", "ShowResponse", {"model": CHAT}),
    ("GET", "/api/ps", "ps", "ProcessResponse", None),
    ("GET", "/api/version", "version", None, None),
])
def test_model_endpoints_contract(server: CorralServer, method: str, path: str, golden: str,
                                  type_name: str | None, body: dict[str, Any] | None) -> None:
    # make sure /api/ps has something to show
    httpx.post(server.url + "/api/generate", json={"model": CHAT}, timeout=120)
    r = httpx.request(method, server.url + path, json=body, timeout=60)
    assert r.status_code == 200
    wire = r.json()
    assert check_wire(golden, wire) == []
    if golden == "tags":
        assert wire["models"]
        for m in wire["models"]:
            assert check_wire("tags.model", m) == []
            assert check_wire("details", m["details"]) == []
    if golden == "ps":
        assert wire["models"]
        for m in wire["models"]:
            assert check_wire("ps.model", m) == []
            assert m["size_vram"] == 0 and m["context_length"] > 0
    if type_name:
        _both(type_name, wire)


def test_error_contract(server: CorralServer) -> None:
    r = httpx.post(server.url + "/api/chat", json={"model": "missing-model", "messages": []})
    assert r.status_code == 404
    assert check_wire("error", r.json()) == []
