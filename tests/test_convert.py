"""Models from Hugging Face folders (issue 19), end to end against a real ``corral serve``.

The bundled smollm2:135m GGUF is turned into a Hugging Face folder by the test (tests/hfmaker.py: weights
dequantized, HF names and q/k layout, a ``tokenizer.json`` built with the ``tokenizers`` library), a model is
created from that folder every way a user can (the official ``ollama`` client, ``corral create`` with a
Modelfile), and the created model is compared with the original: greedy continuations agree up to the first
step where the original's top-2 logit gap is within a small tolerance, tokenization equals the ``tokenizers``
library's on the same file. "The original" runs the bundled weights as the folder holds them: the Q4_1 GGUF
requantized to F16 by llama.cpp itself (its Q4_1 kernels quantize activations too, a difference of the
kernels, not of the conversion).

``all-minilm`` (the bundled embedding model, converted on import) is checked against an independent numpy BERT
forward pass (tests/bert_reference.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import openai
import pytest

from corral.store.blobs import TEMP_PREFIX
from corral.store.models import Store
from corral.store.testing import make_temp_store
from tests.servers import REPO, CorralServer

pytestmark = pytest.mark.slow

SMOL = "smollm2:135m"
GAP_TOLERANCE = 0.05  # nats between the original's first and second choice below which a flip is a near tie
PROMPTS = ["The capital of France is", "def fibonacci(n):\n", "Once upon a time, in a small village,"]
MIXED = "Hello, 世界! 🦙👍 def f(x):\n    return x ** 2  # 12345 ünïcödé\t<|im_start|>"


@pytest.fixture(scope="module")
def smol_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = make_temp_store(tmp_path_factory.mktemp("smol-source"), names=[SMOL])
    path = store.get(SMOL).model_path
    assert path is not None
    return path


@pytest.fixture(scope="module")
def hf_smol(tmp_path_factory: pytest.TempPathFactory, smol_gguf: Path) -> Path:
    from tests.hfmaker import write_hf_folder

    return write_hf_folder(smol_gguf, tmp_path_factory.mktemp("hf") / "smollm2-hf", dtype="F32")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    root = tmp_path_factory.mktemp("convert")
    store = make_temp_store(root, names=[SMOL, "all-minilm"])
    srv = CorralServer(models=store.root, env={"OLLAMA_MAX_LOADED_MODELS": "4"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: CorralServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def upload_folder(client: ollama.Client, folder: Path) -> dict[str, str]:
    """Every file of the folder as a blob, by its path inside it (what the CLI sends)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            files[path.relative_to(folder).as_posix()] = client.create_blob(path)
    return files


@pytest.fixture(scope="module")
def converted(client: ollama.Client, hf_smol: Path) -> str:
    statuses = [p.status for p in client.create("hf-smol", files=upload_folder(client, hf_smol), stream=True)]
    assert "converting model" in statuses and statuses[-1] == "success", statuses
    return "hf-smol"


@pytest.fixture(scope="module")
def original(client: ollama.Client, smol_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bundled smollm2 at F16: llama.cpp's own requantization of its Q4_1 weights."""
    import ctypes

    import llama_cpp as ll

    out = tmp_path_factory.mktemp("f16") / "smollm2-f16.gguf"
    params = ll.llama_model_quantize_default_params()
    params.ftype = 1  # LLAMA_FTYPE_MOSTLY_F16
    params.allow_requantize = True
    assert ll.llama_model_quantize(str(smol_gguf).encode(), str(out).encode(), ctypes.byref(params)) == 0
    client.create("smol-f16", files={"model.gguf": client.create_blob(out)})
    return "smol-f16"


def greedy(server: CorralServer, model: str, prompt: str, n: int = 24) -> list[dict[str, Any]]:
    r = httpx.post(server.url + "/api/generate", timeout=300, json={
        "model": model, "prompt": prompt, "raw": True, "stream": False, "logprobs": True, "top_logprobs": 2,
        "options": {"temperature": 0, "num_predict": n, "seed": 0}})
    assert r.status_code == 200, r.text
    logprobs = r.json()["logprobs"]
    assert logprobs, r.json()
    return list(logprobs)


def test_greedy_continuations_match_the_original(server: CorralServer, converted: str, original: str) -> None:
    compared = 0
    for prompt in PROMPTS:
        theirs, ours = greedy(server, original, prompt), greedy(server, converted, prompt)
        for step, (a, b) in enumerate(zip(theirs, ours, strict=False)):
            if a["token"] == b["token"]:
                compared += 1
                continue
            top = sorted((t["logprob"] for t in a["top_logprobs"]), reverse=True)
            gap = top[0] - top[1] if len(top) > 1 else float("inf")
            assert gap < GAP_TOLERANCE, (prompt, step, a, b)  # only a near tie may flip
            break
    assert compared >= 2 * 24  # most of the way, not one flip early in every prompt


def test_tokenization_equals_the_tokenizers_library(server: CorralServer, converted: str, hf_smol: Path) -> None:
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(hf_smol / "tokenizer.json")).encode(MIXED, add_special_tokens=False).ids
    ours = httpx.post(server.url + "/api/tokenize", json={"model": converted, "content": MIXED}).json()["tokens"]
    original = httpx.post(server.url + "/api/tokenize", json={"model": SMOL, "content": MIXED}).json()["tokens"]
    assert ours == reference == original


def test_the_chat_template_comes_from_tokenizer_config(server: CorralServer, converted: str) -> None:
    body = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "_debug_render_only": True, "stream": False}
    ours = httpx.post(server.url + "/api/chat", json={**body, "model": converted}).json()
    original = httpx.post(server.url + "/api/chat", json={**body, "model": SMOL}).json()
    assert ours["_debug_info"]["rendered_template"] == original["_debug_info"]["rendered_template"]
    assert "<|im_start|>system\nBe brief.<|im_end|>" in ours["_debug_info"]["rendered_template"]


def test_show_reports_the_conversion(client: ollama.Client, converted: str) -> None:
    shown = client.show(converted)
    assert shown.details.format == "gguf" and shown.details.family == "llama"
    assert shown.details.quantization_level == "F16"
    assert shown.capabilities is not None and "completion" in shown.capabilities
    info = shown.modelinfo or {}
    assert info["general.architecture"] == "llama" and info["general.parameter_count"] > 100_000_000


def test_quantize_after_conversion(server: CorralServer, client: ollama.Client, hf_smol: Path) -> None:
    statuses = [p.status for p in client.create("hf-smol-q4", files=upload_folder(client, hf_smol),
                                                quantize="q4_K_M", stream=True)]
    assert "converting model" in statuses and any(s.startswith("quantizing F16 model to Q4_K_M") for s in statuses)
    assert client.show("hf-smol-q4").details.quantization_level == "Q4_K_M"
    r = client.generate("hf-smol-q4", "The capital of France is", options={"num_predict": 4, "temperature": 0})
    assert r.done and r.eval_count and r.eval_count > 0


def _weights_digest(server: CorralServer, name: str) -> str:
    layer = Store(server.models).get(name).model_layer
    assert layer is not None
    return layer.digest


def test_a_sharded_folder_converts_to_the_same_model(server: CorralServer, client: ollama.Client,
                                                     smol_gguf: Path, converted: str, tmp_path: Path) -> None:
    from tests.hfmaker import write_hf_folder

    sharded = write_hf_folder(smol_gguf, tmp_path / "sharded", dtype="F32", shards=3)
    assert (sharded / "model.safetensors.index.json").is_file()
    client.create("hf-sharded", files=upload_folder(client, sharded))
    assert _weights_digest(server, "hf-sharded") == _weights_digest(server, converted)  # byte for byte


def test_a_bf16_folder_converts(server: CorralServer, client: ollama.Client, smol_gguf: Path, tmp_path: Path) -> None:
    from tests.hfmaker import write_hf_folder

    bf16 = write_hf_folder(smol_gguf, tmp_path / "bf16", dtype="BF16")
    client.create("hf-bf16", files=upload_folder(client, bf16))
    assert client.show("hf-bf16").details.quantization_level == "F16"
    first = greedy(server, "hf-bf16", PROMPTS[0], n=4)
    assert len(first) == 4


def test_the_cli_creates_from_a_folder(server: CorralServer, hf_smol: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {hf_smol}\nPARAMETER temperature 0\nSYSTEM You are brief.\n")
    env = {**os.environ, "OLLAMA_HOST": server.host, "NO_PROXY": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-m", "corral", "create", "hf-cli", "-f", str(modelfile)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "converting model" in done.stderr and "success" in done.stderr
    shown = httpx.post(server.url + "/api/show", json={"model": "hf-cli"}).json()
    assert shown["system"] == "You are brief." and "temperature" in shown["parameters"]


# --- bad folders --------------------------------------------------------------------------------------------


def _store_state(server: CorralServer) -> tuple[set[str], set[str]]:
    root = server.models
    manifests = {str(p.relative_to(root)) for p in (root / "manifests").rglob("*") if p.is_file()}
    temps = {p.name for p in (root / "blobs").iterdir() if p.name.startswith(TEMP_PREFIX)}
    return manifests, temps


def _safetensors(tensors: dict[str, np.ndarray], header_patch: dict[str, Any] | None = None) -> bytes:
    header: dict[str, Any] = {}
    data = b""
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header.update(header_patch or {})
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


def _bad_folders(hf_smol: Path) -> dict[str, tuple[dict[str, bytes], str]]:
    """name -> (files, a word the 400 must contain)."""
    config = json.loads((hf_smol / "config.json").read_text())
    tokenizer = (hf_smol / "tokenizer.json").read_bytes()
    tok_config = (hf_smol / "tokenizer_config.json").read_bytes()
    small = {"model.embed_tokens.weight": np.zeros((4, 4))}
    good_weights = _safetensors(small)
    base = {"config.json": json.dumps(config).encode(), "tokenizer.json": tokenizer,
            "tokenizer_config.json": tok_config}
    return {
        "no config": ({"model.safetensors": good_weights, "tokenizer.json": tokenizer}, "config.json"),
        "unknown architecture": ({**base, "config.json": json.dumps(
            {**config, "architectures": ["FrobnicatorForCausalLM"], "model_type": "frobnicator"}).encode(),
            "model.safetensors": good_weights}, "FrobnicatorForCausalLM"),
        "truncated": ({**base, "model.safetensors": good_weights[:-7]}, "model.safetensors"),
        "lying header": ({**base, "model.safetensors": _safetensors(small, {"model.norm.weight": {
            "dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}})}, "model.safetensors"),
        "escaping tensor name": ({**base, "model.safetensors": _safetensors(
            {"../../../../etc/passwd": np.zeros(4)})}, "passwd"),
        "no tokenizer": ({"config.json": base["config.json"], "model.safetensors": good_weights}, "tokenizer"),
    }


@pytest.mark.parametrize("case", ["no config", "unknown architecture", "truncated", "lying header",
                                  "escaping tensor name", "no tokenizer"])
def test_a_bad_folder_is_a_400_naming_the_problem(server: CorralServer, client: ollama.Client, hf_smol: Path,
                                                 case: str) -> None:
    files, word = _bad_folders(hf_smol)[case]
    digests = {}
    for name, data in files.items():
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = httpx.post(f"{server.url}/api/blobs/{digest}", content=data)
        assert r.status_code in (200, 201), r.text
        digests[name] = digest
    before = _store_state(server)
    r = httpx.post(server.url + "/api/create", json={"model": "hf-bad", "files": digests, "stream": False},
                   timeout=120)
    assert r.status_code == 400, (case, r.text)
    assert word in r.json()["error"], (case, r.json())
    assert _store_state(server) == before  # no manifest, no temporary file left
    assert httpx.get(server.url + "/").status_code == 200


def test_a_file_key_leaving_the_folder_is_refused(server: CorralServer) -> None:
    digest = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    httpx.post(f"{server.url}/api/blobs/{digest}", content=b"{}")
    for key in ("../config.json", "/etc/config.json", "a/../../config.json", "a\\config.json"):
        r = httpx.post(server.url + "/api/create", json={"model": "hf-bad", "files": {key: digest}, "stream": False})
        assert r.status_code == 400, (key, r.text)


# --- all-minilm -----------------------------------------------------------------------------------------------

SENTENCES = [
    "A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome.",
    "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums.",
    "Two men pushed carts through the woods.", "A man is playing guitar.", "The cat sits outside.",
    "The new movie is so great.", "A woman is watching TV.", "The weather is lovely today.",
    "It's so sunny outside!", "He drove to the stadium.", "Do you like pizza?", "I love pasta.",
    "Python is a programming language.", "Rust has a borrow checker.", "The stock market fell sharply.",
    "你好，世界", "Les chats sont mignons 🐱",
]
PAIRS = [  # (anchor, related, unrelated)
    ("A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome."),
    ("The new movie is awesome.", "The new movie is so great.", "A monkey is playing drums."),
    ("The weather is lovely today.", "It's so sunny outside!", "Python is a programming language."),
    ("Do you like pizza?", "I love pasta.", "He drove to the stadium."),
]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_all_minilm_matches_a_numpy_bert(client: ollama.Client) -> None:
    from tests.bert_reference import bert_embed, minilm_folder

    ours = np.array(client.embed("all-minilm", input=SENTENCES).embeddings, dtype=np.float64)
    reference = bert_embed(minilm_folder(), SENTENCES)
    assert ours.shape == reference.shape == (len(SENTENCES), 384)
    cosines = [_cos(a, b) for a, b in zip(ours, reference, strict=True)]
    assert min(cosines) >= 0.999, cosines
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)  # normalised, as /api/embed is
    for anchor, related, unrelated in PAIRS:
        a, r, u = client.embed("all-minilm", input=[anchor, related, unrelated]).embeddings
        assert _cos(np.array(a), np.array(r)) > _cos(np.array(a), np.array(u)), (anchor, related, unrelated)


def test_all_minilm_on_every_api(server: CorralServer, client: ollama.Client) -> None:
    shown = client.show("all-minilm")
    assert shown.capabilities == ["embedding"]
    assert shown.details.family == "bert"
    legacy = client.embeddings("all-minilm", prompt="The cat sits outside.").embedding
    native = client.embed("all-minilm", input="The cat sits outside.").embeddings[0]
    assert len(legacy) == 384 and _cos(np.array(legacy), np.array(native)) > 0.9999
    oa = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    v1 = oa.embeddings.create(model="all-minilm", input=["The cat sits outside."]).data[0].embedding
    assert _cos(np.array(v1), np.array(native)) > 0.9999
    import corral

    ours = corral.Client(host=server.url).embed("all-minilm", input="The cat sits outside.").embeddings[0]
    assert _cos(np.array(ours), np.array(native)) > 0.9999
    # an encoder-only model embeds and nothing else
    for call in (lambda: client.generate("all-minilm", "hi"),
                 lambda: client.chat("all-minilm", messages=[{"role": "user", "content": "hi"}])):
        with pytest.raises(ollama.ResponseError) as err:
            call()
        assert err.value.status_code == 400 and "does not support" in err.value.error


def test_all_minilm_is_bundled_through_the_conversion(server: CorralServer) -> None:
    store = Store(server.models)
    model = store.get("all-minilm")
    meta = model.gguf()
    assert meta is not None and meta.architecture == "bert" and meta.file_type_name == "F16"
    assert model.params.get("num_ctx") == 256
    # only the converted GGUF is the model's: the folder's files were not kept as blobs
    sizes = sorted(p.stat().st_size for p in (server.models / "blobs").iterdir())
    assert 90_868_376 not in sizes
