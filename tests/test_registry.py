"""Pull and push against a real OCI registry (Debian's docker-registry on loopback).

The registry package is driven in-process for the transfer mechanics (ranged parts, resume, shared
downloads, digests, auth), with made-up blobs of a few MB; the server, the SDK and the CLI are driven
over real sockets with the bundled model for the user-visible paths (push, pull, run).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.registry import (
    InsecureProtocol,
    Progress,
    RegistryError,
    RegistryOptions,
    Unauthorized,
    pull_model,
    push_model,
    resolve,
)
from corral.registry.auth import find_credentials, parse_challenge
from corral.registry.download import part_sizes
from corral.registry.errors import describe_errors
from corral.registry.identity import Identity
from corral.store.blobs import hash_file
from corral.store.manifest import MEDIA_TYPE_PARAMS
from corral.store.models import LocalModel, Store
from corral.store.names import ModelName
from tests import registry_fixture
from tests.registry_fixture import DockerRegistry, FaultProxy, TokenService, htpasswd_auth, tiny_model
from tests.servers import free_port

# Session fixtures shared with test_tutorial.py.
registry = registry_fixture.registry
mirror_server = registry_fixture.mirror_server
mirror_llama = registry_fixture.mirror_llama

MB = 1000 * 1000


@pytest.fixture(autouse=True)
def _no_user_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's ~/.docker/config.json or environment must never leak into these tests.
    monkeypatch.setenv("CORRAL_REGISTRY_AUTH_FILE", str(tmp_path / "no-credentials.json"))
    monkeypatch.delenv("CORRAL_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("CORRAL_REGISTRY_PASSWORD", raising=False)


def options(tmp_path: Path, **kw: Any) -> RegistryOptions:
    return RegistryOptions(key_path=tmp_path / "home" / ".ollama" / "id_ed25519", retry_delay=0.05, **kw)


class Events(list[Progress]):
    def statuses(self) -> list[str]:
        return [e.status for e in self if not e.digest]

    def of(self, digest: str) -> list[Progress]:
        return [e for e in self if e.digest == digest]


def push(store: Store, model: LocalModel, opts: RegistryOptions, **kw: Any) -> Events:
    events = Events()
    asyncio.run(push_model(store, model, options=opts, progress=events.append, insecure=True, **kw))
    return events


def pull(store: Store, name: str, opts: RegistryOptions, **kw: Any) -> tuple[LocalModel, Events]:
    events = Events()
    model = asyncio.run(pull_model(store, ModelName.parse(name), options=opts, progress=events.append,
                                   insecure=True, **kw))
    return model, events


def blob_files(store: Store) -> list[str]:
    return sorted(p.name for p in store.blobs.root.iterdir())


# --- names, challenges, error texts ---------------------------------------------------------------


def test_names_resolve_to_registry_urls() -> None:
    e = resolve(ModelName.parse("llama3.2"))
    assert e.manifest_url() == "https://registry.ollama.ai/v2/library/llama3.2/manifests/latest"
    e = resolve(ModelName.parse("me/m:q4"), default_registry="http://mirror.local:5000")
    assert e.manifest_url() == "http://mirror.local:5000/v2/me/m/manifests/q4"  # http chosen by the admin
    e = resolve(ModelName.parse("llama3.2"), default_registry="mirror.local")
    assert e.base_url == "https://mirror.local"
    e = resolve(ModelName.parse("127.0.0.1:5000/ns/m"), insecure=True, default_registry="mirror.local")
    assert e.blob_url("sha256:" + "a" * 64) == f"http://127.0.0.1:5000/v2/ns/m/blobs/sha256:{'a' * 64}"
    with pytest.raises(InsecureProtocol, match=r"^insecure protocol http$"):
        resolve(ModelName.parse("http://127.0.0.1:5000/ns/m"))


def test_challenges_and_registry_errors_parse() -> None:
    c = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull,push"}
    basic = parse_challenge('Basic realm="corral-test"')
    assert basic is not None and basic.scheme == "basic" and basic.realm == "corral-test"
    body = json.dumps({"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry",
                                   "detail": "sha256:abc"}]}).encode()
    assert describe_errors(400, body) == "manifest blob unknown: blob unknown to registry (sha256:abc)"
    assert describe_errors(502, b"bad gateway") == "502: bad gateway"


def test_parts_follow_ollamas_sizes() -> None:
    opts = RegistryOptions()
    assert part_sizes(98 * MB, opts) == [(0, 98 * MB)]  # one part under 100 MB
    parts = part_sizes(4000 * MB, opts)
    assert len(parts) == 16 and sum(s for _, s in parts) == 4000 * MB
    parts = part_sizes(10_000_001, RegistryOptions(min_part_size=MB))
    assert [o for o, _ in parts] == list(range(0, 10_000_001, MB)) and parts[-1][1] == 1


def test_credentials_come_from_request_env_or_file(tmp_path: Path) -> None:
    auth_file = tmp_path / "config.json"
    auth_file.write_text(json.dumps({"auths": {
        "reg.example:5000": {"auth": base64.b64encode(b"fileuser:filepw").decode()},
        "https://other.example/v1/": {"username": "u2", "password": "p2"}}}))
    env = {"CORRAL_REGISTRY_USERNAME": "envuser", "CORRAL_REGISTRY_PASSWORD": "envpw"}

    def find(host: str, **kw: Any) -> tuple[str, str] | None:
        c = find_credentials(host, default_host="mirror.example", env=env, auth_file=auth_file, **kw)
        return None if c is None else (c.username, c.password)

    assert find("reg.example:5000") == ("fileuser", "filepw")
    assert find("other.example") == ("u2", "p2")
    assert find("mirror.example") == ("envuser", "envpw")  # the environment speaks for the default registry only
    assert find("elsewhere.example") is None
    assert find("reg.example:5000", username="a", password="b") == ("a", "b")
    found = find_credentials("reg.example:5000", default_host="x", env={}, auth_file=auth_file)
    assert found is not None and "filepw" not in repr(found)


def test_identity_key_is_created_once_in_openssh_format(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = tmp_path / ".ollama" / "id_ed25519"
    identity = Identity(path)
    header = identity.authorization(b"GET,http://x/token?a=b,e3b0")
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert path.stat().st_mode & 0o777 == 0o600
    public = path.with_name("id_ed25519.pub").read_text().split()
    blob_b64, sig_b64 = header.split(":")
    assert public[0] == "ssh-ed25519" and public[1] == blob_b64
    raw = base64.b64decode(blob_b64)[-32:]
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig_b64), b"GET,http://x/token?a=b,e3b0")
    assert Identity(path).public_key().split()[1] == blob_b64  # loaded, not replaced


# --- transfers against the real registry ----------------------------------------------------------


def test_push_then_pull_is_byte_identical_in_ranged_parts_and_chunked_uploads(
        registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path, min_part_size=256 * 1024, upload_chunk_size=MB)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    name = f"{registry.host}/library/roundtrip:v1"
    model = tiny_model(a, name, size=3 * MB + 5, seed="roundtrip")
    weights = model.manifest.layers[0]

    log_start = len(registry.access_log())
    pushed = push(a, model, opts)
    assert pushed.statuses() == ["retrieving manifest", "pushing manifest", "success"]
    w_events = pushed.of(weights.digest)
    assert w_events[0].status == f"pushing {weights.digest[7:19]}" and w_events[-1].completed == weights.size
    requests = registry.access_log()[log_start:]
    patches = [r for r in requests if r[0] == "PATCH"]
    assert len([r for r in patches if r[2] == 202]) == 4 + 3  # 4 chunks of weights, 1 each for the rest
    assert ("PUT", "/v2/library/roundtrip/manifests/v1", 201) in requests
    served = registry.manifest("library/roundtrip", "v1")
    assert served.content == model.manifest_path.read_bytes()  # the store's bytes, unchanged

    log_start = len(registry.access_log())
    pulled, events = pull(b, name, opts)
    assert events.statuses() == ["pulling manifest", "verifying sha256 digest", "writing manifest", "success"]
    assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()
    for layer in (*model.manifest.layers, model.manifest.config):
        assert hash_file(b.blobs.path(layer.digest)) == (layer.digest, layer.size)
    ranged = [r for r in registry.access_log()[log_start:] if r[0] == "GET" and weights.digest in r[1]]
    assert len(ranged) == 12 and all(r[2] == 206 for r in ranged)  # 3 MB in 256 KiB ranges
    assert blob_files(b) == sorted(b.blobs.path(d).name for d in model.manifest.digests())  # no leftovers
    accepted = [e for e in events.of(weights.digest)]
    assert accepted[-1].completed == accepted[-1].total == weights.size


def test_blobs_served_by_redirect_are_followed(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path, min_part_size=256 * 1024)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{registry.host}/library/redirected:latest", size=MB, seed="redirect")
    push(a, model, opts)
    # A front that proxies the registry but sends every blob GET to "storage" on another origin.
    front = TokenService(tmp_path / "front", backend=registry.host,
                         redirect_blobs=f"http://localhost:{registry.port}").start()
    try:
        pulled, _ = pull(b, f"127.0.0.1:{front.port}/library/redirected:latest", opts)
    finally:
        front.stop()
    assert front.redirected == 4 + 3  # four ranged parts of the weights, then the three small blobs
    assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()
    for layer in (*model.manifest.layers, model.manifest.config):
        assert hash_file(b.blobs.path(layer.digest)) == (layer.digest, layer.size)


def test_pull_of_a_present_model_downloads_nothing(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path)
    a = Store(tmp_path / "a")
    model = tiny_model(a, f"{registry.host}/library/present:latest", seed="present")
    push(a, model, opts)
    start = len(registry.access_log())
    _, events = pull(a, str(model.name), opts)
    gets = [r for r in registry.access_log()[start:] if "/blobs/" in r[1]]
    assert gets == []
    assert all(e.completed == e.total for e in events if e.digest)


def test_copy_to_a_second_repository_mounts_instead_of_uploading(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path)
    store = Store(tmp_path / "a")
    model = tiny_model(store, f"{registry.host}/team/mountme:latest", size=MB, seed="mount")
    push(store, model, opts)
    copy = store.copy(model.name, ModelName.parse(f"{registry.host}/other/mountme:latest"))
    start = len(registry.access_log())
    events = push(store, copy, opts)
    requests = registry.access_log()[start:]
    mounts = [r for r in requests if r[0] == "POST" and "mount=" in r[1]]
    assert len(mounts) == 4 and all(r[2] == 201 and "from=team%2Fmountme" in r[1] for r in mounts)
    assert not [r for r in requests if r[0] in ("PATCH",)]
    assert events.statuses()[-1] == "success"
    assert registry.manifest("other/mountme", "latest").content == model.manifest_path.read_bytes()


def test_interrupted_pull_resumes_with_less_transferred(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path, min_part_size=MB, max_parallel_parts=2, retries=1)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{registry.host}/library/resumable:latest", size=6 * MB, seed="resume")
    push(a, model, opts)
    weights = model.manifest.layers[0]
    proxy = FaultProxy(registry.port)
    try:
        name = f"{proxy.host}/library/resumable:latest"
        proxy.arm(cut_after=2 * MB + 12345)  # mid-part: the connection drops, then the "network" is down
        with pytest.raises(RegistryError, match="download of") as failed:
            pull(b, name, opts)
        assert "failed" in str(failed.value)
        final = b.blobs.path(weights.digest)
        partial = final.with_name(final.name + "-partial")
        assert not final.exists() and partial.stat().st_size == weights.size
        states = [json.loads(final.with_name(f"{final.name}-partial-{n}").read_text()) for n in range(6)]
        assert [s["Offset"] for s in states] == [n * MB for n in range(6)]
        done_before = sum(s["Completed"] for s in states)
        assert 0 < done_before < weights.size
        assert ModelName.parse(name).manifest_path(b.root).exists() is False

        proxy.heal()
        pulled, events = pull(b, name, opts)
        assert proxy.down_bytes < weights.size  # only the rest came down (plus headers and small blobs)
        first = events.of(weights.digest)[0]
        assert first.completed >= done_before  # progress picks up where the first pull stopped
        assert hash_file(final) == (weights.digest, weights.size)
        assert blob_files(b) == sorted(b.blobs.path(d).name for d in model.manifest.digests())
        assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()
    finally:
        proxy.close()


def test_corrupted_blob_in_the_registry_fails_the_pull_and_leaves_nothing(
        registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path, min_part_size=256 * 1024)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{registry.host}/library/corrupt:latest", size=MB, seed="corrupt")
    push(a, model, opts)
    weights = model.manifest.layers[0]
    data = registry.blob_data(weights.digest)  # the registry's own file (uploaded, not a link)
    assert data.stat().st_nlink == 1
    raw = bytearray(data.read_bytes())
    raw[1000:1010] = b"corrupted!"
    data.write_bytes(bytes(raw))
    got = "sha256:" + hashlib.sha256(raw).hexdigest()

    with pytest.raises(RegistryError) as failed:
        pull(b, str(model.name), opts)
    assert str(failed.value) == f"digest mismatch, file must be downloaded again: want {weights.digest}, got {got}"
    assert not any(weights.digest[7:] in name for name in blob_files(b))  # no blob, no partial data
    assert not model.name.manifest_path(b.root).exists()


def test_concurrent_pulls_of_one_model_share_one_download(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{registry.host}/library/shared:latest", size=2 * MB, seed="shared")
    push(a, model, opts)
    weights = model.manifest.layers[0]
    proxy = FaultProxy(registry.port)
    proxy.rate = 2 * MB  # bytes per second: the download lasts long enough for the second pull to join
    name = ModelName.parse(f"{proxy.host}/library/shared:latest")
    first, second = Events(), Events()

    async def both() -> None:
        await asyncio.gather(
            pull_model(b, name, options=opts, progress=first.append, insecure=True),
            pull_model(b, name, options=opts, progress=second.append, insecure=True))

    try:
        asyncio.run(both())
    finally:
        proxy.close()
    assert proxy.down_bytes < 1.5 * weights.size
    for events in (first, second):
        seen = events.of(weights.digest)
        assert seen[-1].completed == weights.size
        assert any(0 < e.completed < weights.size for e in seen)  # each watched the one download move
        assert events.statuses()[-1] == "success"
    assert hash_file(b.blobs.path(weights.digest)) == (weights.digest, weights.size)


def test_pull_over_an_older_version_prunes_its_unused_layers(registry: DockerRegistry, tmp_path: Path) -> None:
    opts = options(tmp_path)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    name = f"{registry.host}/library/evolving:latest"
    v1 = tiny_model(a, name, seed="evolving", params={"temperature": 0.1})
    push(a, v1, opts)
    pull(b, name, opts)
    old_params = v1.manifest.layers_of(MEDIA_TYPE_PARAMS)[0].digest
    assert b.blobs.exists(old_params)
    v2 = tiny_model(a, name, seed="evolving", params={"temperature": 0.9})
    push(a, v2, opts)
    _, events = pull(b, name, opts)
    assert "removing unused layers" in events.statuses()
    assert not b.blobs.exists(old_params)
    assert b.blobs.exists(v2.manifest.layers[0].digest)  # the weights, shared by both versions, stay

    kept = Store(tmp_path / "c")
    pull(kept, name, opts)
    v3 = tiny_model(a, name, seed="evolving", params={"temperature": 0.3})
    push(a, v3, opts)
    _, events = pull(kept, name, options(tmp_path, noprune=True))
    assert "removing unused layers" not in events.statuses()
    assert kept.blobs.exists(v2.manifest.layers_of(MEDIA_TYPE_PARAMS)[0].digest)  # OLLAMA_NOPRUNE keeps them


def test_pull_errors_are_ollamas_and_fast(registry: DockerRegistry, tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    with pytest.raises(RegistryError, match=r"^pull model manifest: file does not exist$"):
        pull(store, f"{registry.host}/library/never-pushed:latest", options(tmp_path))
    with pytest.raises(InsecureProtocol):
        asyncio.run(pull_model(store, ModelName.parse(f"http://{registry.host}/library/x"), options=options(tmp_path),
                               progress=lambda e: None))
    dead = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(RegistryError, match=f"^pull model manifest: cannot reach registry 127.0.0.1:{dead}: "):
        pull(store, f"127.0.0.1:{dead}/library/x:latest", options(tmp_path))
    # A refused connection must not be retried for minutes (generous bound: this is not a speed test).
    assert time.monotonic() - started < 30
    model = tiny_model(store, f"127.0.0.1:{dead}/library/x:latest")
    with pytest.raises(RegistryError, match="cannot reach registry"):
        push(store, model, options(tmp_path))


# --- authentication ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    root = tmp_path_factory.mktemp("basic-registry")
    reg = DockerRegistry(root, auth=htpasswd_auth(root, {"alice": "wonderland"})).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DockerRegistry, TokenService]]:
    root = tmp_path_factory.mktemp("token-registry")
    service = TokenService(root / "issuer", users={"bob": "builder"}).start()
    reg = DockerRegistry(root / "registry", auth=service.registry_auth()).start()
    yield reg, service
    reg.stop()
    service.stop()


@pytest.fixture(scope="module")
def signed_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenService, DockerRegistry]]:
    """Token auth whose realm is on the registry's own host (Ollama signs only for those)."""
    root = tmp_path_factory.mktemp("signed-registry")
    backend = free_port()
    service = TokenService(root / "issuer", accept_signatures=True, backend=f"127.0.0.1:{backend}")
    service.start()
    reg = DockerRegistry(root / "registry", auth=service.registry_auth()).start(port=backend)
    yield service, reg
    reg.stop()
    service.stop()


def test_basic_auth_works_with_credentials_and_says_why_without(basic_registry: DockerRegistry,
                                                                tmp_path: Path) -> None:
    opts = options(tmp_path)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{basic_registry.host}/library/guarded:latest", seed="basic")
    with pytest.raises(Unauthorized) as denied:
        push(a, model, opts)
    assert str(denied.value).startswith("unauthorized: ") and f"no credentials for {basic_registry.host}" in str(
        denied.value)
    with pytest.raises(Unauthorized, match="refused the credentials from the request") as refused:
        push(a, model, opts, username="alice", password="wrong")
    assert "wrong" not in str(refused.value)
    push(a, model, opts, username="alice", password="wonderland")

    auth_file = tmp_path / "docker-config.json"
    auth_file.write_text(json.dumps({"auths": {basic_registry.host: {
        "auth": base64.b64encode(b"alice:wonderland").decode()}}}))
    pulled, _ = pull(b, str(model.name), options(tmp_path, auth_file=auth_file))
    assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()


def test_environment_credentials_serve_the_default_registry_only(basic_registry: DockerRegistry, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    a = Store(tmp_path / "a")
    model = tiny_model(a, f"{basic_registry.host}/library/envauth:latest", seed="envauth")
    push(a, model, options(tmp_path), username="alice", password="wonderland")
    monkeypatch.setenv("CORRAL_REGISTRY_USERNAME", "alice")
    monkeypatch.setenv("CORRAL_REGISTRY_PASSWORD", "wonderland")
    mirror = options(tmp_path, default_registry=f"http://{basic_registry.host}")
    pulled, _ = pull(Store(tmp_path / "b"), "envauth", mirror)  # registry.ollama.ai/library/envauth, served by it
    assert str(pulled.name) == "registry.ollama.ai/library/envauth:latest"
    with pytest.raises(Unauthorized):
        pull(Store(tmp_path / "c"), str(model.name), options(tmp_path))  # the same registry by its own name


def test_bearer_tokens_from_the_registrys_token_service(token_registry: tuple[DockerRegistry, TokenService],
                                                        tmp_path: Path) -> None:
    reg, service = token_registry
    opts = options(tmp_path)
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"{reg.host}/library/tokened:latest", size=MB, seed="token")
    with pytest.raises(Unauthorized, match=r"token request to 127\.0\.0\.1:\d+ failed") as denied:
        push(a, model, opts)
    assert "no credentials for" in str(denied.value)
    push(a, model, opts, username="bob", password="builder")
    pulled, _ = pull(b, str(model.name), opts, username="bob", password="builder")
    assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()
    assert not service.signed_keys  # the realm is on another host: no signature was offered


def test_ed25519_challenge_is_signed_and_verified(signed_registry: tuple[TokenService, DockerRegistry],
                                                  tmp_path: Path) -> None:
    service, _reg = signed_registry
    opts = options(tmp_path)
    assert not opts.key_path.exists()
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    model = tiny_model(a, f"127.0.0.1:{service.port}/library/signed:latest", seed="signed")
    push(a, model, opts)
    pulled, _ = pull(b, str(model.name), opts)
    assert pulled.manifest_path.read_bytes() == model.manifest_path.read_bytes()
    public = opts.key_path.with_name("id_ed25519.pub").read_text().split()[1]  # created on first use
    assert service.signed_keys and set(service.signed_keys) == {public}

    service.accept_signatures = False  # a registry that does not know the key
    try:
        with pytest.raises(Unauthorized, match="may not know the key"):
            pull(Store(tmp_path / "c"), str(model.name), opts)
    finally:
        service.accept_signatures = True
