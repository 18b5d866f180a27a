"""A real OCI registry for the tests, and the things around it that break or guard it.

- :class:`DockerRegistry`: Debian's ``docker-registry`` (distribution 2.8) on a free loopback port
  with a temporary config, storage and access log; ``registry`` is the plain session-scoped one.
- :class:`FaultProxy`: a TCP proxy that counts the bytes it passes and can drop every connection
  after N bytes (and refuse new ones until healed), or slow them down.
- :class:`TokenService`: the token service a registry in ``auth: token`` mode trusts.  It signs JWTs
  with a self-signed certificate in the registry's root bundle; it grants tokens for HTTP basic
  credentials or for Ollama's ed25519 signature, which it verifies.  Given a backend it also proxies
  ``/v2/`` to it, so the token realm and the registry share one host, as Ollama requires before it
  signs.

Under ``CI=true`` a missing ``docker-registry`` fails the tests; elsewhere they are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from corral.store.manifest import MEDIA_TYPE_MODEL, MEDIA_TYPE_PARAMS, MEDIA_TYPE_TEMPLATE, ConfigV2, Layer, Manifest
from corral.store.models import LocalModel, Store
from tests.conftest import in_ci
from tests.servers import CorralServer, free_port, shut_down, wait_until

SERVICE = "corral-test-registry"
ISSUER = "corral-test-issuer"


def require_registry_binary() -> str:
    found = shutil.which("docker-registry")
    if found is None:
        message = "docker-registry is not installed (apt-get install docker-registry)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


# --- the registry ---------------------------------------------------------------------------------


@dataclass
class DockerRegistry:
    root: Path
    auth: dict[str, Any] | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def storage(self) -> Path:
        return self.root / "data" / "docker" / "registry" / "v2"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def start(self, port: int | None = None) -> DockerRegistry:
        binary = require_registry_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.auth:
            config["auth"] = self.auth
        path = self.root / "config.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([binary, "serve", str(path)], stdout=log, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited: {self.log_path.read_text()}")
            try:
                return httpx.get(self.url + "/v2/", timeout=1).status_code in (200, 401)
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=20, what="docker-registry to answer")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def blob_data(self, digest: str) -> Path:
        hex_ = digest.split(":", 1)[1]
        return self.storage / "blobs" / "sha256" / hex_[:2] / hex_ / "data"

    def seed_blob(self, repository: str, src: Path, digest: str) -> None:
        """Put a blob into the registry's storage by hard link (no copy), linked into ``repository``."""
        data = self.blob_data(digest)
        data.parent.mkdir(parents=True, exist_ok=True)
        if not data.exists():
            os.link(src, data)
        link = self.storage / "repositories" / repository / "_layers" / "sha256" / digest.split(":", 1)[1] / "link"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(digest)

    def access_log(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the registry served, in order."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = re.search(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3})', line)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    def manifest(self, repository: str, tag: str) -> httpx.Response:
        return httpx.get(f"{self.url}/v2/{repository}/manifests/{tag}",
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    reg = DockerRegistry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


# --- a proxy that breaks things ---------------------------------------------------------------------


class FaultProxy:
    """TCP proxy to ``127.0.0.1:target_port`` that counts downstream bytes and can cut them off."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.down_bytes = 0
        self.cut_after: int | None = None
        self.broken = False
        self.rate: float | None = None  # bytes per second, downstream
        self._conns: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arm(self, cut_after: int) -> None:
        """Drop every connection once ``cut_after`` more bytes went down, then refuse new ones."""
        with self._lock:
            self.down_bytes = 0
            self.cut_after = cut_after
            self.broken = False

    def heal(self) -> None:
        with self._lock:
            self.cut_after = None
            self.broken = False
            self.down_bytes = 0

    def live(self) -> int:
        """Sockets of connections still open (two per connection)."""
        with self._lock:
            return len(self._conns)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self._break()

    def _break(self) -> None:
        with self._lock:
            self.broken = True
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.broken:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if down:
                    with self._lock:
                        if self.cut_after is not None and self.down_bytes + len(data) >= self.cut_after:
                            data = data[: max(0, self.cut_after - self.down_bytes)]
                            cut = True
                        else:
                            cut = False
                        self.down_bytes += len(data)
                    if data:
                        dst.sendall(data)
                    if cut:
                        self._break()
                        return
                    if self.rate:
                        time.sleep(len(data) / self.rate)
                else:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            shut_down(src, dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)


# --- a token service ------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    """Issues registry tokens for basic credentials (``users``) or a verified ed25519 signature."""

    root: Path
    users: dict[str, str] = field(default_factory=dict)
    accept_signatures: bool = False
    backend: str | None = None
    """``host:port`` of a registry to proxy everything but ``/token`` to."""
    redirect_blobs: str | None = None
    """A base URL: blob GETs are answered ``307`` to it (as registries that keep blobs on a CDN do)."""
    redirected: int = 0
    port: int = 0
    signed_keys: list[str] = field(default_factory=list)
    """Public key blobs (base64) whose signature was verified, in order."""
    refused: list[str] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.root.mkdir(parents=True, exist_ok=True)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = time.time()
        import datetime as dt

        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(dt.datetime.fromtimestamp(now - 86400, dt.timezone.utc))
                .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.timezone.utc))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self._key, hashes.SHA256()))
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = self.root / "token-ca.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def registry_auth(self) -> dict[str, Any]:
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                          "rootcertbundle": str(self.bundle)}}

    def token(self, subject: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 600, "nbf": now - 60, "iat": now - 60,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def check_signature(self, authorization: str, url: str, query: dict[str, str]) -> str | None:
        """The verified public key blob, or None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        blob_b64, sep, sig_b64 = authorization.partition(":")
        if not sep:
            return None
        try:
            blob = base64.b64decode(blob_b64)
            kind_len = int.from_bytes(blob[:4], "big")
            kind = blob[4:4 + kind_len]
            key_len = int.from_bytes(blob[4 + kind_len:8 + kind_len], "big")
            raw = blob[8 + kind_len:8 + kind_len + key_len]
            if kind != b"ssh-ed25519" or len(raw) != 32:
                return None
            if abs(int(query.get("ts", "0")) - time.time()) > 300 or not query.get("nonce"):
                return None
            body_hash = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()
            Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig_b64),
                                                           f"GET,{url},{body_hash}".encode())
        except (ValueError, InvalidSignature):
            return None
        return blob_b64

    def start(self) -> TokenService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _token(self) -> None:
                parts = urlsplit(self.path)
                pairs = parse_qsl(parts.query, keep_blank_values=True)
                query = dict(pairs)
                scopes = [v for k, v in pairs if k == "scope"]
                auth = self.headers.get("Authorization", "")
                subject = None
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if service.users.get(user) == password and user:
                        subject = user
                elif auth and service.accept_signatures:
                    url = f"http://{self.headers.get('Host')}{self.path}"
                    key = service.check_signature(auth, url, query)
                    if key is not None:
                        service.signed_keys.append(key)
                        subject = "ed25519:" + key[:16]
                if subject is None:
                    service.refused.append(auth.split(" ", 1)[0] if auth else "(none)")
                    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "access denied"}]}).encode()
                    self._send(401, body, {"Content-Type": "application/json"})
                    return
                body = json.dumps({"token": service.token(subject, scopes)}).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def _forward(self) -> None:
                assert service.backend is not None
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(service.backend, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            def _handle(self) -> None:
                path = urlsplit(self.path).path
                if path == "/token":
                    self._token()
                elif service.redirect_blobs and self.command == "GET" and re.search(r"/blobs/sha256:", path):
                    service.redirected += 1
                    self._send(307, b"", {"Location": service.redirect_blobs + self.path})
                elif service.backend:
                    self._forward()
                else:
                    self._send(404, b"not found")

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def htpasswd_auth(root: Path, users: dict[str, str]) -> dict[str, Any]:
    """``auth: htpasswd`` for a registry config, with bcrypt hashes (the only kind distribution reads)."""
    import bcrypt

    path = root / "htpasswd"
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                            for u, p in users.items()))
    return {"htpasswd": {"realm": "corral-test", "path": str(path)}}


# --- models -----------------------------------------------------------------------------------------


def tiny_model(store: Store, name: str, *, size: int = 256 * 1024, seed: str = "x",
               params: dict[str, Any] | None = None) -> LocalModel:
    """A model of made-up bytes (not loadable, for transfer tests): weights, template, params, config."""
    weights = hashlib.shake_256(seed.encode()).digest(size)
    w_digest, w_size = store.blobs.put_bytes(weights)
    t_digest, t_size = store.blobs.put_bytes(b"{{ .Prompt }}")
    p_digest, p_size = store.blobs.put_bytes(json.dumps(params or {"temperature": 0.5}).encode())
    config = ConfigV2(model_format="gguf", model_family="test", model_families=["test"], model_type="1K",
                      file_type="F32", diff_ids=[w_digest, t_digest, p_digest])
    c_digest, c_size = store.blobs.put_bytes(config.to_bytes())
    manifest = Manifest(config=Layer("application/vnd.docker.container.image.v1+json", c_digest, c_size),
                        layers=(Layer(MEDIA_TYPE_MODEL, w_digest, w_size), Layer(MEDIA_TYPE_TEMPLATE, t_digest, t_size),
                                Layer(MEDIA_TYPE_PARAMS, p_digest, p_size)))
    return store.write_manifest(name, manifest)


# --- a corral server whose default registry is the test registry ---------------------------------


@pytest.fixture(scope="session")
def mirror_server(registry: DockerRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    """``corral serve`` with ``CORRAL_REGISTRY`` at the test registry and an empty store (an air-gapped site)."""
    srv = start_mirror(registry, tmp_path_factory.mktemp("mirror"))
    yield srv
    srv.stop()


def start_mirror(registry: DockerRegistry, root: Path) -> CorralServer:
    """Start ``corral serve`` on an empty store under ``root``, its default registry the test registry, with
    a home of its own (no developer credentials)."""
    (root / "models").mkdir()
    home = root / "home"
    home.mkdir()
    return CorralServer(models=root / "models", env={
        "CORRAL_REGISTRY": registry.url, "HOME": str(home),
        "CORRAL_REGISTRY_AUTH_FILE": str(home / "no-credentials.json")}).start()


@pytest.fixture(scope="session")
def mirror_llama(server: CorralServer, registry: DockerRegistry) -> str:
    """The test registry holds ``library/llama3.2`` (pushed by the session server); its manifest digest."""
    target = f"{registry.host}/library/llama3.2:latest"
    assert httpx.post(server.url + "/api/copy", json={"source": "llama3.2", "destination": target}).status_code == 200
    r = httpx.post(server.url + "/api/push", json={"model": target, "insecure": True, "stream": False}, timeout=300)
    assert r.status_code == 200 and r.json() == {"status": "success"}, r.text
    assert httpx.request("DELETE", server.url + "/api/delete", json={"model": target}).status_code == 200
    served = registry.manifest("library/llama3.2", "latest")
    assert served.status_code == 200
    return hashlib.sha256(served.content).hexdigest()
