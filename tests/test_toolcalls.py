"""Tool-call parsing on each family's documented output format, whole and streamed in pieces."""

from __future__ import annotations

from typing import Any

import pytest

from corral.output.toolcalls import ToolCallParser, jinja_prefix, template_prefix

NAMES = ["get_current_weather", "add_two_numbers"]
SF = {"format": "fahrenheit", "location": "San Francisco, CA"}
TO = {"format": "celsius", "location": "Toronto, Canada"}
CALL_SF = '{"name": "get_current_weather", "arguments": {"format": "fahrenheit", "location": "San Francisco, CA"}}'
CALL_TO = '{"name": "get_current_weather", "arguments": {"format": "celsius", "location": "Toronto, Canada"}}'
LLAMA_SF = CALL_SF.replace('"arguments"', '"parameters"')

# Go templates in each family's shape (the parts that matter: how an assistant turn writes its calls).
QWEN_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}<|im_end|>
{{ else }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}{{ end }}<|im_start|>assistant
"""
LLAMA_TEMPLATE = """{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>
{{- if .ToolCalls }}
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- else }}

{{ .Content }}
{{- end }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""
MISTRAL_TEMPLATE = """{{- range .Messages }}
{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST]
{{- else if eq .Role "assistant" }}
{{- if .Content }} {{ .Content }}
{{- else if .ToolCalls }}[TOOL_CALLS] [
{{- range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{- end }}]
{{- end }}</s>
{{- end }}
{{- end }}"""


def parse(prefix: str, text: str, step: int | None) -> tuple[str, list[tuple[str, dict[str, Any], int]]]:
    parser = ToolCallParser(prefix, NAMES)
    pieces = [text] if step is None else [text[i:i + step] for i in range(0, len(text), step)]
    content: list[str] = []
    calls = []
    for piece in pieces:
        c, found = parser.add(piece)
        content.append(c)
        calls += found
    c, found = parser.finish()
    content.append(c)
    calls += found
    return "".join(content), [(call.name, call.arguments, call.index) for call in calls]


CASES = [
    # Hermes / Qwen 2.5 / Qwen 3: one <tool_call> block per call
    ("hermes one", "<tool_call>", f"<tool_call>\n{CALL_SF}\n</tool_call>", "", [SF]),
    ("hermes two blocks", "<tool_call>", f"<tool_call>\n{CALL_SF}\n</tool_call>\n<tool_call>\n{CALL_TO}\n</tool_call>",
     "", [SF, TO]),
    ("hermes list in a block", "<tool_call>", f"<tool_call> [{CALL_SF}, {CALL_TO}] </tool_call>", "", [SF, TO]),
    ("hermes text before", "<tool_call>", f"Let me check. <tool_call>{CALL_SF}</tool_call>", "Let me check. ", [SF]),
    ("hermes text after", "<tool_call>", f"<tool_call>{CALL_SF}</tool_call> done", "done", [SF]),
    ("hermes tag dropped", "<tool_call>", CALL_SF, "", [SF]),
    ("hermes plain answer", "<tool_call>", "It is 70°F in San Francisco.", "It is 70°F in San Francisco.", []),
    ("hermes not json", "<tool_call>", "<tool_call>get_current_weather SF</tool_call>",
     "<tool_call>get_current_weather SF</tool_call>", []),
    # Llama 3.1 / 3.2: bare JSON with "parameters"
    ("llama", "", LLAMA_SF, "", [SF]),
    ("llama after text", "", f"Calling now: {LLAMA_SF}", "Calling now: ", [SF]),
    ("llama prose with braces", "", "Use {braces} freely.", "Use {braces} freely.", []),
    # Mistral: [TOOL_CALLS] and a list
    ("mistral", "[TOOL_CALLS]", f"[TOOL_CALLS] [{CALL_SF},{CALL_TO}]", "", [SF, TO]),
    ("mistral tag not rendered", "[TOOL_CALLS]", f"[{CALL_SF}, {CALL_TO}]", "", [SF, TO]),
    ("mistral broken tail", "[TOOL_CALLS]", f'[TOOL_CALLS]  [{CALL_SF},{{"name": "get_curren}}]', "", [SF]),
    # shapes some models use
    ("wrapper object", "", '{"tool_calls": [' + CALL_SF + "]}", "", [SF]),
    ("openai shape", "", '{"type": "function", "function": ' + CALL_SF + "}", "", [SF]),
    ("string arguments", "<tool_call>",
     '<tool_call>{"name": "get_current_weather", "arguments": "{\\"format\\": \\"fahrenheit\\", '
     '\\"location\\": \\"San Francisco, CA\\"}"}</tool_call>', "", [SF]),
    ("unknown tool is content", "", '{"name": "launch_rockets", "arguments": {}}',
     '{"name": "launch_rockets", "arguments": {}}', []),
    ("json answer is content", "", '{"temperature": 70}', '{"temperature": 70}', []),
]


@pytest.mark.parametrize("step", [None, 1, 7], ids=["whole", "by-char", "by-7"])
@pytest.mark.parametrize(("prefix", "text", "content", "args"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_family_formats(prefix: str, text: str, content: str, args: list[dict[str, Any]], step: int | None) -> None:
    got_content, calls = parse(prefix, text, step)
    assert got_content.strip() == content.strip()
    assert [a for _, a, _ in calls] == args
    assert [i for _, _, i in calls] == list(range(len(args)))  # numbered in order
    assert all(name == "get_current_weather" for name, _, _ in calls)


def test_a_call_streams_out_as_soon_as_its_object_closes() -> None:
    parser = ToolCallParser("<tool_call>", NAMES)
    text = f"<tool_call>\n{CALL_SF}"
    for ch in text[:-1]:
        content, calls = parser.add(ch)
        assert content == "" and calls == []  # nothing leaks while the call is open
    content, calls = parser.add(text[-1])
    assert [c.arguments for c in calls] == [SF] and content == ""
    content, calls = parser.add("\n</tool_call>")
    assert (content, calls) == ("", [])


def test_content_is_not_held_back_without_reason() -> None:
    parser = ToolCallParser("<tool_call>", NAMES)
    assert parser.add("Hello ") == ("Hello ", [])
    assert parser.add("world <tool") == ("world ", [])  # only what may be the tag waits
    assert parser.add("s are fun") == ("<tools are fun", [])


def test_arguments_keep_their_order_and_types() -> None:
    _, calls = parse("", '{"name": "add_two_numbers", "parameters": {"b": 2, "a": 1.5, "c": [true, null]}}', None)
    assert calls == [("add_two_numbers", {"b": 2, "a": 1.5, "c": [True, None]}, 0)]
    assert list(calls[0][1]) == ["b", "a", "c"]


def test_wire_form() -> None:
    parser = ToolCallParser("", NAMES)
    _, calls = parser.add(LLAMA_SF)
    assert calls[0].to_wire("call_abc") == {"id": "call_abc", "function": {
        "index": 0, "name": "get_current_weather", "arguments": SF}}


@pytest.mark.parametrize(("template", "prefix"), [
    (QWEN_TEMPLATE, "<tool_call>"),
    (LLAMA_TEMPLATE, ""),
    (MISTRAL_TEMPLATE, "[TOOL_CALLS]"),
    ("{{ .Prompt }}", ""),
    ("{{ if .ToolCalls }}functools[{{ range .ToolCalls }}{{ json .Function }}{{ end }}]{{ end }}", "functools"),
])
def test_prefix_read_from_the_go_template(template: str, prefix: str) -> None:
    assert template_prefix(template) == prefix


def test_prefix_from_a_jinja_template() -> None:
    assert jinja_prefix("{% if tools %}<tool_call>\n{{ tool_call | tojson }}\n</tool_call>{% endif %}") == "<tool_call>"
    assert jinja_prefix("{{ '[TOOL_CALLS]' + calls }}") == "[TOOL_CALLS]"
    assert jinja_prefix("{% for m in messages %}{{ m.content }}{% endfor %}") == ""
    assert jinja_prefix(None) == ""


def test_template_prefix_drives_the_parser() -> None:
    content, calls = parse(template_prefix(MISTRAL_TEMPLATE), f"[TOOL_CALLS] [{CALL_TO}]", 3)
    assert content == "" and [c[1] for c in calls] == [TO]
