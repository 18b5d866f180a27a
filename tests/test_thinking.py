"""Thinking: tags read from templates, the streaming splitter, Ollama's defaults and checks, and a real model
whose template marks thinking and whose grammar forces a ``<think>…</think>`` block."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import ollama
import pytest

from corral.api.errors import BadRequest
from corral.output.features import check_capabilities, filter_think_tags, resolve_think
from corral.output.thinking import ThinkingSplitter, infer_tags, jinja_tags, strip_thinking
from tests.servers import CorralServer

# --- tags from templates ---------------------------------------------------------------------------------

QWEN3_LIKE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if (and $.IsThinkSet (and .Thinking $last)) -}}
<think>{{ .Thinking }}</think>
{{ end -}}
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- end }}
{{- end }}<|im_start|>assistant
"""
DEEPSEEK_LIKE = """{{- range .Messages }}{{ if eq .Role "user" }}<｜User｜>{{ .Content }}
{{- else }}<｜Assistant｜>{{ if .Thinking }}<|begin_of_thought|>{{ .Thinking }}<|end_of_thought|>{{ end }}
{{- .Content }}<｜end▁of▁sentence｜>{{ end }}{{ end }}<｜Assistant｜>"""


@pytest.mark.parametrize(("template", "tags"), [
    (QWEN3_LIKE, ("<think>", "</think>")),
    (DEEPSEEK_LIKE, ("<|begin_of_thought|>", "<|end_of_thought|>")),
    ("{{ range .Messages }}{{ .Content }}{{ end }}", ("", "")),
    # .Thinking outside a range over .Messages marks nothing (Ollama's rule)
    ("<think>{{ .Thinking }}</think>{{ .Prompt }}", ("", "")),
    ("{{ .Prompt", ("", "")),  # a template that does not parse
])
def test_tags_inferred_from_go_templates(template: str, tags: tuple[str, str]) -> None:
    assert infer_tags(template) == tags


def test_tags_for_jinja_templates() -> None:
    assert jinja_tags("{% if enable_thinking %}<think>\n\n</think>{% endif %}") == ("<think>", "</think>")
    assert jinja_tags("{{ messages }}") == ("", "")


# --- the splitter ------------------------------------------------------------------------------------------


def split(text: str, step: int | None, inside: bool = False) -> tuple[str, str]:
    s = ThinkingSplitter("<think>", "</think>")
    if inside:
        s.start_inside()
    pieces = [text] if step is None else [text[i:i + step] for i in range(0, len(text), step)]
    thinking, content = [], []
    for piece in pieces:
        t, c = s.add(piece)
        thinking.append(t)
        content.append(c)
    t, c = s.finish()
    return "".join(thinking) + t, "".join(content) + c


@pytest.mark.parametrize("step", [None, 1, 2, 5])
@pytest.mark.parametrize(("text", "inside", "thinking", "content"), [
    ("<think>I add 10 and 23.</think>33", False, "I add 10 and 23.", "33"),
    ("\n  <think>\n\nsteps\n</think>\n\n The answer.", False, "steps\n", "The answer."),
    ("No trace here. <think>late</think>", False, "", "No trace here. <think>late</think>"),
    ("prefilled trace</think>answer", True, "prefilled trace", "answer"),
    ("<think>never closed", False, "never closed", ""),
    ("<thi", False, "", "<thi"),  # a tag that never completed is content
    ("<think>a < b and </thinking> is not the tag</think>ok", False, "a < b and </thinking> is not the tag", "ok"),
])
def test_splitter(text: str, inside: bool, thinking: str, content: str, step: int | None) -> None:
    assert split(text, step, inside) == (thinking, content)


def test_splitter_sends_each_part_as_soon_as_it_is_certain() -> None:
    s = ThinkingSplitter("<think>", "</think>")
    assert s.add("<thi") == ("", "")
    assert s.add("nk>\n") == ("", "")  # whitespace right after the tag is dropped
    assert s.add("Let me") == ("Let me", "")
    assert s.add(" see</th") == (" see", "")  # only what may be the closing tag waits
    assert s.add("ink> Yes") == ("", "Yes")
    assert s.add(" indeed") == ("", " indeed")


def test_strip_thinking_and_filter() -> None:
    assert strip_thinking("<think>hmm</think> Paris.") == "Paris."
    msgs = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>x</think>a1"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "<think>y</think>a2"}]
    out = filter_think_tags(msgs, family="qwen3", model="qwen3")
    assert [m["content"] for m in out] == ["q1", "a1", "q2", "<think>y</think>a2"]  # only before the last user
    assert filter_think_tags(msgs, family="llama", model="deepseek-r1")[1]["content"] == "a1"
    assert filter_think_tags(msgs, family="llama", model="llama3.2") == msgs


def test_think_defaults_and_checks() -> None:
    assert resolve_think(None, ["completion", "thinking"], "m") is True  # on by default for a thinking model
    assert resolve_think(False, ["completion", "thinking"], "m") is False
    assert resolve_think("high", ["completion", "thinking"], "m") == "high"
    assert resolve_think(None, ["completion"], "m") is None
    assert resolve_think(False, ["completion"], "m") is False  # turning it off is always allowed
    for value in (True, "low"):
        with pytest.raises(BadRequest) as err:
            resolve_think(value, ["completion"], "smollm2:135m")
        assert err.value.message == '"smollm2:135m" does not support thinking'


def test_capability_texts() -> None:
    full = "registry.ollama.ai/library/m:latest"
    with pytest.raises(BadRequest) as err:
        check_capabilities(["embedding"], name="m", full_name=full, endpoint="chat", tools=True)
    assert err.value.message == '"m" does not support chat'
    with pytest.raises(BadRequest) as err:
        check_capabilities(["completion"], name="m", full_name=full, endpoint="chat", tools=True)
    assert err.value.message == f"{full} does not support tools"
    with pytest.raises(BadRequest) as err:
        check_capabilities(["completion"], name="m", full_name=full, endpoint="generate", insert=True)
    assert err.value.message == f"{full} does not support insert"
    with pytest.raises(BadRequest) as err:
        check_capabilities(["completion", "tools"], name="m", full_name=full, endpoint="chat", vision=True)
    assert err.value.message == f"{full} does not support vision"
    check_capabilities(["completion", "tools"], name="m", full_name=full, endpoint="chat", tools=True)


# --- a real model: a template that marks thinking, a grammar that forces a trace ------------------------------

BASE = "smollm2:135m"
THINK_TEMPLATE = """{{- if .IsThinkSet }}<|im_start|>system
think={{ .Think }} level={{ .ThinkLevel }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>
{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
# The same, but the template opens the trace for the model (as deepseek-r1's and qwen3's do).
PREFILL_TEMPLATE = THINK_TEMPLATE + "{{ if .Think }}<think>\n{{ end }}"
TRACE = r'[a-z]{3,8} (" " [a-z]{2,8}){2,5}'
ANSWER = r'[A-Z] [a-z]{2,8} (" " [a-z]{2,8}){1,3} "."'
GRAMMAR = f'root ::= "<think>" {TRACE} "</think>" "\\n" {ANSWER}'
PREFILL_GRAMMAR = f'root ::= {TRACE} "</think>" "\\n" {ANSWER}'
THINKING_RE = r"[a-z]{3,8}( [a-z]{2,8}){2,5}"
ANSWER_RE = r"[A-Z][a-z]{2,8}( [a-z]{2,8}){1,3}\."


def _client(server: CorralServer) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=300)


def _create(server: CorralServer, template: str) -> str:
    name = f"thinker-{uuid.uuid4().hex[:8]}"
    done = _client(server).create(model=name, from_=BASE, template=template,
                                  parameters={"stop": ["<|im_end|>"], "num_predict": 80})
    assert done.status == "success"
    return name


@pytest.fixture(scope="module")
def thinker(server: CorralServer) -> str:
    return _create(server, THINK_TEMPLATE)


@pytest.fixture(scope="module")
def prefilled(server: CorralServer) -> str:
    return _create(server, PREFILL_TEMPLATE)


def _chat(server: CorralServer, model: str, grammar: str, seed: int, stream: bool, **kw: Any) -> list[Any]:
    result = _client(server).chat(model, messages=[{"role": "user", "content": "What is ten plus one?"}],
                                  stream=stream, options={"grammar": grammar, "seed": seed}, **kw)
    return list(result) if stream else [result]


@pytest.mark.parametrize(("which", "grammar"), [("thinker", GRAMMAR), ("prefilled", PREFILL_GRAMMAR)])
def test_trace_split_streamed_and_not(server: CorralServer, which: str, grammar: str,
                                      request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    assert "thinking" in (_client(server).show(model).capabilities or [])
    [whole] = _chat(server, model, grammar, seed=11, stream=False)  # think not set: on by default
    thinking, content = whole.message.thinking or "", whole.message.content
    assert re.fullmatch(THINKING_RE, thinking), thinking
    assert re.fullmatch(ANSWER_RE, content), content
    assert whole.done_reason == "stop"

    parts = _chat(server, model, grammar, seed=11, stream=True)
    assert "".join(p.message.thinking or "" for p in parts) == thinking  # the same split, piece by piece
    assert "".join(p.message.content for p in parts) == content
    kinds = [("t" if p.message.thinking else "") + ("c" if p.message.content else "") for p in parts]
    kinds = [k for k in kinds if k]
    assert "tc" not in kinds and kinds.count("t") >= 2, kinds  # streamed, never mixed in one chunk
    assert kinds.index("c") > max(i for i, k in enumerate(kinds) if k == "t")  # trace first, then the answer


def test_generate_splits_too(server: CorralServer, thinker: str) -> None:
    r = httpx.post(server.url + "/api/generate", json={
        "model": thinker, "prompt": "What is ten plus one?", "stream": False,
        "options": {"grammar": GRAMMAR, "seed": 5}}, timeout=300)
    body = r.json()
    assert re.fullmatch(THINKING_RE, body["thinking"]) and re.fullmatch(ANSWER_RE, body["response"]), body
    assert list(body).index("thinking") == list(body).index("response") + 1  # Go's field order


def test_think_false_leaves_the_text_alone(server: CorralServer, thinker: str) -> None:
    [whole] = _chat(server, thinker, GRAMMAR, seed=3, stream=False, think=False)
    assert not whole.message.thinking
    assert whole.message.content.startswith("<think>") and "</think>\n" in whole.message.content


@pytest.mark.parametrize(("think", "line"), [
    (None, "think=true level=medium"),  # Ollama's default for a thinking model
    (True, "think=true level=medium"),
    ("high", "think=true level=high"),
    ("low", "think=true level=low"),
    (False, "think=false level="),
])
def test_levels_reach_the_template(server: CorralServer, thinker: str, think: Any, line: str) -> None:
    body: dict[str, Any] = {"model": thinker, "_debug_render_only": True,
                            "messages": [{"role": "user", "content": "hi"}]}
    if think is not None:
        body["think"] = think
    rendered = httpx.post(server.url + "/api/chat", json=body).json()["_debug_info"]["rendered_template"]
    assert rendered.startswith(f"<|im_start|>system\n{line}<|im_end|>\n")


def test_earlier_traces_go_back_through_the_template(server: CorralServer, prefilled: str) -> None:
    history = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "thinking": "first trace"},
               {"role": "user", "content": "Q2"}]
    rendered = httpx.post(server.url + "/api/chat", json={"model": prefilled, "_debug_render_only": True,
                                                           "messages": history}).json()["_debug_info"]
    assert "<|im_start|>assistant\n<think>first trace</think>\nA1<|im_end|>" in rendered["rendered_template"]
    assert rendered["rendered_template"].endswith("<|im_start|>assistant\n<think>\n")


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
def test_thinking_on_a_model_without_it(server: CorralServer, path: str) -> None:
    body: dict[str, Any] = {"model": BASE, "stream": False, "think": True}
    body.update({"prompt": "hi"} if path == "/api/generate" else {"messages": [{"role": "user", "content": "hi"}]})
    r = httpx.post(server.url + path, json=body)
    assert (r.status_code, r.json()) == (400, {"error": '"smollm2:135m" does not support thinking'})
    body["think"] = "medium"
    assert httpx.post(server.url + path, json=body).status_code == 400
    body["think"] = False
    body["options"] = {"num_predict": 2}
    assert httpx.post(server.url + path, json=body, timeout=300).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_format_on_a_thinking_model_constrains_the_answer(server: CorralServer, thinker: str, stream: bool) -> None:
    # The model thinks (or not) without the grammar; the server then starts again with the format applied.
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    result = _client(server).chat(thinker, messages=[{"role": "user", "content": "What is ten plus one?"}],
                                  format=schema, stream=stream, options={"seed": 2, "temperature": 0.7})
    parts = list(result) if stream else [result]
    content = "".join(p.message.content for p in parts)  # type: ignore[union-attr]
    assert isinstance(json.loads(content)["answer"], int), content
    assert parts[-1].done_reason == "stop"  # type: ignore[union-attr]


def test_think_reaches_jinja_templates() -> None:
    from corral.prompt.render import PromptFormat, render_chat

    fmt = PromptFormat(jinja_template="{{ enable_thinking }}/{{ reasoning_effort }}")
    msgs = [{"role": "user", "content": "hi"}]
    assert render_chat(fmt, msgs, think="high") == "True/high"
    assert render_chat(fmt, msgs, think=False) == "False/"
    assert render_chat(fmt, msgs, think=None) == "/"  # not set: the template's own default applies
