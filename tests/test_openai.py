"""OpenAI's API on ``/v1`` through the official ``openai`` client and LangChain's ``ChatOpenAI``, unchanged.

Every answer is checked against the native path it translates onto: at temperature 0 the same messages give
the same text through ``/v1/chat/completions`` as through ``/api/chat``, and ``/v1/embeddings`` gives
``/api/embed``'s vectors. Shapes a 135M model would not produce reliably are forced: by corral's
``options.grammar`` (an extra body field here), by a JSON schema, or by ``tool_choice``.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
from typing import Any

import httpx
import ollama
import openai
import pytest
from pydantic import BaseModel, Field

from tests.servers import CorralServer
from tests.test_tools_e2e import HERMES_TEMPLATE

BASE = "smollm2:135m"
WORDS = r'root ::= [A-Z] [a-z]{2,8} (" " [a-z]{2,8}){2,4} "."'
WORDS_RE = r"[A-Z][a-z]{2,8}( [a-z]{2,8}){2,4}\."
HELLO = [{"role": "user", "content": "Say hello in five words."}]
LONG = r'root ::= "one" (" and one"){20}'  # longer than any cap below: such replies end by their length

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers",
    "parameters": {"type": "object", "required": ["a", "b"],
                   "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}

# Golden key sets, as Ollama writes each object (required keys; optional ones appear only when non-empty)
COMPLETION_KEYS = {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
CHOICE_KEYS = {"index", "message", "finish_reason"}
CHUNK_KEYS = {"id", "object", "created", "model", "system_fingerprint", "choices"}
CHUNK_CHOICE_KEYS = {"index", "delta", "finish_reason"}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}  # details: corral
TEXT_COMPLETION_KEYS = {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
TEXT_CHOICE_KEYS = {"text", "index", "finish_reason"}
EMBEDDING_LIST_KEYS = {"object", "data", "model", "usage"}
EMBEDDING_KEYS = {"object", "embedding", "index"}
MODEL_KEYS = {"id", "object", "created", "owned_by"}
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def client(server: CorralServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="corral", timeout=300, max_retries=0)


def _native_chat(server: CorralServer, model: str, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    r = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": model, "messages": messages, "stream": False, "options": options})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _sse(server: CorralServer, path: str, body: dict[str, Any]) -> list[Any]:
    """The data of each server-sent event, parsed; ``[DONE]`` kept as the string."""
    with httpx.stream("POST", server.url + path, json=body, timeout=300) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [block for block in text.split("\n\n") if block]
    out: list[Any] = []
    for block in events:
        assert block.startswith("data: "), block
        data = block[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


@pytest.fixture(scope="module")
def tools_model(server: CorralServer) -> str:
    name = f"oai-tools-{uuid.uuid4().hex[:8]}"
    done = ollama.Client(host=server.url, timeout=300).create(
        model=name, from_=BASE, template=HERMES_TEMPLATE, parameters={"stop": ["<|im_end|>"]})
    assert done.status == "success"
    return name


@pytest.fixture(scope="module")
def fim_model(server: CorralServer) -> str:
    name = f"oai-fim-{uuid.uuid4().hex[:8]}"
    template = "{{ if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{ else }}{{ .Prompt }}{{ end }}"
    done = ollama.Client(host=server.url, timeout=300).create(model=name, from_=BASE, template=template)
    assert done.status == "success"
    return name


# --- chat ----------------------------------------------------------------------------------------------------


def test_chat_matches_the_native_path(server: CorralServer, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=BASE, messages=HELLO, temperature=0, max_tokens=12)  # type: ignore[arg-type]
    native = _native_chat(server, BASE, HELLO, temperature=0, num_predict=12)
    [choice] = r.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == native["message"]["content"] and choice.message.content
    assert choice.finish_reason == native["done_reason"]
    assert re.fullmatch(r"chatcmpl-\d{1,3}", r.id) and r.object == "chat.completion"
    assert r.system_fingerprint == "fp_ollama" and r.model == BASE
    assert r.usage is not None and r.usage.completion_tokens == native["eval_count"]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # usage counts the whole prompt, also when a cached prefix spared evaluating it
    rendered = httpx.post(server.url + "/api/chat", json={"model": BASE, "messages": HELLO,
                                                           "_debug_render_only": True}).json()
    tokens = len(rendered["_debug_info"]["rendered_template"])  # an upper bound: a token covers ≥1 character
    assert 0 < native["prompt_eval_count"] <= r.usage.prompt_tokens <= tokens


def test_chat_stream_assembles_to_the_whole_answer(server: CorralServer, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=BASE, messages=HELLO, temperature=0, max_tokens=12,  # type: ignore[arg-type]
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    whole = client.chat.completions.create(model=BASE, messages=HELLO, temperature=0, max_tokens=12)  # type: ignore[arg-type]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_chat_stream_wire(server: CorralServer) -> None:
    events = _sse(server, "/v1/chat/completions", {
        "model": BASE, "messages": HELLO, "stream": True, "max_tokens": 4, "stream_options": {"include_usage": True},
        "options": {"grammar": r'root ::= "one two three four five six seven eight nine ten"'}})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        assert set(chunk) == CHUNK_KEYS | ({"usage"} if "usage" in chunk else set())
        assert chunk["object"] == "chat.completion.chunk"
        for choice in chunk["choices"]:
            assert set(choice) == CHUNK_CHOICE_KEYS
    assert chunks[-2]["choices"][0]["delta"] == {} and chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and set(chunks[-1]["usage"]) == USAGE_KEYS


def test_chat_wire(server: CorralServer) -> None:
    r = httpx.post(server.url + "/v1/chat/completions", timeout=300,
                   json={"model": BASE, "messages": HELLO, "max_tokens": 4})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == COMPLETION_KEYS and set(body["usage"]) == USAGE_KEYS
    [choice] = body["choices"]
    assert set(choice) == CHOICE_KEYS and set(choice["message"]) == {"role", "content"}


def test_extra_body_options_and_grammar(client: openai.OpenAI) -> None:
    # Ollama's options through the SDK's extra_body (Ollama ignores them): a grammar shapes the reply,
    # num_predict caps it, and keep_alive is read
    r = client.chat.completions.create(model=BASE, messages=HELLO,  # type: ignore[arg-type]
                                       extra_body={"options": {"grammar": WORDS, "seed": 7}, "keep_alive": "10m"})
    assert re.fullmatch(WORDS_RE, r.choices[0].message.content or ""), r
    assert r.choices[0].finish_reason == "stop"
    capped = client.chat.completions.create(model=BASE, messages=HELLO,  # type: ignore[arg-type]
                                            extra_body={"options": {"num_predict": 3, "grammar": LONG}})
    assert capped.usage is not None and capped.usage.completion_tokens == 3
    assert capped.choices[0].finish_reason == "length"
    # an OpenAI field wins over the same option
    both = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=2,  # type: ignore[arg-type]
                                          extra_body={"options": {"num_predict": 9, "grammar": LONG}})
    assert both.usage is not None and both.usage.completion_tokens == 2


def test_stop_and_seed(client: openai.OpenAI) -> None:
    grammar = r'root ::= "alpha beta gamma delta"'
    r = client.chat.completions.create(model=BASE, messages=HELLO, stop=[" gamma"],  # type: ignore[arg-type]
                                       extra_body={"options": {"grammar": grammar}})
    assert r.choices[0].message.content == "alpha beta"
    a = client.chat.completions.create(model=BASE, messages=HELLO, seed=42, max_tokens=10)  # type: ignore[arg-type]
    b = client.chat.completions.create(model=BASE, messages=HELLO, seed=42, max_tokens=10)  # type: ignore[arg-type]
    assert a.choices[0].message.content == b.choices[0].message.content


class Person(BaseModel):
    name: str = Field(max_length=16)
    age: int = Field(ge=0, le=150)


def test_parse_with_a_pydantic_model(server: CorralServer, client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(model=BASE, messages=[{"role": "user", "content": "Invent a person."}],
                                      response_format=Person, max_tokens=120, temperature=0)
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Person)
    # json_object is the native format "json": the same reply as /api/chat gives with it
    ask = [{"role": "user", "content": "Any JSON."}]
    r2 = client.chat.completions.create(model=BASE, messages=ask, response_format={"type": "json_object"},  # type: ignore[arg-type]
                                        max_tokens=30, temperature=0)
    native = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": BASE, "messages": ask, "stream": False, "format": "json",
        "options": {"temperature": 0, "num_predict": 30}}).json()
    assert r2.choices[0].message.content == native["message"]["content"]
    assert (r2.choices[0].message.content or "").startswith("{")


def test_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=BASE, messages=HELLO, max_tokens=3, logprobs=True, top_logprobs=2,  # type: ignore[arg-type]
                                       temperature=0)
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 3
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 2
        # greedy: the chosen token is the most likely one
        assert token.logprob == pytest.approx(max(t.logprob for t in token.top_logprobs))


def test_n_choices(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=BASE, messages=HELLO, n=3, max_tokens=6, seed=5,  # type: ignore[arg-type]
                                       extra_body={"options": {"grammar": LONG}})
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.message.content for c in r.choices)
    assert r.usage is not None and r.usage.completion_tokens == 18
    chunks = list(client.chat.completions.create(model=BASE, messages=HELLO, n=2, max_tokens=4, stream=True,  # type: ignore[arg-type]
                                                 extra_body={"options": {"grammar": LONG}}))
    by_index: dict[int, list[str]] = {0: [], 1: []}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            by_index[choice.index].append(choice.delta.content or "")
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert finishes == {0: "length", 1: "length"}
    assert all("".join(parts) for parts in by_index.values())


def test_reasoning_effort_maps_to_think(server: CorralServer, client: openai.OpenAI) -> None:
    # smollm2 cannot think: any effort but "none" is Ollama's capability error, in OpenAI's envelope
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=BASE, messages=HELLO, reasoning_effort="high", max_tokens=2)  # type: ignore[arg-type]
    assert err.value.status_code == 400 and 'does not support thinking' in str(err.value.message)
    # "none" is accepted; the reply's words are forced so that a sampled reply of two blank tokens cannot fail it
    r = client.chat.completions.create(model=BASE, messages=HELLO, reasoning_effort="none", max_tokens=2,  # type: ignore[arg-type]
                                       extra_body={"options": {"grammar": LONG}})
    assert r.choices[0].message.content and r.choices[0].message.content.startswith("one")
    bad = httpx.post(server.url + "/v1/chat/completions", json={"model": BASE, "messages": HELLO,
                                                                 "reasoning_effort": "huge"})
    assert bad.status_code == 400 and "invalid reasoning value" in bad.json()["error"]["message"]


# --- tools -----------------------------------------------------------------------------------------------------


def test_tool_choice_required_and_named(client: openai.OpenAI, tools_model: str) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(model=tools_model, messages=ask, tools=[WEATHER, ADD],  # type: ignore[arg-type]
                                       tool_choice="required", parallel_tool_calls=False, max_tokens=60, seed=1)
    [call] = r.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name in ("get_weather", "add")  # type: ignore[union-attr]
    assert isinstance(json.loads(call.function.arguments), dict)  # type: ignore[union-attr]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.id) and r.choices[0].finish_reason == "tool_calls"
    named = client.chat.completions.create(model=tools_model, messages=ask, tools=[WEATHER, ADD],  # type: ignore[arg-type]
                                           tool_choice={"type": "function", "function": {"name": "add"}},
                                           max_tokens=60, seed=1)
    [call] = named.choices[0].message.tool_calls or []
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert call.function.name == "add" and set(args) == {"a", "b"}  # type: ignore[union-attr]
    assert all(isinstance(v, int) for v in args.values())


def test_tool_choice_none_offers_no_tools(server: CorralServer, tools_model: str) -> None:
    body = {"model": tools_model, "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER],
            "_debug_render_only": True}
    offered = httpx.post(server.url + "/v1/chat/completions", json=body).json()
    withheld = httpx.post(server.url + "/v1/chat/completions", json={**body, "tool_choice": "none"}).json()
    assert "get_weather" in offered["_debug_info"]["rendered_template"]
    assert "get_weather" not in withheld["_debug_info"]["rendered_template"]


def test_tool_call_round_trip_and_stream(server: CorralServer, client: openai.OpenAI, tools_model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "Add 2 and 3."}]
    chunks = list(client.chat.completions.create(model=tools_model, messages=messages, tools=[ADD],
                                                 tool_choice="required", parallel_tool_calls=False,
                                                 max_tokens=60, stream=True, seed=2))
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1 and deltas[0].function is not None and deltas[0].function.name == "add"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    call = deltas[0]
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": "add", "arguments": call.function.arguments}}]})
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "5"})
    # the result reaches the template with its tool's name, found by the call id
    rendered = httpx.post(server.url + "/v1/chat/completions", json={
        "model": tools_model, "messages": messages, "_debug_render_only": True}).json()
    assert '<tool_response name="add">5</tool_response>' in rendered["_debug_info"]["rendered_template"]
    final = client.chat.completions.create(model=tools_model, messages=messages, tools=[ADD],
                                           extra_body={"options": {"grammar": r'root ::= "The sum is 5."'}})
    assert final.choices[0].message.content == "The sum is 5." and final.choices[0].finish_reason == "stop"


def test_tool_choice_errors(server: CorralServer, tools_model: str) -> None:
    url = server.url + "/v1/chat/completions"
    ask = [{"role": "user", "content": "hi"}]
    r = httpx.post(url, json={"model": tools_model, "messages": ask, "tools": [WEATHER],
                              "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]
    r = httpx.post(url, json={"model": tools_model, "messages": ask, "tool_choice": "required"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# --- LangChain -------------------------------------------------------------------------------------------------


def test_langchain_chat_openai(server: CorralServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="corral", model=BASE, temperature=0,  # type: ignore[arg-type]
                     max_completion_tokens=10, max_retries=0)
    native = _native_chat(server, BASE, HELLO, temperature=0, num_predict=10)
    message = llm.invoke(HELLO[0]["content"])
    assert message.content == native["message"]["content"]
    streamed = "".join(str(chunk.content) for chunk in llm.stream(HELLO[0]["content"]))
    assert streamed == native["message"]["content"]


# --- completions ---------------------------------------------------------------------------------------------


def test_completions_with_suffix(server: CorralServer, client: openai.OpenAI, fim_model: str) -> None:
    rendered = httpx.post(server.url + "/v1/completions", json={
        "model": fim_model, "prompt": "def add(a, b):", "suffix": "    return c", "_debug_render_only": True})
    assert rendered.status_code == 200
    r = client.completions.create(model=fim_model, prompt="def add(a, b):", suffix="    return c", max_tokens=30,
                                  extra_body={"options": {"grammar": r'root ::= "\n    c = a + b\n"'}})
    [choice] = r.choices
    assert choice.text == "\n    c = a + b\n" and choice.finish_reason == "stop"
    assert re.fullmatch(r"cmpl-\d{1,3}", r.id) and r.object == "text_completion"
    assert r.usage is not None and r.usage.completion_tokens > 0
    # the suffix reached the template: without it the prompt is rendered bare
    debug = httpx.post(server.url + "/api/generate", json={
        "model": fim_model, "prompt": "def add(a, b):", "suffix": "    return c", "_debug_render_only": True}).json()
    assert debug["_debug_info"]["rendered_template"] == "<PRE> def add(a, b): <SUF>    return c <MID>"


def test_completions_stream_and_logprobs(server: CorralServer, client: openai.OpenAI) -> None:
    whole = client.completions.create(model=BASE, prompt="Once upon a time", max_tokens=6, temperature=0,
                                      logprobs=2)
    native = httpx.post(server.url + "/api/generate", timeout=300, json={
        "model": BASE, "prompt": "Once upon a time", "stream": False,
        "options": {"temperature": 0, "num_predict": 6}}).json()
    assert whole.choices[0].text == native["response"]
    logprobs = whole.choices[0].logprobs
    assert logprobs is not None and "".join(logprobs.tokens or []) == whole.choices[0].text
    assert all(len(top) == 2 for top in logprobs.top_logprobs or [])
    chunks = list(client.completions.create(model=BASE, prompt="Once upon a time", max_tokens=6, temperature=0,
                                            stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"
    events = _sse(server, "/v1/completions", {"model": BASE, "prompt": "Hi", "stream": True, "max_tokens": 2})
    assert events[-1] == "[DONE]"
    for chunk in events[:-1]:
        assert set(chunk) == CHUNK_KEYS and set(chunk["choices"][0]) == TEXT_CHOICE_KEYS
    body = httpx.post(server.url + "/v1/completions", json={"model": BASE, "prompt": "Hi", "max_tokens": 2}).json()
    assert set(body) == TEXT_COMPLETION_KEYS and set(body["choices"][0]) == TEXT_CHOICE_KEYS


# --- embeddings, models --------------------------------------------------------------------------------------


def test_embeddings_equal_the_native_vectors(server: CorralServer, client: openai.OpenAI) -> None:
    texts = ["the cat sat", "on the mat"]
    native = httpx.post(server.url + "/api/embed", json={"model": BASE, "input": texts}, timeout=300).json()
    floats = client.embeddings.create(model=BASE, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    for got, want in zip(floats.data, native["embeddings"], strict=True):
        assert got.embedding == pytest.approx(want, abs=1e-6)
    # the SDK asks for base64 by default and decodes it itself
    default = client.embeddings.create(model=BASE, input=texts)
    for got, want in zip(default.data, native["embeddings"], strict=True):
        assert got.embedding == pytest.approx(want, abs=1e-6)
    assert floats.usage.prompt_tokens == native["prompt_eval_count"] == floats.usage.total_tokens
    raw = httpx.post(server.url + "/v1/embeddings", json={"model": BASE, "input": "x", "encoding_format": "base64",
                                                          "dimensions": 8}).json()
    assert set(raw) == EMBEDDING_LIST_KEYS and set(raw["data"][0]) == EMBEDDING_KEYS
    vector = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-5)  # cut to 8, then normalised


def test_models_list_and_retrieve(server: CorralServer, client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    tags = [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]]
    assert ids == tags and BASE in ids
    model = client.models.retrieve(BASE)
    assert model.id == BASE and model.owned_by == "library" and model.object == "model"
    raw = httpx.get(server.url + "/v1/models").json()
    assert set(raw) == {"object", "data"} and all(set(m) == MODEL_KEYS for m in raw["data"])
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model:latest")
    assert err.value.status_code == 404
    body = httpx.get(server.url + "/v1/models/library/no-such:1b").json()
    assert body["error"]["type"] == "not_found_error" and "no-such" in body["error"]["message"]


# --- bad input -----------------------------------------------------------------------------------------------

BAD = [
    ("/v1/chat/completions", b"{", 400),
    ("/v1/chat/completions", {"model": BASE, "messages": []}, 400),
    ("/v1/chat/completions", {"model": BASE}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": "hi"}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": [{"role": "user", "content": 5}]}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": HELLO, "max_tokens": "many"}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": HELLO, "temperature": "hot"}, 400),
    ("/v1/chat/completions", {"messages": HELLO}, 400),
    ("/v1/chat/completions", {"model": "no-such-model", "messages": HELLO}, 404),
    ("/v1/chat/completions", {"model": BASE, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": "data:image/png;base64,%%%"}]}]}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": HELLO, "n": 0}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": HELLO, "options": {"num_ctx": "big"}}, 400),
    ("/v1/chat/completions", {"model": BASE, "messages": HELLO, "keep_alive": "forever"}, 400),
    ("/v1/completions", {"model": BASE, "prompt": 5}, 400),
    ("/v1/completions", {"model": BASE, "prompt": [1, 2, 3]}, 400),
    ("/v1/completions", {"model": BASE, "prompt": "x", "stop": [1]}, 400),
    ("/v1/completions", {"model": "no-such-model", "prompt": "x"}, 404),
    ("/v1/embeddings", {"model": BASE, "input": "x", "encoding_format": "int8"}, 400),
    ("/v1/embeddings", {"model": BASE, "input": [[1, 2, 3]]}, 400),
    ("/v1/embeddings", {"model": BASE, "input": [1, 2]}, 400),
    ("/v1/embeddings", {"model": BASE}, 400),
    ("/v1/embeddings", {"model": BASE, "input": []}, 400),
    ("/v1/embeddings", {"model": BASE, "input": {"a": 1}}, 400),
    ("/v1/embeddings", {"model": "no-such-model", "input": "x"}, 404),
]


def check_refused(server: CorralServer, path: str, body: Any, status: int) -> None:
    """``body`` (JSON, or raw bytes) on ``path`` gets ``status`` and OpenAI's error envelope; the server lives."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(server.url + path, content=content, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == ERROR_KEYS and error["message"] and "Traceback" not in error["message"]
    assert error["type"] == {400: "invalid_request_error", 404: "not_found_error"}[status]
    assert httpx.get(server.url + "/").status_code == 200


@pytest.mark.parametrize(("path", "body", "status"), BAD)
def test_bad_input_gets_the_openai_envelope(server: CorralServer, path: str, body: Any, status: int) -> None:
    check_refused(server, path, body, status)


def test_exact_texts_for_ollama_errors(server: CorralServer) -> None:
    url = server.url + "/v1/chat/completions"
    assert httpx.post(url, json={"model": BASE, "messages": []}).json()["error"]["message"] == \
        "[] is too short - 'messages'"
    image = {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}
    r = httpx.post(url, json={"model": BASE, "messages": [{"role": "user", "content": [image]}]})
    assert r.json()["error"]["message"] == \
        "image URLs are not currently supported, please use base64 encoded data instead"
    r = httpx.post(server.url + "/v1/embeddings", json={"model": BASE, "input": "x", "encoding_format": "int8"})
    assert r.json()["error"]["message"] == \
        "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64']."
    assert httpx.post(url, json={"model": "nope", "messages": HELLO}).json()["error"]["message"] == \
        "model 'nope' not found"


def test_unknown_paths_and_the_request_log(server: CorralServer) -> None:
    r = httpx.get(server.url + "/v1/nothing-here")
    assert r.status_code == 404 and r.text == "404 page not found"
    assert httpx.get(server.url + "/v1/chat/completions").status_code == 405
    log = server.log()
    assert re.search(r'404 \|\s+\S+ \|\s+127\.0\.0\.1 \| GET\s+"/v1/nothing-here"', log), log[-2000:]
    assert re.search(r'200 \|\s+\S+ \|\s+127\.0\.0\.1 \| POST\s+"/v1/chat/completions"', log)


def test_content_parts(server: CorralServer) -> None:
    url = server.url + "/v1/chat/completions"
    parts = [{"type": "text", "text": "first part"}, {"type": "text", "text": "second part"}]
    rendered = httpx.post(url, json={"model": BASE, "messages": [{"role": "user", "content": parts}],
                                     "_debug_render_only": True}).json()["_debug_info"]["rendered_template"]
    assert "first part\n\nsecond part" in rendered and rendered.count("<|im_start|>user") == 1
    # an image reaches the native path, which refuses it for a model without vision, as Ollama does
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    r = httpx.post(url, json={"model": BASE, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": png}}]}]})
    assert r.status_code == 400 and r.json()["error"]["message"].endswith("does not support vision")


@pytest.mark.parametrize("n", [1, 2])
def test_a_client_leaving_a_stream_stops_the_work(server: CorralServer, n: int) -> None:
    pattern = r"canceled by its client; (\d+) token\(s\) generated after"
    before = len(re.findall(pattern, server.log()))
    body = {"model": BASE, "messages": [{"role": "user", "content": "Count from 1 to 1000, comma separated."}],
            "stream": True, "max_tokens": 3000, "temperature": 0, "n": n}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=300) as r:
        lines = r.iter_lines()
        for _ in range(2 + n):
            next(lines)
    from tests.servers import wait_until

    wait_until(lambda: len(re.findall(pattern, server.log())) >= before + n, timeout=20,
               what="every choice's cancel report")
