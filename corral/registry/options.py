"""How pulls and pushes behave: one ``RegistryOptions`` per server, one ``Progress`` per event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.version import __version__

__all__ = ["MB", "Progress", "ProgressFn", "RegistryOptions", "default_key_path"]

MB = 1000 * 1000


def default_key_path() -> Path:
    """``~/.ollama/id_ed25519``, the identity Ollama signs registry challenges with."""
    return Path.home() / ".ollama" / "id_ed25519"


@dataclass(frozen=True)
class Progress:
    """One progress event: ``{status, digest?, total?, completed?}`` on the wire."""

    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0


ProgressFn = Callable[[Progress], None]


@dataclass
class RegistryOptions:
    """Settings of the registry client.

    ``default_registry`` (``CORRAL_REGISTRY``) serves every name on ``registry.ollama.ai``
    from another registry: ``host[:port]`` (https) or ``http://host[:port]``.  Part and chunk
    sizes follow Ollama: a blob is fetched in ``num_parts`` ranged parts clamped to
    [``min_part_size``, ``max_part_size``]; uploads go in ``upload_chunk_size`` PATCHes.
    """

    default_registry: str = ""
    noprune: bool = False
    key_path: Path = field(default_factory=default_key_path)
    auth_file: Path | None = None
    """Credentials in Docker's ``config.json`` format; ``None``: ``CORRAL_REGISTRY_AUTH_FILE``,
    else ``~/.ollama/registry-auth.json``, then ``~/.docker/config.json``."""
    num_parts: int = 16
    min_part_size: int = 100 * MB
    max_part_size: int = 1000 * MB
    max_parallel_parts: int = 16
    upload_chunk_size: int = 32 * 1024 * 1024
    connect_timeout: float = 10.0
    stall_timeout: float = 30.0
    """A read that brings no byte for this long counts as a failed attempt (Ollama: 30 s)."""
    retries: int = 3
    """Attempts in a row that bring no byte before a part gives up."""
    retry_delay: float = 0.5
    user_agent: str = f"corral/{__version__} (ollama-compatible)"
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None
    """httpx event hooks on every registry request, for diagnostics (e.g. logging each request)."""
