"""``POST /api/tokenize`` and ``POST /api/detokenize`` (corral's, after Ollama's proposal ollama/ollama#12030).

The fast half runs on ``fake_server``, whose runner's "tokenizer" is one token per UTF-8 byte (id = byte + 3,
vocabulary 259), so every id is known in advance. The slow half runs the real engine on both bundled models
(through the shared ``server``, which marks it slow): round trips, the count against a raw generate's
``prompt_eval_count``, ids outside the vocabulary, the SDKs (corral's sync and async clients, the module
functions, and the official ``ollama`` client's raw request path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import corral
from corral.store.models import Store
from tests.servers import CorralServer

SMOL, GEMMA = "smollm2:135m", "gemma3:270m"
TEXTS = {"ascii": "Hello, world! The llama says hi.", "chinese": "你好，世界", "emoji": "🦙👍"}
FAKE_OFFSET, FAKE_VOCAB = 3, 259  # corral.scheduler.fakerunner: a token is a byte + 3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def post(server: CorralServer, path: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(server.url + path, content=body, headers={"Content-Type": "application/json"},
                          timeout=300)
    return httpx.post(server.url + path, json=body, timeout=300)


def tokenize(server: CorralServer, model: str, content: str) -> list[int]:
    r = post(server, "/api/tokenize", {"model": model, "content": content})
    assert r.status_code == 200, r.text
    tokens = r.json()["tokens"]
    assert isinstance(tokens, list) and all(type(t) is int for t in tokens)
    return tokens


def detokenize(server: CorralServer, model: str, tokens: list[int]) -> str:
    r = post(server, "/api/detokenize", {"model": model, "tokens": tokens})
    assert r.status_code == 200, r.text
    content = r.json()["content"]
    assert isinstance(content, str)
    return content


def raw_prompt_count(server: CorralServer, model: str, prompt: str) -> int:
    r = post(server, "/api/generate", {"model": model, "prompt": prompt, "raw": True, "stream": False,
                                       "options": {"num_predict": 1}})
    assert r.status_code == 200, r.text
    return int(r.json()["prompt_eval_count"])


# --- the routes, on the fake runner (fast) ----------------------------------------------------------------------


def test_wire_shapes(fake_server: CorralServer) -> None:
    r = post(fake_server, "/api/tokenize", {"model": SMOL, "content": "hé"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    # the proposal's keys, in its struct order; the durations are omitempty
    assert list(body)[:2] == ["model", "tokens"] and set(body) <= {"model", "tokens", "total_duration",
                                                                  "load_duration"}
    assert body["model"] == SMOL
    assert body["tokens"] == [b + FAKE_OFFSET for b in "hé".encode()]
    assert body["total_duration"] > 0

    r = post(fake_server, "/api/detokenize", {"model": SMOL, "tokens": body["tokens"]})
    assert r.status_code == 200
    back = r.json()
    assert list(back)[:2] == ["model", "content"] and set(back) <= {"model", "content", "total_duration",
                                                                   "load_duration"}
    assert (back["model"], back["content"]) == (SMOL, "hé")


def test_empty_input_only_loads(fake_server: CorralServer) -> None:
    fake_server.unload_all()
    r = post(fake_server, "/api/tokenize", {"model": SMOL, "content": ""})
    assert r.status_code == 200 and r.json()["tokens"] == []  # a list, never null
    assert [m["name"] for m in httpx.get(fake_server.url + "/api/ps").json()["models"]] == [SMOL]
    r = post(fake_server, "/api/detokenize", {"model": SMOL, "tokens": []})
    assert r.status_code == 200 and r.json()["content"] == ""
    r = post(fake_server, "/api/detokenize", {"model": SMOL})
    assert r.status_code == 200 and (r.json()["model"], r.json()["content"]) == (SMOL, "")


def test_count_is_the_raw_prompt_count_fake(fake_server: CorralServer) -> None:
    text = "count me: 12345 ünïcode"
    assert len(tokenize(fake_server, SMOL, text)) == raw_prompt_count(fake_server, SMOL, text) == len(text.encode())


ERRORS = [
    ("/api/tokenize", b"", 400, "missing request body"),
    ("/api/tokenize", b"{", 400, None),
    ("/api/tokenize", {"content": "x"}, 400, "model is required"),
    ("/api/detokenize", {"tokens": [5]}, 400, "model is required"),
    ("/api/tokenize", {"model": "nope", "content": "x"}, 404, 'model "nope" not found, try pulling it first'),
    ("/api/detokenize", {"model": "nope", "tokens": [5]}, 404, 'model "nope" not found, try pulling it first'),
    ("/api/tokenize", {"model": SMOL, "content": 3}, 400, 'invalid value for field "content": expected string'),
    ("/api/tokenize", {"model": SMOL, "content": ["a"]}, 400, None),
    ("/api/tokenize", {"model": 7, "content": "a"}, 400, 'invalid value for field "model": expected string'),
    ("/api/detokenize", {"model": SMOL, "tokens": "abc"}, 400, 'invalid value for field "tokens": expected array'),
    ("/api/detokenize", {"model": SMOL, "tokens": [1, "2"]}, 400,
     'invalid value for field "tokens[1]": expected integer'),
    ("/api/detokenize", {"model": SMOL, "tokens": [1.5]}, 400,
     'invalid value for field "tokens[0]": expected integer'),
    ("/api/detokenize", {"model": SMOL, "tokens": [True]}, 400,
     'invalid value for field "tokens[0]": expected integer'),
    ("/api/detokenize", {"model": SMOL, "tokens": [[1]]}, 400, None),
    ("/api/tokenize", {"model": SMOL, "content": "x", "keep_alive": True}, 400, "Unsupported type: 'bool'"),
    ("/api/tokenize", {"model": SMOL, "content": "x", "options": {"num_ctx": "big"}}, 400,
     'option "num_ctx" must be of type integer'),
    # ids outside the vocabulary: refused by the runner before llama.cpp sees them
    ("/api/detokenize", {"model": SMOL, "tokens": [-1]}, 400,
     f"invalid token -1: the vocabulary has {FAKE_VOCAB} tokens"),
    ("/api/detokenize", {"model": SMOL, "tokens": [FAKE_OFFSET + 65, FAKE_VOCAB]}, 400,
     f"invalid token {FAKE_VOCAB}: the vocabulary has {FAKE_VOCAB} tokens"),
    ("/api/detokenize", {"model": SMOL, "tokens": [2**70]}, 400, None),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), ERRORS)
def test_errors(fake_server: CorralServer, path: str, body: Any, status: int, message: str | None) -> None:
    r = post(fake_server, path, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error, str) and error
    if message is not None:
        assert error == message


def test_bad_ids_leave_the_runner_serving(fake_server: CorralServer) -> None:
    assert tokenize(fake_server, SMOL, "a") == [ord("a") + FAKE_OFFSET]
    before = fake_server.runners()
    assert before
    for bad in ([-5], [FAKE_VOCAB], [10**12]):
        assert post(fake_server, "/api/detokenize", {"model": SMOL, "tokens": bad}).status_code == 400
    assert fake_server.runners() == before
    assert detokenize(fake_server, SMOL, [ord("z") + FAKE_OFFSET]) == "z"


# --- the real engine, both bundled models (slow) ------------------------------------------------------------


@pytest.mark.parametrize("model", [SMOL, GEMMA])
@pytest.mark.parametrize("kind", list(TEXTS))
def test_round_trip_and_count(server: CorralServer, model: str, kind: str) -> None:
    text = TEXTS[kind]
    tokens = tokenize(server, model, text)
    assert tokens and detokenize(server, model, tokens) == text
    # exactly the ids generation evaluates for the same raw prompt (prompt_eval_count is the whole prompt)
    assert len(tokens) == raw_prompt_count(server, model, text)


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_bos_is_reported_and_skipped_back(server: CorralServer, models_dir: Path, model: str) -> None:
    meta = Store(models_dir).get(model).gguf()
    assert meta is not None and meta.bos_token_id is not None
    tokens = tokenize(server, model, "plain words")
    # a tokenizer that adds a BOS by itself gets one in the list (generation evaluates it); one that does not,
    # none
    assert (tokens[0] == meta.bos_token_id) is bool(meta.add_bos_token)
    assert detokenize(server, model, tokens) == "plain words"
    if meta.add_bos_token:
        assert detokenize(server, model, tokens[1:]) == "plain words"
        # a BOS after the first position is text like any other special token
        assert detokenize(server, model, [*tokens, meta.bos_token_id]) == "plain words" + str(meta.bos_token)


def test_special_tokens_are_parsed_as_generation_parses_them(server: CorralServer, models_dir: Path) -> None:
    meta = Store(models_dir).get(SMOL).gguf()
    assert meta is not None and meta.bos_token == "<|im_start|>"
    text = "<|im_start|>user\nhi there<|im_end|>\n"
    tokens = tokenize(server, SMOL, text)
    assert tokens[0] == meta.bos_token_id  # one special token, not the characters of its text
    assert len(tokens) < len(tokenize(server, SMOL, text.replace("|", "¦")))
    assert detokenize(server, SMOL, tokens) == text
    assert len(tokens) == raw_prompt_count(server, SMOL, text)


@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_ids_outside_the_vocabulary_are_a_400(server: CorralServer, models_dir: Path, model: str) -> None:
    meta = Store(models_dir).get(model).gguf()
    assert meta is not None and meta.vocab_size
    n = meta.vocab_size
    detokenize(server, model, [n - 1])  # the last id is in range: a 200
    runners = server.runners()
    for bad in ([n], [0, -1], [10**12]):
        r = post(server, "/api/detokenize", {"model": model, "tokens": bad})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error.startswith("invalid token ") and error.endswith(f"the vocabulary has {n} tokens")
    # the runner is alive and the same one: nothing reached llama.cpp
    assert server.runners() == runners
    assert detokenize(server, model, tokenize(server, model, "still here")) == "still here"


def test_uses_the_generation_runner(server: CorralServer) -> None:
    raw_prompt_count(server, GEMMA, "warm up")
    runners = server.runners()
    loaded = [m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]]
    tokenize(server, GEMMA, "no second runner")
    detokenize(server, GEMMA, [2, 3])
    assert server.runners() == runners
    assert [m["name"] for m in httpx.get(server.url + "/api/ps").json()["models"]] == loaded


def test_unknown_model_real_server(server: CorralServer) -> None:
    r = post(server, "/api/tokenize", {"model": "no-such-model", "content": "x"})
    assert (r.status_code, r.json()) == (404, {"error": 'model "no-such-model" not found, try pulling it first'})


# --- SDKs against the real server (slow) --------------------------------------------------------------------


def test_sync_client(server: CorralServer) -> None:
    client = corral.Client(host=server.url)
    text = TEXTS["chinese"]
    out = client.tokenize(GEMMA, text)
    assert isinstance(out, corral.TokenizeResponse) and out.model == GEMMA
    assert list(out.tokens) == tokenize(server, GEMMA, text)
    back = client.detokenize(GEMMA, out.tokens)
    assert isinstance(back, corral.DetokenizeResponse) and back["content"] == text
    assert client.tokenize(model=SMOL, content="").tokens == []
    with pytest.raises(corral.ResponseError) as info:
        client.tokenize("no-such-model", "x")
    assert info.value.status_code == 404 and "try pulling it first" in info.value.error
    with pytest.raises(corral.ResponseError) as info:
        client.detokenize(SMOL, [-1])
    assert info.value.status_code == 400 and info.value.error.startswith("invalid token -1")


@pytest.mark.anyio
async def test_async_client(server: CorralServer) -> None:
    client = corral.AsyncClient(host=server.url)
    text = TEXTS["emoji"]
    out = await client.tokenize(SMOL, text)
    assert isinstance(out, corral.TokenizeResponse) and out.tokens
    assert list(out.tokens) == tokenize(server, SMOL, text)
    back = await client.detokenize(SMOL, out.tokens)
    assert isinstance(back, corral.DetokenizeResponse) and back.content == text
    with pytest.raises(corral.ResponseError) as info:
        await client.detokenize(SMOL, [10**9])
    assert info.value.status_code == 400


def test_module_functions(server: CorralServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corral, "_client", corral.Client(host=server.url))
    tokens = corral.tokenize(SMOL, TEXTS["ascii"]).tokens
    assert list(tokens) == tokenize(server, SMOL, TEXTS["ascii"])
    assert corral.detokenize(SMOL, tokens).content == TEXTS["ascii"]


def test_official_client_raw_requests(server: CorralServer) -> None:
    import ollama

    client = ollama.Client(host=server.url)
    text = TEXTS["ascii"]
    body = client._request_raw("POST", "/api/tokenize", json={"model": GEMMA, "content": text}).json()
    assert body["model"] == GEMMA and body["tokens"] == tokenize(server, GEMMA, text)
    body = client._client.post("/api/detokenize", json={"model": GEMMA, "tokens": body["tokens"]}).json()
    assert body["content"] == text
    with pytest.raises(ollama.ResponseError) as info:
        client._request_raw("POST", "/api/detokenize", json={"model": "no-such-model", "tokens": [1]})
    assert info.value.status_code == 404
