"""Quantize on create, ADAPTER and DRAFT layers, on a tiny random F16 llama built with the ``gguf`` package.

Everything goes through a real server and llama.cpp: the quantizer in its child process, the runner loading
the quantized weights and the LoRA, the official ``ollama`` client as the caller.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from corral.store.blobs import BlobStore
from corral.store.gguf import read_metadata
from corral.store.manifest import MEDIA_TYPE_ADAPTER, MEDIA_TYPE_DRAFT, MEDIA_TYPE_MODEL
from corral.store.models import Store
from corral.store.quantize import (
    PROGRESS_DIGEST,
    QuantizeFailed,
    QuantizeRefused,
    check_source,
    parse_quant_type,
    quantize_blob,
)
from tests.ggufmaker import write_tiny_llama, write_tiny_lora
from tests.servers import CorralServer

BASE = "smollm2:135m"
GREEDY = {"temperature": 0, "num_predict": 12, "seed": 7, "top_k": 1}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> dict[str, Path]:
    """A random F16 llama with SmolLM2's tokenizer, and a random LoRA for it."""
    tokenizer_from = Store(models_dir).get(BASE).model_path
    assert tokenizer_from is not None
    root = tmp_path_factory.mktemp("tiny")
    return {"model": write_tiny_llama(root / "tiny-f16.gguf", tokenizer_from),
            "lora": write_tiny_lora(root / "tiny-lora.gguf")}


@pytest.fixture(scope="module")
def tiny_f16(server: CorralServer, tiny_files: dict[str, Path]) -> tuple[str, str]:
    """(model name, weights digest) of the tiny F16 model created from its uploaded file."""
    c = ollama.Client(host=server.url)
    digest = c.create_blob(tiny_files["model"])
    name = unique("t-tiny-f16")
    assert c.create(model=name, files={"tiny.gguf": digest}).status == "success"
    return name, digest


def temporaries(models_dir: Path) -> list[str]:
    return [p.name for p in (models_dir / "blobs").iterdir() if not p.name.startswith("sha256-")]


def generate(server: CorralServer, model: str, prompt: str = "Once upon a time") -> ollama.GenerateResponse:
    return ollama.Client(host=server.url).generate(model=model, prompt=prompt, raw=True, options=GREEDY)


# --- the quantizer itself --------------------------------------------------------------------------


def test_quant_type_names_and_sources() -> None:
    assert parse_quant_type("q4_K_M") == ("Q4_K_M", 15)
    assert parse_quant_type("Q4_K") == ("Q4_K_M", 15)  # Ollama's alias
    assert parse_quant_type("q8_0") == ("Q8_0", 7)
    assert parse_quant_type("q6_k") == ("Q6_K", 18)
    with pytest.raises(QuantizeRefused, match=r"^unsupported quantization type Q9_Z - supported types are F32, F16"):
        parse_quant_type("q9_z")
    for source in ("F16", "BF16", "F32"):
        check_source(source)
    with pytest.raises(QuantizeRefused, match=r"^quantization is only supported for F16, BF16 and F32 models$"):
        check_source("Q4_1")
    with pytest.raises(QuantizeRefused, match=r"^draft quantization requires an unquantized draft model, got Q8_0$"):
        check_source("Q8_0", draft=True)


def test_quantize_blob_reports_progress_and_is_atomic(tmp_path: Path, tiny_files: dict[str, Path]) -> None:
    blobs = BlobStore(tmp_path)
    digest, _ = blobs.import_file(tiny_files["model"], link=False)
    seen: list[tuple[int, int]] = []
    verified: list[bool] = []
    new_digest, size, existed = quantize_blob(blobs, digest, "q8_0", progress=lambda d, t: seen.append((d, t)),
                                              verified=lambda: verified.append(True))
    assert not existed and verified == [True]
    n_tensors = len(read_metadata(tiny_files["model"]).tensor_infos)
    assert seen[-1] == (n_tensors, n_tensors) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    path = blobs.path(new_digest)
    assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == new_digest and path.stat().st_size == size
    assert read_metadata(path).file_type_name == "Q8_0"
    assert sorted(p.name for p in blobs.root.iterdir()) == sorted([path.name, blobs.path(digest).name])
    # the same request again finds its blob; a source llama.cpp cannot read leaves nothing behind
    assert quantize_blob(blobs, digest, "Q8_0")[:3] == (new_digest, size, True)
    bad, _ = blobs.put_bytes(b"GGUF but not really a model")
    before = sorted(p.name for p in blobs.root.iterdir())
    with pytest.raises(QuantizeFailed, match=r"^llama\.cpp quantize failed: "):
        quantize_blob(blobs, bad, "q4_K_M")
    assert sorted(p.name for p in blobs.root.iterdir()) == before


# --- through /api/create ---------------------------------------------------------------------------


def test_create_quantizes_an_uploaded_f16_gguf(server: CorralServer, models_dir: Path,
                                               tiny_files: dict[str, Path]) -> None:
    c = ollama.Client(host=server.url)
    f16_digest = c.create_blob(tiny_files["model"])
    f16_size = tiny_files["model"].stat().st_size
    name = unique("t-tiny-q4")
    updates = list(c.create(model=name, files={"tiny.gguf": f16_digest}, quantize="q4_K_M", stream=True))
    statuses = [u.status for u in updates]
    assert statuses[0] == "parsing GGUF" and statuses[-2:] == ["writing manifest", "success"]

    quantizing = [u for u in updates if u.status == "quantizing F16 model to Q4_K_M"]
    assert len(quantizing) >= 2
    assert {(u.digest, u.total) for u in quantizing} == {(PROGRESS_DIGEST, f16_size)}
    done = [u.completed or 0 for u in quantizing]
    assert done == sorted(done) and done[-1] == f16_size
    assert statuses.index("verifying conversion") > statuses.index("quantizing F16 model to Q4_K_M")

    store = Store(models_dir)
    model = store.get(name)
    layer = model.model_layer
    assert layer is not None and layer.digest != f16_digest and layer.from_ is None
    assert f"creating new layer {layer.digest}" in statuses
    blob = store.blobs.path(layer.digest)
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == layer.digest
    assert blob.stat().st_size == layer.size < f16_size
    meta = read_metadata(blob)
    assert meta.file_type_name == "Q4_K_M" and "Q4_K" in {t.type for t in meta.tensor_infos}
    assert model.config["file_type"] == "Q4_K_M" and model.config["model_family"] == "llama"
    assert c.show(name).details.quantization_level == "Q4_K_M"
    assert temporaries(models_dir) == []

    answer = generate(server, name)
    assert answer.done and answer.eval_count is not None and answer.eval_count >= 1


def test_quantize_a_model_by_name_and_a_no_op(server: CorralServer, models_dir: Path,
                                               tiny_f16: tuple[str, str]) -> None:
    base, f16_digest = tiny_f16
    store = Store(models_dir)
    assert store.get(base).config["file_type"] == "F16"
    r = httpx.post(server.url + "/api/create", json={"model": unique("t-tiny-q8"), "from": base,
                                                      "quantize": "Q8_0", "stream": False}, timeout=300)
    assert r.status_code == 200 and r.json() == {"status": "success"}, r.text

    # asking for the type the weights already have keeps the layer (Ollama quantizes only when they differ)
    same = unique("t-tiny-same")
    updates = list(ollama.Client(host=server.url).create(model=same, from_=base, quantize="f16", stream=True))
    assert not any(u.status and u.status.startswith("quantizing") for u in updates)
    layer = store.get(same).model_layer
    assert layer is not None and layer.digest == f16_digest and layer.from_ == f"{base}:latest"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"from": BASE, "quantize": "q4_K_M"}, "quantization is only supported for F16, BF16 and F32 models"),
        ({"from": BASE, "quantize": "q9_z"}, None),
        ({"from": BASE, "draft_quantize": "q8_0"}, "--draft-quantize requires a DRAFT model"),
    ],
)
def test_quantize_refusals(server: CorralServer, models_dir: Path, extra: dict[str, Any], error: str | None) -> None:
    blobs_before = sorted(p.name for p in (models_dir / "blobs").iterdir())
    name = unique("t-refused")
    for stream in (False, True):  # refused before the stream starts: a plain 400 either way
        r = httpx.post(server.url + "/api/create", json={"model": name, "stream": stream, **extra}, timeout=300)
        assert r.status_code == 400, r.text
        if error is None:
            assert r.json()["error"].startswith("unsupported quantization type Q9_Z - supported types are ")
        else:
            assert r.json() == {"error": error}
    assert Store(models_dir).resolve(name) is None
    assert sorted(p.name for p in (models_dir / "blobs").iterdir()) == blobs_before

    c = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError) as info:
        list(c.create(model=name, from_=BASE, quantize="q4_K_M", stream=True))
    assert info.value.status_code == 400


# --- ADAPTER ----------------------------------------------------------------------------------------


def test_adapter_changes_the_output(server: CorralServer, models_dir: Path, tiny_f16: tuple[str, str],
                                    tiny_files: dict[str, Path]) -> None:
    base, _ = tiny_f16
    c = ollama.Client(host=server.url)
    lora_digest = c.create_blob(tiny_files["lora"])
    name = unique("t-tiny-lora")
    assert c.create(model=name, from_=base, adapters={"lora.gguf": lora_digest}).status == "success"

    store = Store(models_dir)
    model = store.get(name)
    assert [x.digest for x in model.manifest.layers_of(MEDIA_TYPE_ADAPTER)] == [lora_digest]
    assert f"ADAPTER {store.blobs.path(lora_digest)}\n" in (c.show(name).modelfile or "")

    first, again, adapted = generate(server, base), generate(server, base), generate(server, name)
    assert first.eval_count and adapted.eval_count
    assert first.response == again.response  # greedy decoding is deterministic...
    assert adapted.response != first.response  # ...so the difference is the LoRA's


# --- DRAFT ------------------------------------------------------------------------------------------


def test_draft_layer_stored_quantized_and_shown(server: CorralServer, models_dir: Path,
                                                tiny_f16: tuple[str, str]) -> None:
    base, f16_digest = tiny_f16
    name = unique("t-tiny-draft")
    r = httpx.post(server.url + "/api/create", timeout=300, json={
        "model": name, "from": base, "draft_files": {"draft.gguf": f16_digest}, "draft_quantize": "q8_0",
        "stream": False})
    assert r.status_code == 200, r.text
    store = Store(models_dir)
    model = store.get(name)
    drafts = model.manifest.layers_of(MEDIA_TYPE_DRAFT)
    assert len(drafts) == 1 and drafts[0].digest != f16_digest
    assert read_metadata(store.blobs.path(drafts[0].digest)).file_type_name == "Q8_0"
    assert model.model_layer is not None and model.model_layer.digest == f16_digest  # the model stays F16
    assert model.config["draft"] == {"model_format": "gguf", "architecture": "llama"}
    assert model.config["file_type"] == "F16"
    shown = httpx.post(server.url + "/api/show", json={"model": name}).json()
    lines = shown["modelfile"].splitlines()
    assert lines[4:6] == [f"FROM {store.blobs.path(f16_digest)}", f"DRAFT {store.blobs.path(drafts[0].digest)}"]

    # a quantized draft cannot be quantized again
    smol = store.get(BASE).model_layer
    assert smol is not None
    r = httpx.post(server.url + "/api/create", json={
        "model": unique("t-bad-draft"), "from": base, "draft_files": {"d.gguf": smol.digest}, "draft_quantize": "q8_0",
        "stream": False})
    assert r.status_code == 400
    assert r.json() == {"error": "draft quantization requires an unquantized draft model, got Q4_1"}
    assert MEDIA_TYPE_MODEL in {x.media_type for x in model.manifest.layers}
