from __future__ import annotations

import hashlib
import json

import pytest

from corral.store import gojson
from corral.store.create import messages_bytes, params_bytes
from corral.store.errors import InvalidManifest
from corral.store.manifest import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_TEMPLATE,
    ConfigV2,
    Layer,
    Manifest,
)

# Written by Ollama after `ollama pull gemma:2b` (reference §4.2).
GEMMA_2B_MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
    b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json",'
    b'"digest":"sha256:887433b89a901c156f7e6944442f3c9e57f3c55d6ed52042cbb7303aea994290","size":483},'
    b'"layers":[{"mediaType":"application/vnd.ollama.image.model",'
    b'"digest":"sha256:c1864a5eb19305c40519da12cc543519e48a0697ecd30e15d5ac228644957d12","size":1678447520},'
    b'{"mediaType":"application/vnd.ollama.image.license",'
    b'"digest":"sha256:097a36493f718248845233af1d3fefe7a303f864fae13bc31a3a9704229378ca","size":8433},'
    b'{"mediaType":"application/vnd.ollama.image.template",'
    b'"digest":"sha256:109037bec39c0becc8221222ae23557559bc594290945a2c4221ab4f303b8871","size":136},'
    b'{"mediaType":"application/vnd.ollama.image.params",'
    b'"digest":"sha256:22a838ceb7fb22755a3b0ae9b4eadde629d19be1f651f73efb8c6b4e2cd0eea0","size":84}]}'
)

# The llama3.1 config blob as registry.ollama.ai serves it (reference §4.2).
LLAMA31_CONFIG = (
    b'{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"8.0B",'
    b'"file_type":"Q4_0","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":['
    b'"sha256:87048bcd55216712ef14c11c2c303728463207b165bf18440b9b84b07ec00f87",'
    b'"sha256:11ce4ee3e170f6adebac9a991c22e22ab3f8530e154ee669954c4bc73061c258",'
    b'"sha256:f1cd752815fcf68c3c2e73b2b00b5396c5dffb9eebe49567573f275f9ec85fcd",'
    b'"sha256:56bb8bd477a519ffa694fc449c2413c6f0e1d3b1c88fa7e3c9d88d3ae49d4dcb"]}}'
)


def test_manifest_golden_round_trip() -> None:
    manifest = Manifest.parse(GEMMA_2B_MANIFEST)
    assert manifest.to_bytes() == GEMMA_2B_MANIFEST
    assert [layer.media_type for layer in manifest.layers] == [
        MEDIA_TYPE_MODEL,
        MEDIA_TYPE_LICENSE,
        MEDIA_TYPE_TEMPLATE,
        MEDIA_TYPE_PARAMS,
    ]
    assert manifest.config.media_type == MEDIA_TYPE_CONFIG
    assert manifest.size == 483 + 1678447520 + 8433 + 136 + 84
    assert manifest.digests()[0] == "sha256:887433b89a901c156f7e6944442f3c9e57f3c55d6ed52042cbb7303aea994290"
    assert len(manifest.digests()) == 5


def test_manifest_built_from_parts_matches_golden() -> None:
    parsed = Manifest.parse(GEMMA_2B_MANIFEST)
    rebuilt = Manifest(
        config=Layer(MEDIA_TYPE_CONFIG, parsed.config.digest, 483),
        layers=tuple(Layer(x.media_type, x.digest, x.size) for x in parsed.layers),
    )
    assert rebuilt.to_bytes() == GEMMA_2B_MANIFEST


def test_layer_from_and_name_fields_follow_size() -> None:
    layer = Layer(MEDIA_TYPE_MODEL, "sha256:" + "a" * 64, 7, from_="llama3.2:latest")
    assert gojson.dumps(layer.to_dict()) == (
        b'{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:' + b"a" * 64 + b'",'
        b'"size":7,"from":"llama3.2:latest"}'
    )
    named = Layer("application/vnd.ollama.image.tensor", "sha256:" + "b" * 64, 1, name="w.weight")
    assert list(named.to_dict()) == ["mediaType", "digest", "size", "name"]
    back = Manifest.parse(Manifest(config=named, layers=(layer,)).to_bytes())
    assert back.layers[0].from_ == "llama3.2:latest"
    assert back.config.name == "w.weight"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"schemaVersion":2}',
        b'{"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}',
        b'{"config":{"mediaType":"x","digest":"sha256:' + b"a" * 64 + b'","size":"1"},"layers":[]}',
        b'{"config":{"mediaType":"x","digest":"sha256:' + b"a" * 64 + b'","size":1},"layers":{}}',
    ],
)
def test_manifest_parse_rejects(data: bytes) -> None:
    with pytest.raises(InvalidManifest):
        Manifest.parse(data)


def test_config_golden_round_trip() -> None:
    config = ConfigV2.parse(LLAMA31_CONFIG)
    assert config.to_bytes() == LLAMA31_CONFIG
    assert config.model_type == "8.0B"
    assert config.diff_ids is not None and len(config.diff_ids) == 4


def test_config_built_matches_golden() -> None:
    parsed = json.loads(LLAMA31_CONFIG)
    config = ConfigV2(
        model_format="gguf",
        model_family="llama",
        model_families=["llama"],
        model_type="8.0B",
        file_type="Q4_0",
        diff_ids=parsed["rootfs"]["diff_ids"],
    )
    assert config.to_bytes() == LLAMA31_CONFIG
    assert config.to_bytes(newline=True) == LLAMA31_CONFIG + b"\n"


def test_config_optional_fields_in_go_order() -> None:
    config = ConfigV2(
        model_format="gguf",
        model_family="qwen3",
        model_families=["qwen3"],
        model_type="4.0B",
        file_type="Q4_K_M",
        renderer="qwen3-coder",
        parser="qwen3-coder",
        requires="0.12.0",
        capabilities=["completion", "tools"],
        context_length=262144,
        embedding_length=2560,
        diff_ids=[],
    )
    keys = list(json.loads(config.to_bytes()))
    assert keys == [
        "model_format",
        "model_family",
        "model_families",
        "model_type",
        "file_type",
        "renderer",
        "parser",
        "requires",
        "capabilities",
        "context_length",
        "embedding_length",
        "architecture",
        "os",
        "rootfs",
    ]
    assert ConfigV2.parse(config.to_bytes()).to_bytes() == config.to_bytes()


def test_config_keeps_unknown_fields() -> None:
    data = b'{"model_format":"gguf","model_family":"x","model_families":null,"model_type":"1B","file_type":"F16",'
    data += b'"generation_defaults":{"temperature":0.7},"architecture":"amd64","os":"linux",'
    data += b'"rootfs":{"type":"layers","diff_ids":null}}'
    config = ConfigV2.parse(data)
    assert config.extra == {"generation_defaults": {"temperature": 0.7}}
    assert config.to_bytes() == data


def test_gojson_matches_go_encoding() -> None:
    assert gojson.dumps({"b": 1, "a": [True, None]}) == b'{"b":1,"a":[true,null]}'
    assert gojson.dumps({"b": 1, "a": 2}, sort_keys=True) == b'{"a":2,"b":1}'
    assert gojson.dumps("<|im_end|> & é \u2028 \x01") == b'"\\u003c|im_end|\\u003e \\u0026 \xc3\xa9 \\u2028 \\u0001"'
    assert gojson.dumps('q"\\\n\t') == b'"q\\"\\\\\\n\\t"'
    assert gojson.dumps([1.0, 0.6, 1e-7, 1e21, 1e20, 1e-5, -0.5], newline=True) == (
        b"[1,0.6,1e-7,1e+21,100000000000000000000,0.00001,-0.5]\n"
    )
    with pytest.raises(ValueError):
        gojson.dumps(float("nan"))


def test_params_blob_reproduces_ollamas_digest() -> None:
    # gemma:2b's params layer: Ollama wrote {"repeat_penalty":1,"stop":[...]} with json.Encoder.
    # Our bytes hash to the very digest in its manifest, so sorted keys, HTML escaping and the
    # trailing newline are all as Go writes them.
    data = params_bytes({"stop": ["<start_of_turn>", "<end_of_turn>"], "repeat_penalty": 1})
    assert data == b'{"repeat_penalty":1,"stop":["\\u003cstart_of_turn\\u003e","\\u003cend_of_turn\\u003e"]}\n'
    assert len(data) == 84
    params_layer = Manifest.parse(GEMMA_2B_MANIFEST).layers[3]
    assert params_layer.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert params_layer.size == len(data)


def test_messages_blob_field_order() -> None:
    data = messages_bytes([{"content": "hi", "role": "user"}, {"role": "assistant", "content": "yo", "images": None}])
    assert data == b'[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]\n'
