from __future__ import annotations

from pathlib import Path

import pytest

from corral.store.errors import InvalidModelName
from corral.store.names import ModelName


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("llama3.2", "registry.ollama.ai/library/llama3.2:latest", "llama3.2:latest"),
        ("llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b"),
        ("me/m", "registry.ollama.ai/me/m:latest", "me/m:latest"),
        ("library/m:t", "registry.ollama.ai/library/m:t", "m:t"),
        ("localhost:5000/ns/m:t", "localhost:5000/ns/m:t", "localhost:5000/ns/m:t"),
        ("localhost:5000/ns/m", "localhost:5000/ns/m:latest", "localhost:5000/ns/m:latest"),
        # Another host keeps even the library namespace (the mask stops at the first difference).
        ("example.com/library/m:t", "example.com/library/m:t", "example.com/library/m:t"),
        ("registry.ollama.ai/library/smollm2:135m", "registry.ollama.ai/library/smollm2:135m", "smollm2:135m"),
        # The default parts are matched case-insensitively; the model's own case is kept.
        ("REGISTRY.Ollama.AI/Library/SmolLM2:135M", "REGISTRY.Ollama.AI/Library/SmolLM2:135M", "SmolLM2:135M"),
        (
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
            None,
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
        ),
        ("deepseek-coder", None, "deepseek-coder:latest"),
        ("qwen2.5-coder:1.5b-instruct-q8_0", None, "qwen2.5-coder:1.5b-instruct-q8_0"),
        ("_under_/x_y:z_", None, "_under_/x_y:z_"),
    ],
)
def test_parse_and_display(text: str, full: str | None, short: str) -> None:
    name = ModelName.parse(text)
    if full is not None:
        assert str(name) == full
    assert name.display_shortest() == short
    # The shortest display parses back to the same name.
    assert ModelName.parse(name.display_shortest()).equal_fold(name)


def test_scheme() -> None:
    assert ModelName.parse("https://example.com/ns/m:t").scheme == "https"
    http = ModelName.parse("http://localhost:5000/ns/m:t")
    assert http.scheme == "http"
    assert http.host == "localhost:5000"
    assert http.base_url == "http://localhost:5000"
    assert ModelName.parse("m").scheme == "https"


def test_parts_and_manifest_path(tmp_path: Path) -> None:
    name = ModelName.parse("localhost:5000/ns/m:t")
    assert name.filepath_parts() == ("localhost:5000", "ns", "m", "t")
    assert name.manifest_path(tmp_path) == tmp_path / "manifests" / "localhost:5000" / "ns" / "m" / "t"
    assert ModelName.parse("llama3.2").manifest_path("/root") == Path(
        "/root/manifests/registry.ollama.ai/library/llama3.2/latest"
    )
    assert name.repository == "ns/m"


def test_case_is_kept_and_compared_folded() -> None:
    a = ModelName.parse("SmolLM2:135M")
    b = ModelName.parse("smollm2:135m")
    assert a.model == "SmolLM2"
    assert a != b
    assert a.equal_fold(b)
    assert a.fold_key() == b.fold_key()


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "m:",
        ":t",
        "/m",
        "m/",
        "ns//m",
        "a/b/c/d",
        "a/b/c/d:t",
        "..",
        "../x",
        "../../etc/passwd",
        "a/../b",
        "ns/..",
        "m:..",
        "m:../../x",
        "/etc/passwd",
        "//host/ns/m",
        ".hidden",
        "m:.t",
        "-dash",
        "ns./m",  # no dots in the namespace
        "n.s/m",
        "a..b",
        "host..x/ns/m",
        "m:t:x",
        "m:t/x",
        "sp ace",
        "über",
        "m\x00",
        "m\n",
        "m\\..\\x",
        "C:\\models\\m",
        "m@sha256:abc",
        "m+Q4_0",
        "ftp://host/ns/m",
        "ns:1/m",  # ':' only in the host
        "x" * 81,
        "m:" + "t" * 81,
        "h" * 351 + "/ns/m",
    ],
)
def test_invalid_names(text: str) -> None:
    with pytest.raises(InvalidModelName):
        ModelName.parse(text)
    assert not ModelName.is_valid(text)


def test_limits() -> None:
    assert ModelName.parse("x" * 80).model == "x" * 80
    assert ModelName.parse("h" * 350 + "/ns/m").host == "h" * 350


def test_invalid_name_is_value_error() -> None:
    with pytest.raises(ValueError):
        ModelName.parse("../x")


def test_from_parts_validates() -> None:
    with pytest.raises(InvalidModelName):
        ModelName.from_parts("registry.ollama.ai", "library", "..", "latest")
    with pytest.raises(InvalidModelName):
        ModelName.from_parts("registry.ollama.ai", "library", "m", ".manifest-tmp")
    assert str(ModelName.from_parts("h", "n", "m", "t")) == "h/n/m:t"
