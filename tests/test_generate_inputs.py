"""The other inputs of ``/api/generate`` (and chat's image check): raw, a template override, suffix
(fill-in-the-middle and the insert capability), context, and images on a model without vision."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import ollama
import pytest

from tests.servers import CorralServer

BASE = "smollm2:135m"
FULL = "registry.ollama.ai/library/smollm2:135m"
FIM_TEMPLATE = "<fim_prefix>{{ .Prompt }}<fim_suffix>{{ .Suffix }}<fim_middle>"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def gen(server: CorralServer, **body: Any) -> httpx.Response:
    return httpx.post(server.url + "/api/generate", json={"model": BASE, "stream": False, **body}, timeout=300)


def rendered(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    text: str = r.json()["_debug_info"]["rendered_template"]
    return text


@pytest.fixture(scope="module")
def fim(server: CorralServer) -> str:
    name = f"fim-{uuid.uuid4().hex[:8]}"
    client = ollama.Client(host=server.url)
    assert client.create(model=name, from_=BASE, template=FIM_TEMPLATE).status == "success"
    assert "insert" in (client.show(name).capabilities or [])
    return name


def test_raw_sends_the_prompt_as_is(server: CorralServer) -> None:
    assert rendered(gen(server, prompt="<|im_start|>RAW", raw=True, _debug_render_only=True)) == "<|im_start|>RAW"
    r = gen(server, prompt="Once upon a time", raw=True, options={"num_predict": 4, "temperature": 0})
    assert r.status_code == 200 and r.json()["response"] and "context" not in r.json()  # no context in raw mode


@pytest.mark.parametrize("extra", [{"system": "S"}, {"template": "{{ .Prompt }}"}, {"context": [1, 2]}])
def test_raw_refuses_template_system_context(server: CorralServer, extra: dict[str, Any]) -> None:
    r = gen(server, prompt="x", raw=True, **extra)
    assert (r.status_code, r.json()) == (400, {"error": "raw mode does not support template, system, or context"})


def test_template_override(server: CorralServer) -> None:
    # a .Prompt template (the legacy form) and a .Messages one both run with the request's data
    assert rendered(gen(server, prompt="P", template="T[{{ .Prompt }}]", _debug_render_only=True)) == "T[P]"
    text = rendered(gen(server, prompt="P", system="S", _debug_render_only=True,
                        template="{{ range .Messages }}<{{ .Role }}:{{ .Content }}>{{ end }}"))
    assert text == "<system:S><user:P>"
    r = gen(server, prompt="Hello", template="{{ .Prompt }} world", options={"num_predict": 3, "temperature": 0})
    assert r.status_code == 200 and r.json()["done"] is True
    bad = gen(server, prompt="P", template="{{ .Prompt", _debug_render_only=True)
    assert bad.status_code == 400 and bad.json()["error"].startswith("template error")


def test_suffix_needs_the_insert_capability(server: CorralServer) -> None:
    r = gen(server, prompt="def add(a, b):", suffix="return c")
    assert (r.status_code, r.json()) == (400, {"error": f"{FULL} does not support insert"})


def test_fill_in_the_middle(server: CorralServer, fim: str) -> None:
    text = rendered(gen(server, model=fim, prompt="def add(a, b):\n", suffix="\n    return c",
                        system="ignored in FIM", _debug_render_only=True))
    assert text == "<fim_prefix>def add(a, b):\n<fim_suffix>\n    return c<fim_middle>"
    r = gen(server, model=fim, prompt="def add(a, b):\n", suffix="\n    return c",
            options={"num_predict": 8, "temperature": 0})
    assert r.status_code == 200 and r.json()["done_reason"] in ("stop", "length")


def test_context_continues_a_conversation(server: CorralServer) -> None:
    first = gen(server, prompt="Name a colour.", options={"num_predict": 4, "temperature": 0}).json()
    assert first["context"]
    earlier = rendered(gen(server, prompt="Name a colour.", _debug_render_only=True))
    alone = rendered(gen(server, prompt="Another.", _debug_render_only=True))
    text = rendered(gen(server, prompt="Another.", context=first["context"], _debug_render_only=True))
    # as Ollama: the context's text comes first, its special tokens written out (they were dropped once, so
    # the model saw the earlier turn without its template), then the new turn
    assert text.startswith(earlier) and text.endswith(alone) and len(text) > len(earlier) + len(alone)
    assert text.count("<|im_start|>") == earlier.count("<|im_start|>") + alone.count("<|im_start|>") > 2
    second = gen(server, prompt="Another.", context=first["context"], options={"num_predict": 4, "temperature": 0})
    body = second.json()
    assert second.status_code == 200 and len(body["context"]) > len(first["context"])


def test_context_of_a_model_with_bos_keeps_one_bos(server: CorralServer) -> None:
    """gemma3's tokenizer adds BOS itself: replaying a context must not give the prompt a second one."""
    opts = {"num_predict": 4, "temperature": 0}
    first = gen(server, model="gemma3:270m", prompt="The capital of France is", options=opts).json()
    bos = first["context"][0]
    second = gen(server, model="gemma3:270m", prompt=" and of Spain,", context=first["context"], options=opts).json()
    assert second["context"][0] == bos and bos not in second["context"][1:]
    assert len(second["context"]) > len(first["context"])


def test_images_need_vision(server: CorralServer) -> None:
    r = gen(server, prompt="What is this?", images=[PNG])
    assert (r.status_code, r.json()) == (400, {"error": f"{FULL} does not support vision"})
    r = httpx.post(server.url + "/api/chat", json={"model": BASE, "stream": False, "messages": [
        {"role": "user", "content": "What is this?", "images": [PNG]}]})
    assert (r.status_code, r.json()) == (400, {"error": f"{FULL} does not support vision"})
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=server.url).generate(BASE, "What is this?", images=[PNG])
    assert err.value.status_code == 400 and "does not support vision" in err.value.error


def test_logprobs_ride_with_their_text(server: CorralServer) -> None:
    r = gen(server, prompt="Count: one, two,", logprobs=True, top_logprobs=2, options={"num_predict": 6, "seed": 1})
    body = r.json()
    lps = body["logprobs"]
    assert len(lps) == body["eval_count"]
    assert "".join(lp["token"] for lp in lps) == body["response"]
    assert all(lp["logprob"] <= 0 and len(lp["top_logprobs"]) == 2 for lp in lps)
    assert list(body).index("logprobs") > list(body).index("eval_duration")  # Go's field order
    r = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": BASE, "messages": [{"role": "user", "content": "Say one word."}], "logprobs": True,
        "options": {"num_predict": 5, "seed": 1}})
    chunks = [c for c in (httpx.Response(200, content=line).json() for line in r.text.splitlines()) if not c["done"]]
    assert chunks and all(len(c["logprobs"]) >= 1 for c in chunks)
    assert "".join(lp["token"] for c in chunks for lp in c["logprobs"]) == "".join(
        c["message"]["content"] for c in chunks)
    r = gen(server, prompt="x", logprobs=True, top_logprobs=21)
    assert (r.status_code, r.json()) == (400, {"error": "top_logprobs must be between 0 and 20"})
