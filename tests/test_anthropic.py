"""Anthropic's Messages API (``/v1/messages``, ``/v1/messages/count_tokens``) through the official ``anthropic``
client, with raw HTTP for the exact wire (key sets, event order, error bodies).

What a 135M model says is never the criterion: grammars (``options.grammar``), ``tool_choice`` (which forces a
call by a grammar) and native ``/api/chat`` runs of the same prompt decide what must come back.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import anthropic
import httpx
import ollama
import pytest

from corral.api.anthropic.messages import CountTokensRequest, MessagesRequest
from corral.api.messages import Logprob
from corral.server.anthropic.messages import native_request
from corral.server.anthropic.reply import Blocks, StopWatch
from corral.server.core.events import Delta
from tests.servers import CorralServer
from tests.test_thinking import THINK_TEMPLATE
from tests.test_tools_e2e import ANSWER_GRAMMAR, HERMES_TEMPLATE

BASE = "smollm2:135m"
PLAIN_TEMPLATE = "{{ range .Messages }}{{ .Content }}{{ end }}"
HELLO = 'root ::= "Hello there, friend."'
USER = [{"role": "user", "content": "Say hello."}]


def _schema(*names: str) -> dict[str, Any]:
    return {"type": "object", "required": list(names), "properties": {n: {"type": "integer"} for n in names}}


# short names and one call (disable_parallel_tool_use) keep the forced calls short
ADD = {"name": "add", "description": "Add two numbers", "input_schema": _schema("a", "b")}
SUB = {"name": "sub", "description": "Subtract b from a", "input_schema": _schema("a", "b")}
ONE_CALL = {"disable_parallel_tool_use": True}
# a trace and an answer, spelled out (quicker to sample than tests/test_thinking.py's character classes)
THINK_GRAMMAR = r'root ::= "<think>ten plus one</think>\nEleven."'

# Every key of every object the API answers with, in order (as corral/api/golden.py does for the native API)
GOLDEN: dict[str, list[str]] = {
    "message": ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"],
    "usage": ["input_tokens", "output_tokens"],
    "block.text": ["type", "text"],
    "block.thinking": ["type", "thinking", "signature"],
    "block.tool_use": ["type", "id", "name", "input"],
    "message_start": ["type", "message"],
    "ping": ["type"],
    "content_block_start": ["type", "index", "content_block"],
    "content_block_delta": ["type", "index", "delta"],
    "delta.text_delta": ["type", "text"],
    "delta.thinking_delta": ["type", "thinking"],
    "delta.input_json_delta": ["type", "partial_json"],
    "content_block_stop": ["type", "index"],
    "message_delta": ["type", "delta", "usage"],
    "message_delta.delta": ["stop_reason", "stop_sequence"],
    "message_stop": ["type"],
    "error": ["type", "error", "request_id"],
    "error.error": ["type", "message"],
    "count_tokens": ["input_tokens"],
}


def keys(name: str, obj: dict[str, Any]) -> None:
    assert list(obj) == GOLDEN[name], (name, obj)


def check_message(msg: dict[str, Any]) -> None:
    keys("message", msg)
    keys("usage", msg["usage"])
    for block in msg["content"]:
        keys(f"block.{block['type']}", block)


def check_event(name: str, data: dict[str, Any]) -> None:
    assert data["type"] == name
    keys(name, data)
    if name == "message_start":
        check_message(data["message"])
    elif name == "content_block_start":
        keys(f"block.{data['content_block']['type']}", data["content_block"])
    elif name == "content_block_delta":
        keys(f"delta.{data['delta']['type']}", data["delta"])
    elif name == "message_delta":
        keys("message_delta.delta", data["delta"])
        keys("usage", data["usage"])


# --- fixtures -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(server: CorralServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0, timeout=300)


def _create(server: CorralServer, template: str) -> str:
    name = f"anthropic-{uuid.uuid4().hex[:8]}"
    done = ollama.Client(host=server.url, timeout=300).create(
        model=name, from_=BASE, template=template, parameters={"stop": ["<|im_end|>"], "num_predict": 80})
    assert done.status == "success"
    return name


@pytest.fixture(scope="module")
def hermes(server: CorralServer) -> str:
    return _create(server, HERMES_TEMPLATE)


@pytest.fixture(scope="module")
def thinker(server: CorralServer) -> str:
    return _create(server, THINK_TEMPLATE)


@pytest.fixture(scope="module")
def plain(server: CorralServer) -> str:
    return _create(server, PLAIN_TEMPLATE)


def post(server: CorralServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    headers = {"x-api-key": "ignored", "anthropic-version": "2023-06-01"}  # accepted, not checked
    data = {"content": body} if isinstance(body, bytes) else {"json": body}
    return httpx.post(server.url + path, headers=headers, timeout=300, **data, **kw)


def sse(server: CorralServer, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    r = post(server, "/v1/messages", {**body, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
    out = []
    for frame in r.text.split("\n\n"):
        if frame.strip():
            name_line, data_line = frame.split("\n")
            out.append((name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    for name, data in out:
        check_event(name, data)
    return out


def alive(server: CorralServer) -> None:
    assert httpx.get(server.url + "/api/version", timeout=10).status_code == 200


# --- translation, without a model ---------------------------------------------------------------------------


def test_request_translation() -> None:
    req = MessagesRequest.model_validate({
        "model": "m", "max_tokens": 7, "system": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        "temperature": 0.5, "top_k": 3, "top_p": 0.9, "stop_sequences": ["END"], "keep_alive": "1m",
        "options": {"seed": 4, "num_predict": 99}, "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [ADD], "thinking": {"type": "disabled"},
        "messages": [
            {"role": "user", "content": "3+1?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "add", "signature": "s"},
                                              {"type": "text", "text": "Let me add."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "add_two_numbers",
                                               "input": {"a": 3, "b": 1}}]},
            {"role": "user", "content": [{"type": "text", "text": "Thanks"},
                                         {"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [{"type": "text", "text": "4"}]}]},
        ]})
    native, choice = native_request(req, None)  # type: ignore[arg-type]  # no thinking: the store is not asked
    assert [m.to_wire() for m in native.messages] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "3+1?"},
        {"role": "assistant", "content": "Let me add.", "thinking": "add",
         "tool_calls": [{"id": "toolu_1", "function": {"index": 0, "name": "add_two_numbers",
                                                      "arguments": {"a": 3, "b": 1}}}]},
        # the result first, named after its call, then what the user says
        {"role": "tool", "content": "4", "tool_name": "add_two_numbers", "tool_call_id": "toolu_1"},
        {"role": "user", "content": "Thanks"},
    ]
    assert native.options == {"seed": 4, "num_predict": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 3,
                               "stop": ["END"]}
    assert native.keep_alive == 60 and native.think is False and native.stream is False and native.logprobs
    assert native.tools is not None and native.tools[0].function.parameters.required == ["a", "b"]
    assert (choice.mode, choice.parallel) == ("required", False)
    count = CountTokensRequest.model_validate({"model": "m", "messages": USER,
                                               "tool_choice": {"type": "tool", "name": "x"}})
    native, choice = native_request(count, None)  # type: ignore[arg-type]
    assert native.options == {} and (choice.mode, choice.name, choice.parallel) == ("function", "x", True)


def _lp(text: str) -> Logprob:
    return Logprob(token=text, logprob=0.0, bytes=list(text.encode()))


def test_stop_watch_finds_the_sequence_that_ended_the_reply() -> None:
    watch = StopWatch(["zz", "o w", "wor"])
    watch.feed(Delta(content="Hell", logprobs=[_lp("Hel"), _lp("l")]))
    watch.feed(Delta(logprobs=[_lp("o wo")]))  # the runner held the stop string back
    assert watch.matched() == "o w"  # the earliest, as the runner cuts at the earliest
    earlier = StopWatch(["ab"])  # a stop string inside an earlier pass does not count: it must reach the end
    for piece in ("ab", "cd", "ef"):
        earlier.feed(Delta(logprobs=[_lp(piece)]))
    assert earlier.matched() is None
    assert StopWatch(None).matched() is None


def test_blocks_split_by_kind() -> None:
    blocks = Blocks()
    events = blocks.feed(Delta(thinking="hmm")) + blocks.feed(Delta(content="Hi")) + blocks.feed(Delta(content="!"))
    events += blocks.close()
    assert [(e.name, e.data.get("index")) for e in events] == [
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
        ("content_block_stop", 1)]
    assert blocks.content == [{"type": "thinking", "thinking": "hmm", "signature": ""},
                              {"type": "text", "text": "Hi!"}]


# --- a real model ---------------------------------------------------------------------------------------------

GREEDY = {"temperature": 0}  # runs that are compared token for token


def test_create_plain(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model=BASE, max_tokens=16, messages=USER,  # type: ignore[arg-type]
                                 extra_body={**GREEDY, "options": {"grammar": HELLO}})
    assert re.fullmatch(r"msg_[0-9a-f]{24}", msg.id) and msg.type == "message" and msg.role == "assistant"
    assert msg.model == BASE
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "Hello there, friend."  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    # text blocks, and a system prompt as a string or as blocks: the same prompt
    blocks = client.messages.create(model=BASE, max_tokens=1, system=[{"type": "text", "text": "Be kind."}],
                                    messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}])
    string = client.messages.count_tokens(model=BASE, system="Be kind.", messages=USER)  # type: ignore[arg-type]
    assert blocks.usage.input_tokens == string.input_tokens != msg.usage.input_tokens
    assert (blocks.stop_reason, blocks.usage.output_tokens) == ("max_tokens", 1)


def test_usage_and_count_equal_the_native_run(server: CorralServer, client: anthropic.Anthropic, plain: str) -> None:
    # A prompt that starts unlike any other in this session: the native run evaluates all of it (nothing cached
    # yet), so its prompt_eval_count is the whole prompt's size.
    messages = [{"role": "user", "content": f"⁂ {uuid.uuid4().hex} Say hello."}]
    native = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": plain, "messages": messages, "stream": False,
        "options": {"grammar": HELLO, "num_predict": 16, **GREEDY}}).json()
    msg = client.messages.create(model=plain, max_tokens=16, messages=messages,  # type: ignore[arg-type]
                                 extra_body={**GREEDY, "options": {"grammar": HELLO}})
    count = client.messages.count_tokens(model=plain, messages=messages)  # type: ignore[arg-type]
    assert msg.usage.input_tokens == native["prompt_eval_count"] == count.input_tokens
    assert msg.usage.output_tokens == native["eval_count"]
    assert msg.content[0].text == native["message"]["content"]  # type: ignore[union-attr]


def test_same_answer_as_native_chat(server: CorralServer, client: anthropic.Anthropic) -> None:
    grammar = 'root ::= ("yes" | "no" | "maybe") "."'
    native = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": BASE, "messages": [{"role": "system", "content": "Answer."}, *USER], "stream": False,
        "options": {"grammar": grammar, "num_predict": 8, "top_k": 5, **GREEDY}}).json()
    msg = client.messages.create(model=BASE, max_tokens=8, system="Answer.", messages=USER,  # type: ignore[arg-type]
                                 extra_body={**GREEDY, "top_k": 5, "options": {"grammar": grammar}})
    assert msg.content[0].text == native["message"]["content"]  # type: ignore[union-attr]
    assert (msg.usage.output_tokens, msg.stop_reason) == (native["eval_count"], "end_turn")
    # the model's own (Jinja) template: usage counts the whole prompt, as count_tokens does
    count = client.messages.count_tokens(model=BASE, system="Answer.", messages=USER)  # type: ignore[arg-type]
    assert msg.usage.input_tokens == count.input_tokens >= native["prompt_eval_count"]


def test_max_tokens_and_stop_sequences(client: anthropic.Anthropic) -> None:
    extra = {**GREEDY, "options": {"grammar": 'root ::= "Hello world. Goodbye world."'}}
    for stops, text, stop, stream in ((["world", "Good"], "Hello ", "world", True),
                                      (["Goodbye", "zzz"], "Hello world. ", "Goodbye", False),
                                      (["zzz"], "Hello world. Goodbye world.", None, True)):
        kw: dict[str, Any] = {"model": BASE, "max_tokens": 30, "messages": USER, "stop_sequences": stops,
                              "extra_body": extra}
        if stream:
            with client.messages.stream(**kw) as s:
                msg = s.get_final_message()
        else:
            msg = client.messages.create(**kw)
        assert (msg.content[0].text, msg.stop_sequence) == (text, stop)  # type: ignore[union-attr]
        assert msg.stop_reason == ("stop_sequence" if stop else "end_turn")


def test_stream_assembles_to_the_message(server: CorralServer, client: anthropic.Anthropic) -> None:
    body = {"model": BASE, "max_tokens": 16, "messages": USER, "options": {"grammar": HELLO}, **GREEDY}
    with client.messages.stream(model=BASE, max_tokens=16, messages=USER,  # type: ignore[arg-type]
                                extra_body={**GREEDY, "options": {"grammar": HELLO}}) as s:
        texts = list(s.text_stream)
        final = s.get_final_message()
    assert len(texts) > 1 and "".join(texts) == final.content[0].text == "Hello there, friend."  # type: ignore[union-attr]
    whole = post(server, "/v1/messages", body).json()
    check_message(whole)
    assert whole["content"] == [{"type": "text", "text": "Hello there, friend."}]
    assert (final.usage.input_tokens, final.usage.output_tokens) == tuple(whole["usage"].values())

    events = sse(server, body)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start, delta = events[0][1]["message"], events[-2][1]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == whole["usage"]["input_tokens"]  # counted before the run
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None} and delta["usage"] == whole["usage"]
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "Hello there, friend."


def test_tool_use_and_result_round_trip(server: CorralServer, client: anthropic.Anthropic, hermes: str) -> None:
    question: list[Any] = [{"role": "user", "content": "What is three plus one?"}]
    reply = post(server, "/v1/messages", {"model": hermes, "max_tokens": 48, "messages": question, "tools": [ADD, SUB],
                                          "tool_choice": {"type": "any", **ONE_CALL}}).json()
    check_message(reply)
    [call] = reply["content"]
    assert call["type"] == "tool_use" and re.fullmatch(r"toolu_[0-9a-f]{24}", call["id"])
    assert call["name"] in ("add", "sub") and reply["stop_reason"] == "tool_use"
    assert set(call["input"]) == {"a", "b"} and all(isinstance(v, int) for v in call["input"].values())

    history = [*question, {"role": "assistant", "content": reply["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "4"}]}]
    final = client.messages.create(model=hermes, max_tokens=16, messages=history, tools=[ADD, SUB],  # type: ignore[list-item]
                                   extra_body={"options": {"grammar": ANSWER_GRAMMAR}})
    assert re.fullmatch(r"The answer is \d{1,2}\.", final.content[0].text)  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    # the result reaches the template as a tool message named after its call: the count sees the name
    counted = client.messages.count_tokens(model=hermes, messages=history, tools=[ADD, SUB]).input_tokens  # type: ignore[list-item]
    unnamed = [*history[:-1], {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                                             "content": "4"}]}]
    assert counted > client.messages.count_tokens(model=hermes, messages=unnamed, tools=[ADD, SUB]).input_tokens  # type: ignore[list-item]
    assert final.usage.input_tokens == counted


def test_tool_choice_forces_the_named_tool(server: CorralServer, client: anthropic.Anthropic, hermes: str) -> None:
    body = {"model": hermes, "max_tokens": 48, "messages": [{"role": "user", "content": "Hi!"}], "tools": [ADD, SUB],
            "tool_choice": {"type": "tool", "name": "sub", **ONE_CALL}}
    with client.messages.stream(**body) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert [(b.type, b.name) for b in final.content] == [("tool_use", "sub")]  # type: ignore[union-attr]
    assert set(final.content[0].input) == {"a", "b"} and final.stop_reason == "tool_use"  # type: ignore[union-attr]
    events = sse(server, {**body, "tool_choice": {"type": "tool", "name": "add", **ONE_CALL}})
    assert [n for n, _ in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"]
    block, partial = events[2][1]["content_block"], events[3][1]["delta"]["partial_json"]
    assert (block["type"], block["name"], block["input"]) == ("tool_use", "add", {})
    assert set(json.loads(partial)) == {"a", "b"} and events[-2][1]["delta"]["stop_reason"] == "tool_use"
    # "none" offers no tools at all: the reply is text
    none = client.messages.create(model=hermes, max_tokens=16, messages=USER, tools=[ADD],  # type: ignore[call-overload]
                                  tool_choice={"type": "none"}, extra_body={"options": {"grammar": HELLO}})
    assert [b.type for b in none.content] == ["text"] and none.stop_reason == "end_turn"


def test_thinking_blocks(server: CorralServer, client: anthropic.Anthropic, thinker: str) -> None:
    kw: dict[str, Any] = {"model": thinker, "max_tokens": 40, "thinking": {"type": "enabled", "budget_tokens": 1024},
                          "messages": [{"role": "user", "content": "What is ten plus one?"}]}
    extra = {**GREEDY, "options": {"grammar": THINK_GRAMMAR}}
    msg = client.messages.create(**kw, extra_body=extra)
    assert [b.model_dump() for b in msg.content] == [{"signature": "", "thinking": "ten plus one", "type": "thinking"},
                                                      {"citations": None, "text": "Eleven.", "type": "text"}]
    events = sse(server, {**kw, **extra})
    kinds = [d["delta"]["type"] for n, d in events if n == "content_block_delta"]
    assert kinds == sorted(kinds, reverse=True) and kinds.count("thinking_delta") >= 2  # the trace, then the answer
    blocks = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert blocks == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""}]
    thinking = "".join(d["delta"].get("thinking", "") for n, d in events if n == "content_block_delta")
    assert thinking == msg.content[0].thinking  # type: ignore[union-attr]
    with client.messages.stream(**kw, extra_body=extra) as s:
        final = s.get_final_message()
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [b.model_dump() for b in msg.content]
    # asking a model that cannot think is not an error (as Ollama relaxes it for Anthropic clients)
    plain = client.messages.create(**{**kw, "model": BASE, "max_tokens": 1})
    assert plain.stop_reason == "max_tokens" and [b.type for b in plain.content] == ["text"]


# --- bad input ------------------------------------------------------------------------------------------------

MSG = {"model": BASE, "max_tokens": 4, "messages": USER}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def _image(source: dict[str, Any]) -> dict[str, Any]:
    return {**MSG, "messages": [{"role": "user", "content": [{"type": "image", "source": source}]}]}


BAD: list[tuple[str, Any, int, str | None]] = [
    ("not json", b"{", 400, "invalid JSON: line 1 column 2"),
    ("not an object", [1], 400, "request body must be a JSON object"),
    ("no model", {**MSG, "model": ""}, 400, "model is required"),
    ("no messages", {**MSG, "messages": []}, 400, "messages is required"),
    ("model of the wrong type", {**MSG, "model": 3}, 400, 'invalid value for field "model": expected string'),
    ("messages of the wrong type", {**MSG, "messages": "hi"}, 400,
     'invalid value for field "messages": expected array'),
    ("content of the wrong type", {**MSG, "messages": [{"role": "user", "content": 5}]}, 400,
     'invalid value for field "messages[0].content": expected string or array'),
    ("no content", {**MSG, "messages": [{"role": "user"}]}, 400, "message content is required"),
    ("unknown model", {**MSG, "model": "no-such-model"}, 404, "model 'no-such-model' not found"),
    ("bad base64 image", _image({"type": "base64", "media_type": "image/png", "data": "!!"}), 400,
     "invalid base64 image data"),
    ("image by url", _image({"type": "url", "url": "http://x/y.png"}), 400,
     "invalid image source type: url. Only base64 images are supported."),
    ("image on a model without vision", _image({"type": "base64", "media_type": "image/png", "data": PNG}), 400,
     "registry.ollama.ai/library/smollm2:135m does not support vision"),
    ("tool_use without an id", {**MSG, "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "name": "f", "input": {}}]}]}, 400, "tool_use block missing required 'id' field"),
    ("unknown tool_choice", {**MSG, "tools": [ADD], "tool_choice": {"type": "some"}}, 400,
     'invalid tool_choice type: "some" (must be "auto", "any", "tool" or "none")'),
    ("tool_choice without tools", {**MSG, "tool_choice": {"type": "any"}}, 400,
     "tool_choice requires a tool call, but no tools were given"),
    ("unknown thinking type", {**MSG, "thinking": {"type": "maybe"}}, 400,
     'invalid thinking type: "maybe" (must be "enabled", "adaptive" or "disabled")'),
    ("tools on a model without them", {**MSG, "tools": [ADD]}, 400,
     "registry.ollama.ai/library/smollm2:135m does not support tools"),
    ("option of the wrong type", {**MSG, "options": {"temperature": "hot"}}, 400, None),
]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize(("what", "body", "status", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_input(server: CorralServer, path: str, what: str, body: Any, status: int, text: str | None) -> None:
    _check_error(post(server, path, body), status, text)
    if isinstance(body, dict) and path == "/v1/messages":
        _check_error(post(server, path, {**body, "stream": True}), status, text)  # a status, not an error event
    alive(server)


def _check_error(r: httpx.Response, status: int, text: str | None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    keys("error", body)
    keys("error.error", body["error"])
    kind = {400: "invalid_request_error", 404: "not_found_error"}[status]
    assert body["type"] == "error" and body["error"]["type"] == kind and body["request_id"].startswith("req_")
    if text is not None:
        assert body["error"]["message"] == text


@pytest.mark.parametrize("max_tokens", [None, 0, -1, "4"])
def test_max_tokens_is_required(server: CorralServer, max_tokens: Any) -> None:
    body = {k: v for k, v in MSG.items() if k != "max_tokens"}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    text = ('invalid value for field "max_tokens": expected integer' if isinstance(max_tokens, str)
            else "max_tokens is required and must be positive")
    _check_error(post(server, "/v1/messages", body), 400, text)
    alive(server)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_other_methods(server: CorralServer, path: str) -> None:
    r = httpx.get(server.url + path, timeout=10)
    assert r.status_code == 405 and r.json()["error"]["type"] == "api_error"
    keys("error", r.json())


def test_errors_reach_the_sdk(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(model="no-such-model", max_tokens=4, messages=USER)  # type: ignore[arg-type]
    assert nf.value.status_code == 404 and nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.count_tokens(model=BASE, messages=[])
    assert bad.value.body["error"]["message"] == "messages is required"  # type: ignore[index]


def test_count_tokens_shape(server: CorralServer) -> None:
    r = post(server, "/v1/messages/count_tokens", {"model": BASE, "messages": USER, "max_tokens": "not read"})
    assert r.status_code == 200
    keys("count_tokens", r.json())
    with_system = post(server, "/v1/messages/count_tokens", {"model": BASE, "messages": USER, "system": "Be kind."})
    assert with_system.json()["input_tokens"] != r.json()["input_tokens"] > 0

