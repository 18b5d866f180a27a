"""Model names: ``[scheme://][host/][namespace/]model[:tag]``, as Ollama parses them.

A name maps one to one onto a manifest path (``manifests/<host>/<namespace>/<model>/<tag>``), so
the rules below are also what keeps a name from writing outside the store: no part may be empty,
start with a dot, hold two dots in a row, or contain a separator, and there are always exactly three
path levels above the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from corral.store.errors import InvalidModelName

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_SCHEME",
    "DEFAULT_TAG",
    "ModelName",
]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

_MAX_PART = 80
_MAX_HOST = 350

# First character [A-Za-z0-9_]; then word characters and '-', plus '.' everywhere but the
# namespace and ':' (a port) only in the host.
_PART_RE = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*"),
    "namespace": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*"),
}


def _check_part(kind: str, value: str, original: str) -> None:
    limit = _MAX_HOST if kind == "host" else _MAX_PART
    if not value:
        raise InvalidModelName(original, f"invalid model name: empty {kind}")
    if len(value) > limit:
        raise InvalidModelName(original, f"invalid model name: {kind} longer than {limit} characters")
    if not _PART_RE[kind].fullmatch(value):
        raise InvalidModelName(original, f"invalid model name: bad characters in {kind}")
    # ".." can never be a whole part (the first character is not a dot), but refusing it anywhere
    # also matches Ollama's parser and keeps odd names like "a..b" out of the store.
    if ".." in value:
        raise InvalidModelName(original, f"invalid model name: '..' in {kind}")


@dataclass(frozen=True)
class ModelName:
    """A fully qualified model name.  Case is kept; compare with :meth:`equal_fold`."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = DEFAULT_SCHEME

    @classmethod
    def parse(cls, name: str) -> ModelName:
        """Parse right to left, filling defaults; raise :class:`InvalidModelName`."""
        if not isinstance(name, str):
            raise InvalidModelName(repr(name), "invalid model name: not a string")
        original = name
        scheme = DEFAULT_SCHEME
        if "://" in name:
            scheme, _, name = name.partition("://")
            if scheme not in ("http", "https"):
                raise InvalidModelName(original, "invalid model name: unsupported scheme")

        tag = DEFAULT_TAG
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not tag:
                raise InvalidModelName(original, "invalid model name: empty tag")

        parts = name.split("/")
        if len(parts) == 1:
            host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
        elif len(parts) == 2:
            host, (namespace, model) = DEFAULT_HOST, parts
        elif len(parts) == 3:
            host, namespace, model = parts
        else:
            raise InvalidModelName(original, "invalid model name: too many path parts")
        return cls.from_parts(host, namespace, model, tag, scheme=scheme, original=original)

    @classmethod
    def from_parts(
        cls,
        host: str,
        namespace: str,
        model: str,
        tag: str,
        *,
        scheme: str = DEFAULT_SCHEME,
        original: str | None = None,
    ) -> ModelName:
        """Build a name from its parts (e.g. from a manifest path), validating each one."""
        shown = original if original is not None else f"{host}/{namespace}/{model}:{tag}"
        for kind, value in (("host", host), ("namespace", namespace), ("model", model), ("tag", tag)):
            _check_part(kind, value, shown)
        return cls(host=host, namespace=namespace, model=model, tag=tag, scheme=scheme)

    @classmethod
    def is_valid(cls, name: str) -> bool:
        try:
            cls.parse(name)
        except InvalidModelName:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def display_shortest(self) -> str:
        """Drop the default host, then the ``library`` namespace; the tag is always shown.

        Like Ollama's mask, dropping stops at the first part that differs: a name on another host
        keeps its namespace even when that namespace is ``library``.
        """
        if self.host.lower() != DEFAULT_HOST:
            return str(self)
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def filepath_parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)

    def manifest_path(self, root: str | Path) -> Path:
        """``root/manifests/<host>/<namespace>/<model>/<tag>`` (``root`` is ``OLLAMA_MODELS``)."""
        return Path(root, "manifests", *self.filepath_parts())

    def fold_key(self) -> tuple[str, str, str, str]:
        """A case-insensitive identity, for dictionaries and comparisons."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    def equal_fold(self, other: ModelName) -> bool:
        return self.fold_key() == other.fold_key()

    @property
    def repository(self) -> str:
        """``namespace/model``, the repository path on the registry."""
        return f"{self.namespace}/{self.model}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"
