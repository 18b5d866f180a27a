"""Hostile and malformed requests that once cost more than their own answer: a dead runner (and every other
client's stream with it), a 500 with a dropped connection. Each gets its own answer and nothing else moves."""

from __future__ import annotations

from typing import Any

import httpx

from tests.servers import CorralServer

MODEL = "smollm2:135m"
SHORT = {"num_predict": 4, "temperature": 0}


def generate(server: CorralServer, client: httpx.Client | None = None, **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "stream": False, "options": SHORT, **body}
    if client is not None:
        return client.post(server.url + "/api/generate", json=payload, timeout=120)
    return httpx.post(server.url + "/api/generate", json=payload, timeout=120)


def test_lone_surrogates_become_replacement_characters(server: CorralServer) -> None:
    """JSON allows "\\ud800" without its pair; no UTF-8 encoder does. Go's decoder makes it U+FFFD, and so
    does corral, on a kept-alive connection that stays usable afterwards."""
    raw = b'{"model": "smollm2:135m", "prompt": "Hi \\ud800 there", "stream": false, ' \
          b'"options": {"num_predict": 2, "stop": ["\\udfff"]}}'
    with httpx.Client(timeout=120) as client:
        r = client.post(server.url + "/api/generate", content=raw)
        assert r.status_code == 200, r.text
        debug = raw.replace(b'"stream"', b'"_debug_render_only": true, "stream"')
        echo = client.post(server.url + "/api/generate", content=debug)
        assert "Hi \ufffd there" in echo.json()["_debug_info"]["rendered_template"]
        chat = client.post(server.url + "/api/chat", content=b'{"model": "smollm2:135m", "stream": false, '
                           b'"messages": [{"role": "user", "content": "\\udc00"}], "options": {"num_predict": 2}}')
        assert chat.status_code == 200, chat.text
        embed = client.post(server.url + "/api/embed", content=b'{"model": "smollm2:135m", "input": ["a\\ud800"]}')
        assert embed.status_code == 200 and embed.json()["embeddings"][0]


def test_a_context_token_outside_the_vocabulary_is_refused_and_the_runner_lives(server: CorralServer) -> None:
    assert generate(server, prompt="Hi").status_code == 200
    runners = server.runners()
    for bad in ([49152], [-1], [2**31], [1, 2, 10**20]):
        r = generate(server, prompt="Hi", context=bad)
        assert r.status_code == 400 and r.json()["error"].startswith("invalid context: invalid token"), r.text
    assert generate(server, prompt="Hi").status_code == 200
    assert server.runners() == runners  # the same process: it did not abort


def test_a_prompt_too_large_for_the_runner_channel_is_refused_and_the_runner_lives(server: CorralServer) -> None:
    assert generate(server, prompt="Hi").status_code == 200
    runners = server.runners()
    r = generate(server, prompt="a" * (65 << 20))
    assert r.status_code == 400 and r.json()["error"].startswith("request too large"), r.text[:200]
    assert generate(server, prompt="Hi").status_code == 200
    assert server.runners() == runners


def test_sloppy_but_decodable_bodies_are_served_as_ollama_serves_them(server: CorralServer) -> None:
    # a message without a role renders with an empty one (not a template error)
    r = httpx.post(server.url + "/api/chat", json={"model": MODEL, "stream": False, "options": SHORT,
                                                   "messages": [{"content": "hi"}]}, timeout=120)
    assert r.status_code == 200 and r.json()["done"] is True, r.text
    # Go's decoder reads the first JSON value of a body and ignores what follows it
    body = b'{"model": "smollm2:135m", "prompt": "Hi", "stream": false, "options": {"num_predict": 2}} trailing'
    r = httpx.post(server.url + "/api/generate", content=body, timeout=120)
    assert r.status_code == 200 and r.json()["done"] is True, r.text


def test_a_schema_llama_cpp_cannot_compile_is_the_clients_mistake(server: CorralServer) -> None:
    fmt = {"type": "array", "items": {"type": "string"}, "minItems": 100000}
    r = httpx.post(server.url + "/api/chat", json={"model": MODEL, "stream": False, "format": fmt, "options": SHORT,
                                                   "messages": [{"role": "user", "content": "hi"}]}, timeout=120)
    assert (r.status_code, r.json()) == (400, {"error": "invalid grammar"})
    assert generate(server, prompt="Hi").status_code == 200


def test_a_client_leaving_mid_upload_is_logged_as_such_not_as_an_error(server: CorralServer) -> None:
    import socket

    from tests.servers import wait_until

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"model\": \"smol")
    wait_until(lambda: "client left during POST /api/show" in server.log(), timeout=10, what="the log line")
    assert "unhandled error on POST /api/show" not in server.log()
    assert httpx.get(server.url + "/api/version").status_code == 200
