"""Tool calling end to end through the official ``ollama`` client.

A model is created from a Modelfile whose TEMPLATE renders ``.Tools``, the assistant's ``.ToolCalls`` and
``role: tool`` results. A grammar (corral's ``options.grammar``, or a ``format`` schema) makes the 135M model's
call certain; the call must come back as a structured object, its result goes back with ``role: tool`` and
``tool_name``, and the final answer arrives.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import ollama
import pytest

from corral.store.modelfile import parse
from tests.servers import CorralServer

BASE = "smollm2:135m"

HERMES_TEMPLATE = """{{- if .Tools }}<|im_start|>system
You can call these tools:
{{ range .Tools }}{{ json .Function }}
{{ end }}To call one, answer with <tool_call>{"name": ..., "arguments": ...}</tool_call>.<|im_end|>
{{ end }}
{{- range .Messages }}
{{- if eq .Role "assistant" }}<|im_start|>assistant
{{ if .ToolCalls }}{{ range .ToolCalls }}<tool_call>
{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
</tool_call>{{ end }}{{ else }}{{ .Content }}{{ end }}<|im_end|>
{{ else if eq .Role "tool" }}<|im_start|>user
<tool_response name="{{ .ToolName }}">{{ .Content }}</tool_response><|im_end|>
{{ else }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- end }}<|im_start|>assistant
"""

LLAMA_TEMPLATE = """{{- if .Tools }}<|im_start|>system
Functions: {{ .Tools }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{- if .ToolCalls }}
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}
{{ .Content }}
{{- end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

CALL_GRAMMAR = (r'root ::= "<tool_call>\n{\"name\": \"add_two_numbers\", \"arguments\": {\"a\": " [1-9] '
                r'", \"b\": " [1-9] "}}\n</tool_call>"')
ANSWER_GRAMMAR = r'root ::= "The answer is " [0-9]{1,2} "."'


def add_two_numbers(a: int, b: int) -> int:
    """
    Add two numbers

    Args:
      a (int): The first number
      b (int): The second number

    Returns:
      int: The sum of the two numbers
    """
    return int(a) + int(b)


SUBTRACT_TOOL = {
    "type": "function",
    "function": {
        "name": "subtract_two_numbers",
        "description": "Subtract two numbers",
        "parameters": {"type": "object", "required": ["a", "b"],
                       "properties": {"a": {"type": "integer", "description": "The first number"},
                                      "b": {"type": "integer", "description": "The second number"}}},
    },
}


ADD_TOOL = {"type": "function", "function": {"name": "add_two_numbers", "parameters": {
    "type": "object", "required": ["a", "b"], "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}


def client(server: CorralServer) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=300)


def create(server: CorralServer, template: str) -> str:
    """A model made from a Modelfile, as `ollama create -f Modelfile` sends it."""
    name = f"tools-{uuid.uuid4().hex[:8]}"
    modelfile = f'FROM {BASE}\nTEMPLATE """{template}"""\nPARAMETER stop <|im_end|>\nPARAMETER num_predict 96\n'
    fields = parse(modelfile).create_fields(".")
    done = client(server).create(model=name, from_=fields["from"], template=fields["template"],
                                 parameters=fields.get("parameters"))
    assert done.status == "success"
    return name


@pytest.fixture(scope="module")
def hermes(server: CorralServer) -> str:
    return create(server, HERMES_TEMPLATE)


def test_the_template_offers_the_tools(server: CorralServer, hermes: str) -> None:
    assert "tools" in (client(server).show(hermes).capabilities or [])
    r = httpx.post(server.url + "/api/chat", json={
        "model": hermes, "_debug_render_only": True, "messages": [{"role": "user", "content": "What is 3 plus 1?"}],
        "tools": [SUBTRACT_TOOL]})
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert '{"name":"subtract_two_numbers","description":"Subtract two numbers","parameters":' in rendered


def test_call_result_and_final_answer(server: CorralServer, hermes: str) -> None:
    c = client(server)
    messages: list[Any] = [{"role": "user", "content": "What is three plus one?"}]
    response = c.chat(hermes, messages=messages, tools=[add_two_numbers, SUBTRACT_TOOL],
                      options={"grammar": CALL_GRAMMAR, "seed": 1})
    calls = response.message.tool_calls
    assert calls is not None and len(calls) == 1, response
    call = calls[0]
    assert call.function.name == "add_two_numbers"
    args = call.function.arguments
    assert set(args) == {"a", "b"} and all(isinstance(v, int) for v in args.values())  # objects, not strings
    assert response.message.content == "" and response.done_reason == "stop"
    # ollama-python 0.6.3's ToolCall has no id field: read the wire for Ollama's call id and index
    wire_reply = httpx.post(server.url + "/api/chat", timeout=300, json={
        "model": hermes, "stream": False, "messages": messages, "tools": [ADD_TOOL, SUBTRACT_TOOL],
        "options": {"grammar": CALL_GRAMMAR, "seed": 1}}).json()
    [wire_call] = wire_reply["message"]["tool_calls"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", wire_call["id"]) and wire_call["function"]["index"] == 0
    assert wire_call["function"]["name"] == "add_two_numbers" and set(wire_call["function"]["arguments"]) == {"a", "b"}

    messages.append(response.message)
    output = add_two_numbers(**args)
    messages.append({"role": "tool", "content": str(output), "tool_name": call.function.name})

    # the result reaches the template as a tool message, with its tool's name
    wire = [m if isinstance(m, dict) else m.model_dump(exclude_none=True) for m in messages]
    rendered = httpx.post(server.url + "/api/chat", json={"model": hermes, "_debug_render_only": True,
                                                           "messages": wire}).json()["_debug_info"]["rendered_template"]
    assert f'<tool_response name="add_two_numbers">{output}</tool_response>' in rendered
    assert '<tool_call>\n{"name": "add_two_numbers", "arguments": {"a":' in rendered

    final = c.chat(hermes, messages=messages, options={"grammar": ANSWER_GRAMMAR, "seed": 1})
    assert re.fullmatch(r"The answer is \d{1,2}\.", final.message.content)
    assert not final.message.tool_calls and final.done_reason == "stop"


def test_calls_stream_as_whole_objects(server: CorralServer, hermes: str) -> None:
    chunks = list(client(server).chat(hermes, messages=[{"role": "user", "content": "Add 2 and 5."}],
                                      tools=[add_two_numbers], stream=True,
                                      options={"grammar": CALL_GRAMMAR, "seed": 2}))
    with_calls = [ch for ch in chunks if ch.message.tool_calls]
    assert len(with_calls) == 1
    call = with_calls[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "add_two_numbers" and set(call.function.arguments) == {"a", "b"}
    assert all("<tool_call>" not in ch.message.content and "{" not in ch.message.content for ch in chunks)
    assert chunks[-1].done and chunks[-1].done_reason == "stop"


def test_llama_style_call_forced_by_a_format_schema(server: CorralServer) -> None:
    name = create(server, LLAMA_TEMPLATE)
    schema = {"type": "object", "required": ["name", "parameters"], "properties": {
        "name": {"const": "subtract_two_numbers"},
        "parameters": {"type": "object", "required": ["a", "b"],
                       "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "integer", "minimum": 0}}}}}
    for stream in (False, True):
        result = client(server).chat(name, messages=[{"role": "user", "content": "What is 10 minus 4?"}],
                                     tools=[SUBTRACT_TOOL, add_two_numbers], format=schema, stream=stream,
                                     options={"seed": 4, "temperature": 0.5})
        parts = list(result) if stream else [result]
        calls = [call for p in parts for call in p.message.tool_calls or []]  # type: ignore[union-attr]
        assert [c.function.name for c in calls] == ["subtract_two_numbers"]
        assert set(calls[0].function.arguments) == {"a", "b"}
        assert "".join(p.message.content for p in parts) == ""  # type: ignore[union-attr]


def test_tools_need_a_template_that_renders_them(server: CorralServer) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client(server).chat(BASE, messages=[{"role": "user", "content": "hi"}], tools=[add_two_numbers])
    assert err.value.status_code == 400
    assert err.value.error == "registry.ollama.ai/library/smollm2:135m does not support tools"


def test_tool_calls_in_history_render_for_jinja_templates(server: CorralServer) -> None:
    # smollm2's own (Jinja) template has no tools, but a history with tool turns must still render
    history = [{"role": "user", "content": "3+1?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"function": {"name": "add_two_numbers", "arguments": {"a": 3, "b": 1}}}]},
               {"role": "tool", "content": "4", "tool_name": "add_two_numbers"}]
    r = httpx.post(server.url + "/api/chat", json={"model": BASE, "_debug_render_only": True, "messages": history})
    assert r.status_code == 200
    assert "<|im_start|>tool\n4<|im_end|>" in r.json()["_debug_info"]["rendered_template"]
