"""The Modelfile parser against Ollama's parser/parser.go behaviour (reference §3.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.store.modelfile import Command, ModelfileError, parse, parse_parameter, quote

INVALID_COMMAND = ('command must be one of "from", "license", "template", "system", "adapter", "draft", '
                   '"renderer", "parser", "parameter", "message", or "requires"')


def test_every_instruction_and_case_insensitivity() -> None:
    text = (
        "\ufeff# a comment\n"
        "from llama3.2\n"
        "Parameter temperature 0.7\n"
        "PARAMETER stop <|a|>\n"
        'PARAMETER stop "<|b|> "\n'
        'SYSTEM """You are\nMario."""\n'
        "TEMPLATE {{ .System }} {{ .Prompt }}\n"
        "ADAPTER ./lora.gguf\n"
        "DRAFT ./draft.gguf\n"
        "LICENSE MIT\n"
        "LICENSE \"\"\"two\nlines\"\"\"\n"
        "MESSAGE user hi there\n"
        'message assistant "hello"\n'
        "RENDERER harmony\n"
        "PARSER qwen3-coder\n"
        "REQUIRES 0.14.0\n"
    )
    cmds = parse(text).commands
    assert [(c.name, c.args) for c in cmds] == [
        ("model", "llama3.2"),
        ("temperature", "0.7"),
        ("stop", "<|a|>"),
        ("stop", "<|b|> "),
        ("system", "You are\nMario."),
        ("template", "{{ .System }} {{ .Prompt }}"),
        ("adapter", "./lora.gguf"),
        ("draft", "./draft.gguf"),
        ("license", "MIT"),
        ("license", "two\nlines"),
        ("message", "user: hi there"),
        ("message", "assistant: hello"),
        ("renderer", "harmony"),
        ("parser", "qwen3-coder"),
        ("requires", "0.14.0"),
    ]
    assert cmds[0].line == 2 and cmds[5].line == 8


def test_bare_values_keep_inner_spaces_and_hash() -> None:
    cmds = parse("FROM m\nSYSTEM   be   brief # not a comment  \n").commands
    assert cmds[1].args == "be   brief # not a comment"


def test_crlf_and_blank_lines() -> None:
    cmds = parse("FROM m\r\n\r\nSYSTEM hi\r\n").commands
    assert [(c.name, c.args, c.line) for c in cmds] == [("model", "m", 1), ("system", "hi", 3)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("FROM m\nFOO bar\n", f"(line 2): {INVALID_COMMAND}"),
        ("FROM m\nMESSAGE bob hi\n", '(line 2): message role must be one of "system", "user", or "assistant"'),
        ("SYSTEM hi\n", "no FROM line"),
        ("", "no FROM line"),
        ("# only a comment\n", "no FROM line"),
        ('FROM m\nSYSTEM """never closed\n', "unexpected EOF"),
        ('FROM m\nSYSTEM "never closed\n', "unexpected EOF"),
        ("FROM m\nPARAMETER", "unexpected EOF"),
        ("FROM m\nPARAMETER te-mp 1\n", "unexpected EOF: te"),
        ("FROM m\nFROM1 x\n", f"(line 2): {INVALID_COMMAND}"),
    ],
)
def test_errors_are_ollamas(text: str, error: str) -> None:
    with pytest.raises(ModelfileError) as info:
        parse(text)
    assert str(info.value) == error


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("temperature", "0.7", 0.7),
        ("temperature", "1", 1.0),
        ("num_ctx", "4096", 4096),
        ("seed", "-1", -1),
        ("use_mmap", "false", False),
        ("use_mmap", "T", True),
        ("stop", "<|end|>", ["<|end|>"]),
    ],
)
def test_parameter_types(name: str, value: str, expected: object) -> None:
    got = parse_parameter(name, value)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("PARAMETER temperature hot", "(line 2): invalid float value [hot]"),
        ("PARAMETER num_ctx 4k", "(line 2): invalid int value [4k]"),
        ("PARAMETER num_ctx 1_000", "(line 2): invalid int value [1_000]"),
        ("PARAMETER use_mmap yes", "(line 2): invalid bool value [yes]"),
        ("PARAMETER nope 1", "(line 2): unknown parameter 'nope'"),
        ("REQUIRES fourteen", "(line 2): requires must be a valid semver (e.g. 0.14.0)"),
    ],
)
def test_bad_values_name_their_line(line: str, error: str) -> None:
    with pytest.raises(ModelfileError) as info:
        parse(f"FROM m\n{line}\n").create_fields(".")
    assert str(info.value) == error


def test_create_fields_from_a_model_name(tmp_path: Path) -> None:
    mf = parse(
        "FROM llama3.2\nPARAMETER stop a\nPARAMETER stop b\nPARAMETER num_predict 5\nPARAMETER mirostat 1\n"
        "SYSTEM s\nMESSAGE user u\nMESSAGE assistant a\nLICENSE l1\nLICENSE l2\nREQUIRES v0.14\n")
    warnings: list[str] = []
    fields = mf.create_fields(tmp_path, warn=warnings.append)
    assert fields == {
        "from": "llama3.2",
        "system": "s",
        "requires": "0.14",
        "parameters": {"stop": ["a", "b"], "num_predict": 5},
        "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}],
        "license": ["l1", "l2"],
    }
    assert warnings == ["warning: parameter mirostat is deprecated"]


def test_create_fields_resolves_paths_against_the_modelfile(tmp_path: Path) -> None:
    (tmp_path / "w.gguf").write_bytes(b"GGUF")
    (tmp_path / "lora.gguf").write_bytes(b"GGUF")
    fields = parse("FROM ./w.gguf\nADAPTER lora.gguf\n").create_fields(tmp_path)
    assert fields == {"files": {str(tmp_path / "w.gguf"): "w.gguf"},
                      "adapters": {str(tmp_path / "lora.gguf"): "lora.gguf"}}
    with pytest.raises(ModelfileError, match="DRAFT must not reference the same local path as FROM"):
        parse("FROM ./w.gguf\nDRAFT ./w.gguf\n").create_fields(tmp_path)


def test_a_hugging_face_folder_is_sent_as_ollamas_cli_sends_it(tmp_path: Path) -> None:
    """FROM a folder: its model*.safetensors (one level down too), the JSON beside them (one level down too: a
    sentence-transformers pooling config), chat_template.jinja and tokenizer.model, each by its path inside."""
    folder = tmp_path / "hf"
    (folder / "1_Pooling").mkdir(parents=True)
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "config.json",
                 "tokenizer.json", "1_Pooling/config.json", "chat_template.jinja", "tokenizer.model",
                 "README.md", "optimizer.pt", "vocab.txt"):
        (folder / name).write_bytes(b"x")
    fields = parse("FROM ./hf\n").create_fields(tmp_path)
    assert sorted(fields["files"].values()) == [
        "1_Pooling/config.json", "chat_template.jinja", "config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "tokenizer.json", "tokenizer.model"]
    assert all(Path(k) == folder / v for k, v in fields["files"].items())
    # a link that leaves the folder is refused, as Ollama's CLI refuses it
    (folder / "evil.json").symlink_to(tmp_path / "outside.json")
    (tmp_path / "outside.json").write_text("{}")
    with pytest.raises(ModelfileError, match=r"insecure path: evil\.json"):
        parse("FROM ./hf\n").create_fields(tmp_path)


def test_regenerated_text_parses_back() -> None:
    text = 'FROM m\nSYSTEM """say "hi"\nnow"""\nPARAMETER stop " x "\nMESSAGE user hello\n'
    mf = parse(text)
    again = parse(str(mf))
    assert again.commands == [Command(c.name, c.args, again.commands[i].line) for i, c in enumerate(mf.commands)]
    assert quote("plain") == "plain" and quote(" lead") == '" lead"' and quote('a\n"b"') == '"""a\n"b""""'
