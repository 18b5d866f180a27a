"""Ollama's identity key (``~/.ollama/id_ed25519``) and the signature its registry asks for.

The key is an OpenSSH ed25519 private key (``id_ed25519.pub`` beside it in ``authorized_keys``
form), made on first use, so a store shared with Ollama shares its identity too.  A token request
is signed as Ollama's ``auth.Sign`` does: the signed text is ``GET,<url>,<base64(hex(sha256("")))>``
and the ``Authorization`` header is ``<base64 public key blob>:<base64 signature>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import threading
from pathlib import Path

__all__ = ["Identity", "new_nonce", "signed_text"]

_lock = threading.Lock()


def new_nonce() -> str:
    """16 random bytes, base64url without padding (Go's ``RawURLEncoding``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def signed_text(method: str, url: str, body: bytes = b"") -> bytes:
    body_hash = hashlib.sha256(body).hexdigest().encode()
    return f"{method},{url},{base64.b64encode(body_hash).decode()}".encode()


def _write_private(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Identity:
    """The ed25519 key at ``path``; :meth:`authorization` creates it if it does not exist."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self):  # type: ignore[no-untyped-def]
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        with _lock:
            if not self.path.exists():
                key = Ed25519PrivateKey.generate()
                private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                            serialization.NoEncryption())
                public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                       serialization.PublicFormat.OpenSSH)
                # The public half first: a reader that finds the private key can trust the pair.
                _write_private(self.path.with_name(self.path.name + ".pub"), public + b"\n", 0o644)
                _write_private(self.path, private, 0o600)
                return key
            loaded = serialization.load_ssh_private_key(self.path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{self.path} is not an ed25519 key")
        return loaded

    def public_key(self) -> str:
        """``ssh-ed25519 AAAA...``, as in ``id_ed25519.pub``."""
        from cryptography.hazmat.primitives import serialization

        return self._load().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()

    def authorization(self, data: bytes) -> str:
        """``<public key blob, base64>:<signature of data, base64>``."""
        key = self._load()
        from cryptography.hazmat.primitives import serialization

        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        blob = public.split(b" ")[1].strip()
        return f"{blob.decode()}:{base64.b64encode(key.sign(data)).decode()}"
