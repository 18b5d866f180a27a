"""Where a model name lives on the network: ``scheme://host/v2/<namespace>/<model>/...``.

A name keeps its host in the store (``registry.ollama.ai/library/llama3.2/latest``) whatever
registry actually serves it: ``CORRAL_REGISTRY`` only changes where requests for the default host
go, so a site without internet pulls ``llama3.2`` from its own registry and still calls it
``llama3.2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from corral.registry.errors import InsecureProtocol, RegistryError
from corral.store.names import DEFAULT_HOST, ModelName

__all__ = ["Endpoint", "parse_registry", "resolve"]


def parse_registry(value: str) -> tuple[str, str | None]:
    """``CORRAL_REGISTRY`` as (host[:port], scheme or None): ``host``, ``host:5000``, ``http://host:5000/``."""
    v = value.strip().strip("\"'").strip()
    scheme: str | None = None
    if "://" in v:
        scheme, _, v = v.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"CORRAL_REGISTRY: unsupported scheme {scheme!r}")
    host = v.split("/", 1)[0]
    if not host:
        raise ValueError("CORRAL_REGISTRY: no host")
    return host, scheme


@dataclass(frozen=True)
class Endpoint:
    """One repository on one registry."""

    scheme: str
    host: str
    repository: str
    """``namespace/model``"""
    tag: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, *parts: str) -> str:
        return f"{self.base_url}/v2/{self.repository}/" + "/".join(quote(p, safe=":@") for p in parts)

    def manifest_url(self, reference: str | None = None) -> str:
        return self.url("manifests", reference or self.tag)

    def blob_url(self, digest: str) -> str:
        return self.url("blobs", digest)

    def uploads_url(self) -> str:
        return self.url("blobs", "uploads") + "/"


def resolve(name: ModelName, *, insecure: bool = False, default_registry: str = "") -> Endpoint:
    """The endpoint for ``name``, applying ``CORRAL_REGISTRY`` and Ollama's ``insecure`` rules.

    An ``http://`` name needs ``insecure`` (Ollama's ``errInsecureProtocol``); ``insecure`` also
    turns https into http.  A ``CORRAL_REGISTRY`` written with ``http://`` was chosen by the
    administrator, so it needs no ``insecure`` from each client.
    """
    scheme, host = name.scheme, name.host
    explicit_http = False
    if default_registry and host.lower() == DEFAULT_HOST:
        try:
            host, chosen = parse_registry(default_registry)
        except ValueError as e:
            raise RegistryError(str(e)) from None
        scheme = chosen or "https"
        explicit_http = chosen == "http"
    if scheme == "http" and not insecure and not explicit_http:
        raise InsecureProtocol()
    if insecure:
        scheme = "http"
    return Endpoint(scheme=scheme, host=host, repository=name.repository, tag=name.tag)
