"""/api/create, /api/blobs, /api/copy, /api/delete over a real server, called by the official `ollama` client."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from corral.store.modelfile import parse
from corral.store.models import Store
from tests.servers import CorralServer

BASE = "smollm2:135m"
TEMPLATE = (
    "TMPL-MARK{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)
MODELFILE = f'''# a test model
FROM {BASE}
SYSTEM """You are SYS-MARK, a terse assistant."""
TEMPLATE """{TEMPLATE}"""
PARAMETER num_predict 3
PARAMETER temperature 0
PARAMETER stop <|im_end|>
PARAMETER stop STOP-MARK
MESSAGE user FEWSHOT-USER
MESSAGE assistant FEWSHOT-ASSISTANT
'''


def client(server: CorralServer) -> ollama.Client:
    return ollama.Client(host=server.url)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def blob_files(models_dir: Path) -> set[str]:
    return {p.name for p in (models_dir / "blobs").iterdir()}


def create_from_modelfile(server: CorralServer, name: str, text: str = MODELFILE) -> Any:
    fields = parse(text).create_fields(".")
    return client(server).create(model=name, from_=fields.get("from"), system=fields.get("system"),
                                 template=fields.get("template"), parameters=fields.get("parameters"),
                                 messages=fields.get("messages"), license=fields.get("license"))


def test_create_show_render_and_parameters(server: CorralServer) -> None:
    name = unique("t-mario")
    done = create_from_modelfile(server, name)
    assert done.status == "success"
    c = client(server)
    shown = c.show(name)
    # the official client's ShowResponse has no `system` or `messages` fields: read those from the JSON
    raw = httpx.post(server.url + "/api/show", json={"model": name}).json()
    assert raw["system"] == "You are SYS-MARK, a terse assistant."
    assert shown.template == TEMPLATE
    assert shown.parameters is not None
    assert 'stop                           "STOP-MARK"' in shown.parameters
    assert "num_predict                    3" in shown.parameters
    assert [(m["role"], m["content"]) for m in raw["messages"]] == [
        ("user", "FEWSHOT-USER"), ("assistant", "FEWSHOT-ASSISTANT")]
    assert shown.details.parent_model == "smollm2:135m"
    assert shown.modelfile is not None and "SYS-MARK" in shown.modelfile

    r = httpx.post(server.url + "/api/chat", json={
        "model": name, "_debug_render_only": True, "messages": [{"role": "user", "content": "USER-MARK"}]})
    assert r.status_code == 200, r.text
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert rendered.startswith("TMPL-MARK")
    order = [rendered.index(m) for m in ("SYS-MARK", "FEWSHOT-USER", "FEWSHOT-ASSISTANT", "USER-MARK")]
    assert order == sorted(order)
    assert rendered.endswith("<|im_start|>assistant\n")

    answer = c.chat(model=name, messages=[{"role": "user", "content": "Count from one to ten."}])
    assert answer.done_reason == "length" and answer.eval_count == 3


def test_manifest_layers_and_streamed_progress(server: CorralServer, models_dir: Path) -> None:
    name = unique("t-layers")
    statuses = [p.status for p in client(server).create(model=name, from_=BASE, system="layer test " + name,
                                                        parameters={"num_ctx": 1024}, stream=True)]
    assert statuses[-2:] == ["writing manifest", "success"]
    assert any(s and s.startswith("using existing layer sha256:") for s in statuses)
    assert any(s and s.startswith("creating new layer sha256:") for s in statuses)
    store = Store(models_dir)
    model, base = store.get(name), store.get(BASE)
    assert model.model_layer is not None and base.model_layer is not None
    assert model.model_layer.digest == base.model_layer.digest and model.model_layer.from_ == "smollm2:135m"
    assert model.params == {**base.params, "num_ctx": 1024}  # new keys added, inherited ones kept
    assert model.system == "layer test " + name
    assert model.license == base.license
    config = json.loads(store.blobs.read_bytes(model.manifest.config.digest))
    assert config["model_format"] == "gguf" and config["model_family"] == "llama"
    assert config["rootfs"]["diff_ids"] == [x.digest for x in model.manifest.layers]
    for layer in (model.manifest.config, *model.manifest.layers):  # every digest and size matches its file
        digest, size = hashlib.sha256(store.blobs.read_bytes(layer.digest)).hexdigest(), layer.size
        assert "sha256:" + digest == layer.digest and store.blobs.size(layer.digest) == size
    # a second create on the same name replaces the system layer and prunes the old one
    old_system = next(x.digest for x in model.manifest.layers if x.media_type.endswith("system"))
    done = client(server).create(model=name, from_=name, system="replaced")
    assert done.status == "success"
    again = store.get(name)
    assert again.system == "replaced" and again.params["num_ctx"] == 1024
    assert not store.blobs.exists(old_system)


def test_create_from_uploaded_gguf(server: CorralServer, models_dir: Path) -> None:
    store = Store(models_dir)
    weights = store.get(BASE).model_path
    assert weights is not None
    c = client(server)
    digest = c.create_blob(weights)  # already there: the server answers 200
    name = unique("t-files")
    done = c.create(model=name, files={"model.gguf": digest}, template="{{ .Prompt }}", license="L-MARK")
    assert done.status == "success"
    shown = c.show(name)
    assert shown.details.family == "llama" and shown.license == "L-MARK" and shown.template == "{{ .Prompt }}"
    assert store.get(name).parent_model == ""
    raw = httpx.post(server.url + "/api/create", json={"model": name, "from": name, "renderer": "R-MARK",
                                                        "parser": "P-MARK", "requires": "0.14.0", "stream": False})
    assert raw.status_code == 200 and raw.json() == {"status": "success"}
    shown_raw = httpx.post(server.url + "/api/show", json={"model": name}).json()
    assert (shown_raw["renderer"], shown_raw["parser"], shown_raw["requires"]) == ("R-MARK", "P-MARK", "0.14.0")
    # a DRAFT model is stored as its own layer (speculative decoding with it is later work)
    raw = httpx.post(server.url + "/api/create", json={"model": name, "from": name, "stream": False,
                                                        "draft_files": {"draft.gguf": digest}})
    assert raw.status_code == 200, raw.text
    drafts = [x for x in store.get(name).manifest.layers if x.media_type == "application/vnd.ollama.image.draft"]
    assert [x.digest for x in drafts] == [digest]


def test_copy_then_delete_removes_own_blobs_only(server: CorralServer, models_dir: Path) -> None:
    c = client(server)
    name, copy_name = unique("t-own"), unique("someone/t-copy")
    assert c.create(model=name, from_=BASE, system="own blob " + name).status == "success"
    store = Store(models_dir)
    own = store.get(name)
    system_digest = next(x.digest for x in own.manifest.layers if x.media_type.endswith("system"))
    weights = own.model_layer.digest if own.model_layer else ""
    assert c.copy(name, copy_name).status == "success"
    assert store.get(copy_name).manifest_path.read_bytes() == own.manifest_path.read_bytes()
    assert {m.model for m in c.list().models} >= {f"{name}:latest", f"{copy_name}:latest"}

    assert c.delete(name).status == "success"
    assert store.resolve(name) is None and store.blobs.exists(system_digest)  # the copy still uses it
    assert c.delete(copy_name).status == "success"
    assert not store.blobs.exists(system_digest) and not store.blobs.exists(own.manifest.config.digest)
    assert store.blobs.exists(weights)  # shared with the bundled model
    assert not (models_dir / "manifests" / "registry.ollama.ai" / "someone").exists()

    with pytest.raises(ollama.ResponseError) as info:
        c.delete(name)
    assert info.value.status_code == 404 and info.value.error == f"model '{name}' not found"
    with pytest.raises(ollama.ResponseError) as info:
        c.copy("no-such-model", "x")
    assert info.value.status_code == 404 and info.value.error == 'model "no-such-model" not found'


def test_blob_upload(server: CorralServer, models_dir: Path) -> None:
    data = os.urandom(300_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    url = f"{server.url}/api/blobs/{digest}"
    assert httpx.head(url).status_code == 404
    assert httpx.post(url, content=data).status_code == 201
    assert httpx.head(url).status_code == 200
    assert httpx.post(url, content=data).status_code == 200
    assert (models_dir / "blobs" / digest.replace(":", "-")).read_bytes() == data

    before = blob_files(models_dir)
    wrong = "sha256:" + "0" * 64
    r = httpx.post(f"{server.url}/api/blobs/{wrong}", content=b"not those bytes")
    assert r.status_code == 400
    got = "sha256:" + hashlib.sha256(b"not those bytes").hexdigest()
    assert r.json() == {"error": f'digest mismatch, expected "{wrong}", got "{got}"'}
    assert blob_files(models_dir) == before  # neither the blob nor a temporary file is left
    for bad in ("sha256:abc", "md5-" + "0" * 64, "sha256:" + "g" * 64):
        r = httpx.post(f"{server.url}/api/blobs/{bad}", content=b"x")
        assert r.status_code == 400 and r.json() == {"error": "invalid digest format"}
        assert httpx.head(f"{server.url}/api/blobs/{bad}").status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "t-none"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "../../etc/evil", "from": BASE}, 400, "invalid model name"),
        ({"model": "a/b/c/d", "from": BASE}, 400, "invalid model name"),
        ({"model": "t-x", "from": "../escape"}, 400, "invalid model name"),
        ({"model": "t-x", "files": {"../w.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "files": {"/etc/passwd": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "files": {"a/../../w": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "adapters": {"..": "sha256:" + "0" * 64}, "from": BASE}, 400,
         "file path must be relative"),
        ({"model": "t-x", "files": {"w.gguf": "/etc/passwd"}}, 400, "invalid digest format"),
        ({"model": "t-x", "from": BASE, "template": "{{ .Prompt "}, 400, None),
        ({"model": "t-x", "from": BASE, "quantize": "q4_K_M"}, 400,
         "quantization is only supported for F16, BF16 and F32 models"),
        ({"model": "t x", "from": BASE}, 400, "invalid model name"),
        ({"model": "t\x00x", "from": BASE}, 400, "invalid model name"),
        ({"model": "%2e%2e/x", "from": BASE}, 400, "invalid model name"),
        ({"model": "C:\\evil", "from": BASE}, 400, "invalid model name"),
        ({"model": "t-x", "from": "/etc/passwd"}, 400, "invalid model name"),
        ({"model": "t-x", "files": {"a\\..\\..\\w": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "files": {"C:/w.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "files": {"w\x00.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "t-x", "files": {"w.gguf": "sha256:../../../etc/passwd"}}, 400, "invalid digest format"),
        ({"model": "t-x", "from": BASE, "info": {"context_length": -1}}, 400,
         'info field "context_length" must be a non-negative integer'),
        ({"model": "t-x", "from": BASE, "info": {"model_family": 3}}, 400,
         'info field "model_family" must be a string'),
        ({"model": "t-x", "from": BASE, "info": {"capabilities": "tools"}}, 400,
         'info field "capabilities" must be an array of strings'),
        ({"model": "t-x", "from": BASE, "parameters": {"num_ctx": "big"}}, 400,
         'option "num_ctx" must be of type integer'),
    ],
)
def test_create_refuses_bad_requests(server: CorralServer, models_dir: Path, body: dict[str, Any], status: int,
                                     error: str | None) -> None:
    outside = sorted(p.name for p in models_dir.parent.iterdir())
    manifests = sorted(str(p) for p in (models_dir / "manifests").rglob("*"))
    r = httpx.post(server.url + "/api/create", json={**body, "stream": False})
    assert r.status_code == status, r.text
    if error is not None:
        assert r.json() == {"error": error}
    else:
        assert r.json()["error"].startswith("template error: ")
    assert sorted(p.name for p in models_dir.parent.iterdir()) == outside
    assert sorted(str(p) for p in (models_dir / "manifests").rglob("*")) == manifests


def test_create_missing_blob_and_non_gguf(server: CorralServer) -> None:
    r = httpx.post(server.url + "/api/create", json={"model": "t-x", "stream": False,
                                                      "files": {"w.gguf": "sha256:" + "1" * 64}})
    assert r.status_code == 400 and "not found" in r.json()["error"]
    data = b"definitely not a gguf file"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=data).status_code == 201
    lines = httpx.post(server.url + "/api/create", json={"model": "t-x", "files": {"w.gguf": digest}}).text
    assert json.loads(lines.splitlines()[-1]) == {"error": "supplied file was not in GGUF format"}


def test_copy_and_delete_refuse_bad_names(server: CorralServer) -> None:
    r = httpx.post(server.url + "/api/copy", json={"source": BASE, "destination": "../../x"})
    assert r.status_code == 400 and r.json() == {"error": 'destination "../../x" is invalid'}
    r = httpx.post(server.url + "/api/copy", json={"source": "a/b/c/d", "destination": "x"})
    assert r.status_code == 400 and r.json() == {"error": 'source "a/b/c/d" is invalid'}
    r = httpx.request("DELETE", server.url + "/api/delete", json={"model": "../x"})
    assert r.status_code == 400 and r.json() == {"error": 'name "../x" is invalid'}
    r = httpx.request("DELETE", server.url + "/api/delete", json={"model": "never-there"})
    assert r.status_code == 404 and r.json() == {"error": "model 'never-there' not found"}


def test_stop_parameter_acts(server: CorralServer) -> None:
    # "e" comes early in any English sentence: with it as a stop word the answer ends before its first "e".
    name = unique("t-stop")
    done = create_from_modelfile(server, name, f"FROM {BASE}\nPARAMETER stop e\nPARAMETER temperature 0\n"
                                                "PARAMETER num_predict 64\n")
    assert done.status == "success"
    c = client(server)
    ask = [{"role": "user", "content": "Describe the weather today in one sentence."}]
    stopped = c.chat(model=name, messages=ask)
    assert stopped.done_reason == "stop" and "e" not in stopped.message.content
    assert stopped.eval_count is not None and stopped.eval_count < 64
    free = c.chat(model=BASE, messages=ask, options={"temperature": 0, "num_predict": 64})
    assert "e" in free.message.content  # the same answer without the parameter does hold an "e"
    assert c.delete(name).status == "success"


def test_info_overrides_config(server: CorralServer, models_dir: Path) -> None:
    name = unique("t-info")
    info = {"model_family": "fam", "quantization_level": "MYQ", "parameter_size": "1B", "base_name": "bn",
            "context_length": 1234, "embedding_length": 99, "capabilities": ["completion", "tools"]}
    r = httpx.post(server.url + "/api/create", json={"model": name, "from": BASE, "info": info, "stream": False})
    assert r.status_code == 200, r.text
    config = Store(models_dir).get(name).config
    assert (config["model_family"], config["model_families"]) == ("fam", ["fam", "llama"])
    assert (config["file_type"], config["model_type"], config["base_name"]) == ("MYQ", "1B", "bn")
    assert (config["context_length"], config["embedding_length"]) == (1234, 99)
    assert config["capabilities"] == ["completion", "tools"]
    details = next(m.details for m in client(server).list().models if m.model == f"{name}:latest")
    assert details is not None and (details.family, details.quantization_level) == ("fam", "MYQ")


def test_files_never_come_from_outside_the_store(server: CorralServer, models_dir: Path) -> None:
    outside = models_dir.parent / f"outside-{uuid.uuid4().hex[:8]}.gguf"
    outside.write_bytes(b"GGUF bytes that live outside the store")
    digest = "sha256:" + hashlib.sha256(outside.read_bytes()).hexdigest()
    for files in ({outside.name: digest}, {f"../{outside.name}": digest}, {str(outside): digest}):
        r = httpx.post(server.url + "/api/create", json={"model": "t-outside", "files": files, "stream": False})
        assert r.status_code == 400, r.text
    # only blobs are ever read: the file's own name is no way in, even with the right digest
    r = httpx.post(server.url + "/api/create", json={"model": "t-outside", "files": {outside.name: digest},
                                                      "stream": False})
    assert r.json()["error"].startswith(f"blob {digest} not found")
    assert not Store(models_dir).blobs.exists(digest) and Store(models_dir).resolve("t-outside") is None
    for bad in ("../x", "x/../../y", "t x", "/abs", "a:b:c"):
        r = httpx.post(server.url + "/api/copy", json={"source": BASE, "destination": bad})
        assert r.status_code == 400 and r.json() == {"error": f'destination "{bad}" is invalid'}
    assert sorted(p.name for p in models_dir.parent.iterdir() if p.name.startswith("x")) == []


def test_show_modelfile_parses_back_into_the_same_model(server: CorralServer) -> None:
    name = unique("t-roundtrip")
    text = MODELFILE + 'LICENSE """two\nlines with "quotes\\""""\nMESSAGE user " padded "\n'
    assert create_from_modelfile(server, name, text).status == "success"
    shown = httpx.post(server.url + "/api/show", json={"model": name}).json()
    assert shown["modelfile"].startswith(f'# Modelfile generated by "ollama show"\n# To build a new Modelfile '
                                         f"based on this, replace FROM with:\n# FROM {name}:latest\n\nFROM /")
    again = parse(shown["modelfile"]).create_fields("/")
    original = parse(text).create_fields(".")
    for key in ("system", "template", "parameters", "messages"):
        assert again[key] == original[key], key
    assert again["license"][-1] == 'two\nlines with "quotes\\"'
    assert list(again["files"]) == [shown["modelfile"].splitlines()[4].removeprefix("FROM ")]
