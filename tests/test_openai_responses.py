"""OpenAI's Responses API (``POST /v1/responses``) through the official ``openai`` client, unchanged.

Answers are checked against the native path they translate onto: at temperature 0 the same messages give the
same text through ``/v1/responses`` as through ``/api/chat``. Shapes a 135M model would not produce reliably
are forced: by corral's ``options.grammar`` (an extra body field), a ``text.format`` JSON schema, or a forced
``tool_choice``. The stream is read by the SDK's ``responses.stream`` helper, which insists on the order of
the events and on their ``output_index``/``content_index``/``item_id``; the output builder is also driven
with deltas a small model would not write (text, then thinking, then a call), replayed to that helper.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import httpx2
import ollama
import openai
import pytest
from pydantic import BaseModel

from corral.api.errors import BadRequest
from corral.api.messages import ToolCall, ToolCallFunction
from corral.api.openai.responses import ResponsesRequest
from corral.server.core.events import Delta, Done, Event
from corral.server.openai.responses import RESPONSES_SSE, _Head, _stream, _whole
from tests.servers import CorralServer
from tests.test_openai import check_refused
from tests.test_thinking import ANSWER_RE, GRAMMAR, THINK_TEMPLATE, THINKING_RE
from tests.test_tools_e2e import HERMES_TEMPLATE

BASE = "smollm2:135m"
HELLO = "Say hello in five words."
WORDS = r'root ::= [A-Z] [a-z]{2,8} (" " [a-z]{2,8}){2,4} "."'
WORDS_RE = r"[A-Z][a-z]{2,8}( [a-z]{2,8}){2,4}\."

ADD: Any = {"type": "function", "name": "add", "description": "Add two integers", "strict": True,
       "parameters": {"type": "object", "required": ["a", "b"], "additionalProperties": False,
                      "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}
WEATHER: Any = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}

# Golden key sets: the Response object as Ollama writes it, its items, and each stream event
RESPONSE_KEYS = {
    "id", "object", "created_at", "completed_at", "status", "incomplete_details", "model", "previous_response_id",
    "instructions", "output", "error", "tools", "tool_choice", "truncation", "parallel_tool_calls", "text", "top_p",
    "presence_penalty", "frequency_penalty", "top_logprobs", "temperature", "reasoning", "usage",
    "max_output_tokens", "max_tool_calls", "store", "background", "service_tier", "metadata", "safety_identifier",
    "prompt_cache_key"}
USAGE_KEYS = {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details", "output_tokens_details"}
MESSAGE_KEYS = {"id", "type", "status", "role", "content"}
OUTPUT_TEXT_KEYS = {"type", "text", "annotations", "logprobs"}
CALL_KEYS = {"id", "type", "status", "call_id", "name", "arguments"}
REASONING_KEYS = {"id", "type", "summary", "encrypted_content"}
_HEAD = {"type", "sequence_number"}
_TEXT = {"item_id", "output_index", "content_index"}
_SUMMARY = {"item_id", "output_index", "summary_index"}
EVENT_KEYS = {
    "response.created": _HEAD | {"response"},
    "response.in_progress": _HEAD | {"response"},
    "response.output_item.added": _HEAD | {"output_index", "item"},
    "response.content_part.added": _HEAD | _TEXT | {"part"},
    "response.output_text.delta": _HEAD | _TEXT | {"delta", "logprobs"},
    "response.output_text.done": _HEAD | _TEXT | {"text", "logprobs"},
    "response.content_part.done": _HEAD | _TEXT | {"part"},
    "response.output_item.done": _HEAD | {"output_index", "item"},
    "response.function_call_arguments.delta": _HEAD | {"item_id", "output_index", "delta"},
    "response.function_call_arguments.done": _HEAD | {"item_id", "output_index", "arguments"},
    "response.reasoning_summary_part.added": _HEAD | _SUMMARY | {"part"},
    "response.reasoning_summary_text.delta": _HEAD | _SUMMARY | {"delta"},
    "response.reasoning_summary_text.done": _HEAD | _SUMMARY | {"text"},
    "response.reasoning_summary_part.done": _HEAD | _SUMMARY | {"part"},
    "response.completed": _HEAD | {"response"},
    "response.incomplete": _HEAD | {"response"},
    "response.failed": _HEAD | {"response"},
    "error": _HEAD | {"code", "message", "param", "error"},
}
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added", "response.output_text.delta", "response.output_text.done",
               "response.content_part.done", "response.output_item.done"]
CALL_EVENTS = ["response.output_item.added", "response.function_call_arguments.delta",
               "response.function_call_arguments.done", "response.output_item.done"]
REASONING_EVENTS = ["response.output_item.added", "response.reasoning_summary_part.added",
                    "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
                    "response.reasoning_summary_part.done", "response.output_item.done"]


@pytest.fixture(scope="module")
def client(server: CorralServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="corral", timeout=300, max_retries=0)


def _create(server: CorralServer, template: str, **parameters: Any) -> str:
    name = f"resp-{uuid.uuid4().hex[:8]}"
    done = ollama.Client(host=server.url, timeout=300).create(
        model=name, from_=BASE, template=template, parameters={"stop": ["<|im_end|>"], **parameters})
    assert done.status == "success"
    return name


@pytest.fixture(scope="module")
def tools_model(server: CorralServer) -> str:
    return _create(server, HERMES_TEMPLATE)


@pytest.fixture(scope="module")
def thinker(server: CorralServer) -> str:
    return _create(server, THINK_TEMPLATE, num_predict=80)


def _native_chat(server: CorralServer, model: str, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    r = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": model, "messages": messages, "stream": False, "options": options})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _post(server: CorralServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + "/v1/responses", json=body, timeout=300)


def _rendered(server: CorralServer, body: dict[str, Any]) -> str:
    r = _post(server, {**body, "_debug_render_only": True})
    assert r.status_code == 200, r.text
    return str(r.json()["_debug_info"]["rendered_template"])


def _parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), block
        out.append((name[len("event: "):], json.loads(data[len("data: "):])))
    return out


def _sse(server: CorralServer, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each named server-sent event of a streamed request: its name and its data."""
    with httpx.stream("POST", server.url + "/v1/responses", json={**body, "stream": True}, timeout=300) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert "[DONE]" not in text  # the Responses stream ends with its last event, not with chat's marker
    return _parse_sse(text)


def _check_wire(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Every event: its name is its type, its keys are the golden set, its number is its place."""
    for n, (name, data) in enumerate(events):
        assert data["type"] == name and set(data) == EVENT_KEYS[name], (name, data)
        assert data["sequence_number"] == n
        if "response" in data:
            assert set(data["response"]) == RESPONSE_KEYS


def _runs(types: list[str]) -> list[str]:
    """The event types with each run of the same type folded into one (deltas come in runs)."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


# --- text ------------------------------------------------------------------------------------------------------


def test_string_input_matches_the_native_chat(server: CorralServer, client: openai.OpenAI) -> None:
    r = client.responses.create(model=BASE, input=HELLO, temperature=0, max_output_tokens=12,
                                extra_body={"options": {"seed": 4}})
    native = _native_chat(server, BASE, [{"role": "user", "content": HELLO}], temperature=0, num_predict=12, seed=4)
    assert r.output_text == native["message"]["content"] and r.output_text
    assert re.fullmatch(r"resp_\d+", r.id) and r.object == "response" and r.model == BASE
    [item] = r.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert [c.type for c in item.content] == ["output_text"]
    if native["done_reason"] == "length":
        assert r.status == "incomplete" and item.status == "incomplete"
        assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    else:
        assert r.status == "completed" and item.status == "completed" and r.incomplete_details is None
    # usage: the generated tokens as the native path counts them; the whole prompt, as /v1/chat counts it
    assert r.usage is not None and r.usage.output_tokens == native["eval_count"]
    chat = client.chat.completions.create(model=BASE, messages=[{"role": "user", "content": HELLO}], max_tokens=1)
    assert chat.usage is not None and r.usage.input_tokens == chat.usage.prompt_tokens
    assert 0 < native["prompt_eval_count"] <= r.usage.input_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert 0 <= r.usage.input_tokens_details.cached_tokens < r.usage.input_tokens
    details = r.usage.input_tokens_details
    assert details.cached_tokens + details.cache_write_tokens == r.usage.input_tokens
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    assert r.temperature == 0 and r.max_output_tokens == 12 and r.tool_choice == "auto" and r.tools == []


def test_message_items_and_instructions(server: CorralServer, client: openai.OpenAI) -> None:
    items: Any = [{"role": "user", "content": [{"type": "input_text", "text": "Say hello "},
                                               {"type": "input_text", "text": "in five words."}]}]
    r = client.responses.create(model=BASE, input=items, instructions="Answer briefly.", temperature=0,
                                max_output_tokens=10)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": HELLO}]
    native = _native_chat(server, BASE, messages, temperature=0, num_predict=10)
    assert r.output_text == native["message"]["content"] and r.instructions == "Answer briefly."
    # the instructions are the system turn; the parts are joined as they are, into one user turn
    rendered = _rendered(server, {"model": BASE, "instructions": "Answer briefly.", "input": items})
    assert rendered.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n" + HELLO)
    # the typed message, the shorthand one and a string are the same input
    typed = [{"type": "message", "role": "user", "content": HELLO}]
    assert _rendered(server, {"model": BASE, "input": typed}) == _rendered(server, {"model": BASE, "input": HELLO})
    history = [{"role": "user", "content": "Hi"}, {"type": "message", "role": "assistant",
                                                   "content": [{"type": "output_text", "text": "Hello!"}]},
               {"role": "user", "content": "Bye"}]
    assert "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye" in \
        _rendered(server, {"model": BASE, "input": history})


def test_stream_helper_adds_up_to_the_whole_answer(client: openai.OpenAI) -> None:
    grammar = {"options": {"grammar": WORDS}}
    with client.responses.stream(model=BASE, input=HELLO, temperature=0, extra_body=grammar) as stream:
        events = list(stream)
        final = stream.get_final_response()
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert re.fullmatch(WORDS_RE, text) and final.output_text == text
    assert _runs([e.type for e in events]) == [*TEXT_EVENTS, "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text  # type: ignore[union-attr]
    assert final.status == "completed" and len({e.response.id for e in events if hasattr(e, "response")}) == 1  # type: ignore[union-attr]
    whole = client.responses.create(model=BASE, input=HELLO, temperature=0, extra_body=grammar)
    assert whole.output_text == text
    assert final.usage is not None and whole.usage is not None
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_wire_and_golden_keys(server: CorralServer) -> None:
    # a grammar longer than max_output_tokens: the reply is cut, whatever the model would have said
    body = {"model": BASE, "input": HELLO, "max_output_tokens": 3,
            "options": {"grammar": 'root ::= "one two three four five six seven eight"'}}
    r = _post(server, body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    whole = r.json()
    assert set(whole) == RESPONSE_KEYS and set(whole["usage"]) == USAGE_KEYS
    assert whole["status"] == "incomplete" and whole["incomplete_details"] == {"reason": "max_output_tokens"}
    assert whole["usage"]["output_tokens"] == 3 and whole["completed_at"] >= whole["created_at"]
    [item] = whole["output"]
    assert set(item) == MESSAGE_KEYS and [set(c) for c in item["content"]] == [OUTPUT_TEXT_KEYS]
    assert (whole["previous_response_id"], whole["store"], whole["text"]) == (None, False, {"format": {"type": "text"}})

    events = _sse(server, body)
    _check_wire(events)
    names = [name for name, _ in events]
    assert _runs(names) == [*TEXT_EVENTS, "response.incomplete"]
    last = events[-1][1]["response"]
    assert last["status"] == "incomplete" and last["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["output"][0]["status"] == "incomplete" and last["usage"]["output_tokens"] == 3
    created = events[0][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert created["completed_at"] is None and created["id"] == last["id"]
    texts = [data["delta"] for name, data in events if name == "response.output_text.delta"]
    assert "".join(texts) == last["output"][0]["content"][0]["text"]


def test_echoes_and_ignored_state(client: openai.OpenAI) -> None:
    # stateless, as Ollama: previous_response_id and conversation are read and ignored
    r = client.responses.create(model=BASE, input=HELLO, max_output_tokens=2, previous_response_id="resp_1",
                                metadata={"run": "7"}, top_p=0.5, truncation="auto", store=True)
    assert r.previous_response_id is None and r.metadata == {"run": "7"} and r.to_dict()["store"] is False
    assert r.top_p == 0.5 and r.truncation == "auto" and r.temperature == 1.0


def test_logprobs(client: openai.OpenAI) -> None:
    r = client.responses.create(model=BASE, input=HELLO, temperature=0, max_output_tokens=3, top_logprobs=2,
                                include=["message.output_text.logprobs"])
    part = r.output[0].content[0]  # type: ignore[union-attr,index]
    assert part.logprobs is not None and len(part.logprobs) == 3  # type: ignore[union-attr]
    assert "".join(lp.token for lp in part.logprobs) == r.output_text  # type: ignore[union-attr]
    for lp in part.logprobs:  # type: ignore[union-attr]
        assert lp.logprob <= 0 and len(lp.top_logprobs) == 2
        assert lp.logprob == pytest.approx(max(t.logprob for t in lp.top_logprobs))  # greedy
    with client.responses.stream(model=BASE, input=HELLO, temperature=0, max_output_tokens=3,
                                 include=["message.output_text.logprobs"]) as stream:
        deltas = [e for e in stream if e.type == "response.output_text.delta"]
    assert sum(len(e.logprobs) for e in deltas) == 3


# --- structured output --------------------------------------------------------------------------------------

WEATHER_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "sunny"],
                  "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}, "sunny": {"type": "boolean"}}}


class Forecast(BaseModel):
    city: Literal["Paris", "Rome"]
    sunny: bool


def test_text_format_json_schema(client: openai.OpenAI) -> None:
    ask = "What is the weather in Paris? Answer in JSON."
    r = client.responses.create(model=BASE, input=ask, max_output_tokens=40, temperature=0, text={
        "format": {"type": "json_schema", "name": "forecast", "schema": WEATHER_SCHEMA, "strict": True}})
    answer = json.loads(r.output_text)
    assert set(answer) == {"city", "sunny"} and answer["city"] in ("Paris", "Rome")
    assert isinstance(answer["sunny"], bool) and r.status == "completed"
    assert r.text is not None and r.text.format is not None and r.text.format.type == "json_schema"
    parsed = client.responses.parse(model=BASE, input=ask, text_format=Forecast, max_output_tokens=40, temperature=0)
    assert isinstance(parsed.output_parsed, Forecast)
    # JSON mode: an object, whatever its keys (whole, unless max_output_tokens cut it)
    anything = client.responses.create(model=BASE, input="Any JSON.", max_output_tokens=24, temperature=0,
                                       text={"format": {"type": "json_object"}})
    assert anything.output_text.startswith("{")
    if anything.status == "completed":
        assert isinstance(json.loads(anything.output_text), dict)


# --- tools ---------------------------------------------------------------------------------------------------------


def test_forced_call_and_its_round_trip(server: CorralServer, client: openai.OpenAI, tools_model: str) -> None:
    ask: list[Any] = [{"role": "user", "content": "What is 2 plus 3?"}]
    r = client.responses.create(model=tools_model, input=ask, tools=[ADD, WEATHER], temperature=0,
                                tool_choice={"type": "function", "name": "add"}, max_output_tokens=60)
    [call] = r.output
    assert call.type == "function_call" and call.name == "add" and call.status == "completed"
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.call_id) and call.id is not None and call.id.startswith("fc_")
    args = json.loads(call.arguments)
    assert set(args) == {"a", "b"} and all(isinstance(v, int) for v in args.values())
    assert r.status == "completed" and r.output_text == ""
    assert r.tool_choice.type == "function" and r.tool_choice.name == "add"  # type: ignore[union-attr]
    assert [t.name for t in r.tools] == ["add", "get_weather"]  # type: ignore[union-attr]

    # the call goes back as the SDK hands it over, its result as a function_call_output
    follow = [*ask, call.model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": call.call_id, "output": "5"}]
    rendered = _rendered(server, {"model": tools_model, "input": follow})
    assert f'<tool_call>\n{{"name": "add", "arguments": {json.dumps(args, separators=(",", ":"))}}}' in rendered
    assert '<tool_response name="add">5</tool_response>' in rendered  # named by its call's id
    final = client.responses.create(model=tools_model, input=follow, tools=[ADD],
                                    extra_body={"options": {"grammar": r'root ::= "The sum is 5."'}})
    assert final.output_text == "The sum is 5." and final.status == "completed"


def test_streamed_call_through_the_helper(client: openai.OpenAI, tools_model: str) -> None:
    with client.responses.stream(model=tools_model, input="Add 2 and 3.", tools=[ADD], tool_choice="required",
                                 parallel_tool_calls=False, temperature=0, max_output_tokens=60) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _runs([e.type for e in events]) == ["response.created", "response.in_progress", *CALL_EVENTS,
                                               "response.completed"]
    [call] = final.output
    assert call.type == "function_call" and call.name == "add"
    arguments = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert arguments.arguments == call.arguments  # type: ignore[union-attr]
    assert call.parsed_arguments == json.loads(call.arguments)  # a strict tool's arguments, parsed by the SDK
    assert final.parallel_tool_calls is False and final.tool_choice == "required"


def test_tool_choice_none_and_allowed_tools(server: CorralServer, tools_model: str) -> None:
    body = {"model": tools_model, "input": "hi", "tools": [ADD, WEATHER]}
    offered = _rendered(server, body)
    assert '"name":"add"' in offered and '"name":"get_weather"' in offered
    assert '"name":"add"' not in _rendered(server, {**body, "tool_choice": "none"})
    allowed = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]}
    only = _rendered(server, {**body, "tool_choice": allowed})
    assert '"name":"get_weather"' in only and '"name":"add"' not in only
    # a hosted tool has nothing to run it here: it is left out, and the request still answers
    hosted = _rendered(server, {**body, "tools": [{"type": "web_search"}, ADD]})
    assert '"name":"add"' in hosted and "web_search" not in hosted
    # a namespace's functions are offered under its name
    spaced = _rendered(server, {**body, "tools": [{"type": "namespace", "name": "math", "tools": [ADD]}]})
    assert '"name":"math.add"' in spaced
    r = _post(server, {**body, "tool_choice": {"type": "function", "name": "nope"}})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]


# --- reasoning -------------------------------------------------------------------------------------------------


def test_reasoning_items(server: CorralServer, client: openai.OpenAI, thinker: str) -> None:
    options = {"options": {"grammar": GRAMMAR, "seed": 11}}
    r = client.responses.create(model=thinker, input="What is ten plus one?", temperature=0, extra_body=options)
    reasoning, message = r.output
    assert reasoning.type == "reasoning" and message.type == "message"
    [summary] = reasoning.summary
    assert re.fullmatch(THINKING_RE, summary.text) and reasoning.encrypted_content == summary.text
    assert re.fullmatch(ANSWER_RE, r.output_text), r.output_text

    with client.responses.stream(model=thinker, input="What is ten plus one?", temperature=0,
                                 extra_body=options) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _runs([e.type for e in events]) == ["response.created", "response.in_progress", *REASONING_EVENTS,
                                               *TEXT_EVENTS[2:], "response.completed"]
    traced = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert traced == summary.text and final.output_text == r.output_text
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1]  # type: ignore[union-attr]

    # sent back, the reasoning item gives the assistant turn after it its thinking
    history = [{"role": "user", "content": "What is ten plus one?"}, reasoning.model_dump(exclude_none=True),
               message.model_dump(exclude_none=True), {"role": "user", "content": "And plus two?"}]
    rendered = _rendered(server, {"model": thinker, "input": history})
    assert f"<|im_start|>assistant\n<think>{summary.text}</think>\n{r.output_text}<|im_end|>" in rendered
    # also from its summary alone, when a client drops encrypted_content
    history[1] = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "from summary"}]}
    assert "<think>from summary</think>" in _rendered(server, {"model": thinker, "input": history})


def test_reasoning_effort_maps_to_think(server: CorralServer, client: openai.OpenAI, thinker: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=BASE, input=HELLO, reasoning={"effort": "high"}, max_output_tokens=2)
    assert "does not support thinking" in str(err.value.message)
    r = client.responses.create(model=BASE, input=HELLO, reasoning={"effort": "none"}, max_output_tokens=2,
                                temperature=0)
    assert r.output_text and r.reasoning is not None and r.reasoning.effort == "none"
    assert _rendered(server, {"model": thinker, "input": "hi", "reasoning": {"effort": "high"}}).startswith(
        "<|im_start|>system\nthink=true level=high<|im_end|>")


# --- bad input -----------------------------------------------------------------------------------------------------

BAD = [
    (b"{", 400),
    ({"model": BASE}, 400),
    ({"model": BASE, "input": []}, 400),
    ({"input": HELLO}, 400),
    ({"model": "no-such-model", "input": HELLO}, 404),
    ({"model": "no-such-model", "input": HELLO, "stream": True}, 404),
    ({"model": BASE, "input": 5}, 400),
    ({"model": BASE, "input": [5]}, 400),
    ({"model": BASE, "input": [{"type": "bogus"}]}, 400),
    ({"model": BASE, "input": [{"content": "neither a type nor a role"}]}, 400),
    ({"model": BASE, "input": [{"role": "user", "content": 5}]}, 400),
    ({"model": BASE, "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/cat.png"}]}]}, 400),
    ({"model": BASE, "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png;base64,%%%"}]}]}, 400),
    ({"model": BASE, "input": [{"role": "user", "content": [{"type": "input_file", "file_data": "x"}]}]}, 400),
    ({"model": BASE, "input": [{"role": "user", "content": [{"type": "video"}]}]}, 400),
    ({"model": BASE, "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{no"}]}, 400),
    ({"model": BASE, "input": [{"type": "item_reference", "id": "msg_1"}]}, 400),
    ({"model": BASE, "input": HELLO, "max_output_tokens": "many"}, 400),
    ({"model": BASE, "input": HELLO, "temperature": "hot"}, 400),
    ({"model": BASE, "input": HELLO, "instructions": ["not", "a", "string"]}, 400),
    ({"model": BASE, "input": HELLO, "text": {"format": {"type": "yaml"}}}, 400),
    ({"model": BASE, "input": HELLO, "tool_choice": "sometimes"}, 400),
    ({"model": BASE, "input": HELLO, "tool_choice": "required"}, 400),
    ({"model": BASE, "input": HELLO, "tool_choice": {"type": "function"}}, 400),
    ({"model": BASE, "input": HELLO, "tool_choice": {"type": "file_search"}}, 400),
    ({"model": BASE, "input": HELLO, "reasoning": {"effort": "huge"}}, 400),
    ({"model": BASE, "input": HELLO, "tools": [{"type": "function", "name": "f", "parameters": {
        "type": "object", "properties": {"a": {"type": 5}}}}]}, 400),
    ({"model": BASE, "input": HELLO, "tools": [ADD]}, 400),  # smollm2's own template offers no tools
    ({"model": BASE, "input": HELLO, "top_logprobs": 30}, 400),
    ({"model": BASE, "input": HELLO, "options": {"num_ctx": "big"}}, 400),
    ({"model": BASE, "input": HELLO, "keep_alive": "forever"}, 400),
]


@pytest.mark.parametrize(("body", "status"), BAD)
def test_bad_input_gets_the_openai_envelope(server: CorralServer, body: Any, status: int) -> None:
    check_refused(server, "/v1/responses", body, status)


def test_exact_error_texts(server: CorralServer, client: openai.OpenAI) -> None:
    def message(body: dict[str, Any]) -> str:
        return str(_post(server, body).json()["error"]["message"])

    assert message({"input": HELLO}) == "model is required"
    assert message({"model": "nope", "input": HELLO}) == "model 'nope' not found"
    assert message({"model": BASE}) == "input is required"
    image = {"type": "input_image", "image_url": "http://example.com/a.png"}
    assert message({"model": BASE, "input": [{"role": "user", "content": [image]}]}) == \
        "image URLs are not currently supported, please use base64 encoded data instead"
    assert message({"model": BASE, "input": [{"type": "bogus"}]}) == 'input[0]: unknown input item type: "bogus"'
    assert message({"model": BASE, "input": [{"role": "user", "content": [{"type": "input_file"}]}]}) == \
        "file inputs are not currently supported"
    assert message({"model": BASE, "input": 5}) == 'invalid value for field "input": expected string or array'
    bad_tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {"a": {"type": 5}}}}
    assert message({"model": BASE, "input": HELLO, "tools": [bad_tool]}).startswith(
        'invalid value for field "tools[0].parameters.properties.a.type"')
    # an image reaches the native path, which refuses it for a model without vision, as Ollama does
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    picture = [{"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                            {"type": "input_image", "image_url": png}]}]
    assert message({"model": BASE, "input": picture}).endswith("does not support vision")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input=HELLO)
    with pytest.raises(openai.NotFoundError), client.responses.stream(model="nope", input=HELLO) as stream:
        list(stream)


# --- the output builder, with deltas a small model would not write ------------------------------------------------


def _call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"call_{name}", function=ToolCallFunction(name=name, arguments=arguments))


async def _collect(events: AsyncIterator[Any]) -> list[Any]:
    return [e async for e in events]


def _replay(events: list[Event], *, fail: Exception | None = None) -> tuple[bytes, dict[str, Any]]:
    """The stream ``_stream`` writes for these core events (and then ``fail``), and the whole answer."""
    head = _Head(ResponsesRequest.model_validate({"model": "m", "input": "x"}), logprobs=False)

    async def core() -> AsyncIterator[Event]:
        for event in events:
            yield event
        if fail is not None:
            raise fail

    frames = asyncio.run(_collect(_stream(head, core())))
    return b"".join(RESPONSES_SSE.frame(f) for f in frames), _whole(head)(events)


def _sdk_stream(body: bytes) -> Any:
    """The SDK's stream helper, reading ``body`` as the server's answer."""
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    sdk = openai.OpenAI(base_url="http://corral.invalid/v1", api_key="x", max_retries=0,
                        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))
    return sdk.responses.stream(model="m", input="x")


MIXED: list[Event] = [
    Delta(content="\n"),
    Delta(content="Let me see. "), Delta(content="Hmm."),
    Delta(thinking="adding "), Delta(thinking="two numbers"),
    Delta(content="\n", calls=[_call("add", a=2, b=3)]),
    Delta(calls=[_call("get_weather", city="Paris")]),
    Done("stop", Delta(content="Done.")),
]


def test_builder_orders_items_as_the_sdk_accumulates_them() -> None:
    body, whole = _replay(MIXED)
    wire = _parse_sse(body.decode())
    _check_wire(wire)
    with _sdk_stream(body) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["message", "reasoning", "function_call", "function_call", "message"]
    assert final.output[0].content[0].text == "\nLet me see. Hmm."  # the held newline opens the message
    assert final.output[1].summary[0].text == "adding two numbers"
    assert [(o.name, json.loads(o.arguments)) for o in final.output[2:4]] == [
        ("add", {"a": 2, "b": 3}), ("get_weather", {"city": "Paris"})]
    # the newline before the calls opened no message of its own: it leads the text after them
    assert final.output[4].content[0].text == "\nDone."
    assert final.output_text == "\nLet me see. Hmm.\nDone."
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    assert added == [0, 1, 2, 3, 4] == [e.output_index for e in events if e.type == "response.output_item.done"]
    # the whole answer is what the stream's events add up to
    final_wire = wire[-1][1]["response"]
    assert whole["output"] == final_wire["output"] and whole["usage"] == final_wire["usage"]
    assert whole["status"] == "completed" and set(whole) == RESPONSE_KEYS


def test_builder_call_alone_and_empty_answers() -> None:
    body, whole = _replay([Delta(content="\n"), Done("stop", Delta(calls=[_call("add", a=1, b=1)]))])
    assert [o["type"] for o in whole["output"]] == ["function_call"]  # whitespace ahead of a call is no message
    with _sdk_stream(body) as stream:
        assert [o.type for o in stream.get_final_response().output] == ["function_call"]
    # nothing at all is still an answer with a message, so that output_text is ""
    body, whole = _replay([Done("stop")])
    assert [(o["type"], o["content"][0]["text"]) for o in whole["output"]] == [("message", "")]
    with _sdk_stream(body) as stream:
        assert stream.get_final_response().output_text == ""


def test_builder_cut_reply_is_incomplete() -> None:
    body, whole = _replay([Delta(thinking="still thinking"), Done("length", Delta(), {"eval_count": 2})])
    assert whole["status"] == "incomplete" and whole["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [o["type"] for o in whole["output"]] == ["reasoning", "message"]
    assert whole["output"][1]["status"] == "incomplete" and whole["usage"]["output_tokens"] == 2
    with _sdk_stream(body) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete" and events[-1].response.status == "incomplete"


def test_builder_error_mid_stream() -> None:
    body, _ = _replay([Delta(content="Hello")], fail=BadRequest("the runner refused"))
    wire = _parse_sse(body.decode())
    _check_wire(wire)
    assert [name for name, _ in wire[-2:]] == ["error", "response.failed"]
    assert wire[-2][1]["message"] == "the runner refused" and wire[-2][1]["code"] == "invalid_request_error"
    failed = wire[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "invalid_request_error",
                                                                "message": "the runner refused"}
    # the SDK raises it as an APIError carrying the message
    with pytest.raises(openai.APIError, match="the runner refused"), _sdk_stream(body) as stream:
        list(stream)
    # an error before the first event is the request's own error (its status), not an event
    with pytest.raises(BadRequest):
        _replay([], fail=BadRequest("early"))
