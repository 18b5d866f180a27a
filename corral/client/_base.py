"""What ``Client`` and ``AsyncClient`` share: construction from the environment, argument normalization."""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from corral.client._host import _parse_host
from corral.client._types import Image, Message, Options, Tool
from corral.client._utils import convert_function_to_tool
from corral.version import __version__

CONNECTION_ERROR_MESSAGE = (
    "Failed to connect to Ollama. Please check that Ollama is downloaded, running and accessible. "
    "https://ollama.com/download"
)

COMPATIBLE_VERSION = "0.6.3"
"The ollama-python release whose API this SDK reproduces; servers see it in the User-Agent."

WEB_API = "https://ollama.com/api"

CHUNK_SIZE = 32 * 1024

HttpxClient = TypeVar("HttpxClient", httpx.Client, httpx.AsyncClient)

# What the client methods accept, before normalization.
Messages = Sequence[Mapping[str, Any] | Message]
Tools = Sequence[Mapping[str, Any] | Tool | Callable[..., Any]]
Images = Sequence[str | bytes | Image]
OptionsArg = Mapping[str, Any] | Options


def user_agent() -> str:
    """``ollama-python/<compatible version> (<arch> <os>) Python/<version> corral/<version>``.

    The ``ollama-python/`` prefix is kept so that servers and proxies that recognize the official
    SDK treat this one the same way.
    """
    return (
        f"ollama-python/{COMPATIBLE_VERSION} ({platform.machine()} {platform.system().lower()}) "
        f"Python/{platform.python_version()} corral/{__version__}"
    )


class BaseClient(Generic[HttpxClient]):
    """Builds the httpx client both SDK clients wrap, as ``self._client``."""

    _client: HttpxClient

    def __init__(
        self,
        client: type[HttpxClient],
        host: str | None = None,
        *,
        follow_redirects: bool = True,
        timeout: Any = None,
        headers: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the httpx client.

        ``host`` falls back to ``OLLAMA_HOST``, then to ``http://127.0.0.1:11434`` (see ``_parse_host``).
        ``timeout`` is ``None`` (wait forever, since a model may take minutes to load); pass seconds or an
        ``httpx.Timeout`` to bound it. Redirects are followed. ``headers`` are added to every request,
        except that ``Content-Type``, ``Accept`` and ``User-Agent`` are always the SDK's own; with no
        ``Authorization`` header, ``OLLAMA_API_KEY`` (if set) is sent as a bearer token. Any other keyword
        (``verify``, ``transport``, ``proxy``, ``trust_env``...) goes to httpx unchanged.
        """
        merged = {
            **(headers or {}),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent(),
        }
        final = {key.lower(): value for key, value in merged.items() if value is not None}
        api_key = os.getenv("OLLAMA_API_KEY")
        if api_key and not final.get("authorization"):
            final["authorization"] = f"Bearer {api_key}"

        self._client = client(
            base_url=_parse_host(host or os.getenv("OLLAMA_HOST")),
            follow_redirects=follow_redirects,
            timeout=timeout,
            headers=final,
            **kwargs,
        )

    def _require_bearer(self, what: str) -> None:
        if not self._client.headers.get("authorization", "").startswith("Bearer "):
            raise ValueError(f"Authorization header with Bearer token is required for {what}")


def file_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file, read in chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


def _copy_images(images: Any) -> Iterator[Image]:
    """Wrap each image in ``Image``; a lone str/bytes/Path is one image, not a sequence of them."""
    if isinstance(images, (str, bytes, Path)):
        images = [images]
    for image in images or ():
        yield image if isinstance(image, Image) else Image(value=image)


def _copy_messages(messages: Sequence[Mapping[str, Any] | Message] | None) -> Iterator[Message]:
    """Validate messages, dropping empty fields and wrapping raw images."""
    for message in messages or ():
        fields = message.items() if isinstance(message, Mapping) else iter(message)
        yield Message.model_validate(
            {key: list(_copy_images(value)) if key == "images" else value for key, value in fields if value},
        )


def _copy_tools(
    tools: Sequence[Mapping[str, Any] | Tool | Callable[..., Any]] | None = None,
) -> Iterator[Tool]:
    """Functions become tools through their signature and docstring; the rest is validated as ``Tool``."""
    for tool in tools or ():
        yield convert_function_to_tool(tool) if callable(tool) else Tool.model_validate(tool)


def _as_path(s: str | os.PathLike[str] | None) -> Path | None:
    """``s`` as a ``Path`` when it names something that exists, else ``None``."""
    if isinstance(s, (str, os.PathLike)):
        try:
            path = Path(s)
            if path.exists():
                return path
        except (OSError, ValueError):
            pass
    return None
