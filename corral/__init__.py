"""corral: Ollama, written in Python.

The top-level package is the SDK, a drop-in for ollama-python 0.6.3::

    import corral as ollama

    ollama.chat("gemma3", messages=[{"role": "user", "content": "Why is the sky blue?"}])
    for part in ollama.generate("gemma3", "Tell me a story", stream=True):
        print(part.response, end="")

``Client`` and ``AsyncClient`` take the host (default ``OLLAMA_HOST``, then ``127.0.0.1:11434``),
``timeout=`` (none by default) and any httpx option. The module-level functions are methods of one
default ``Client``, made on first use rather than at import, so that importing corral (or any corral
subpackage) reads no environment and opens nothing; ``corral._client`` is that client.

``from corral._types import ...``, ``corral._utils`` and ``from corral._client import ...`` find the
modules that ``ollama._types``, ``ollama._utils`` and ``ollama._client`` name, for code written against them.

Beyond ollama-python: ``stop(model)`` unloads a model; ``tokenize(model, content)`` and
``detokenize(model, tokens)`` use the model's own tokenizer; ``create_blob`` is also module-level; streams
can be closed (or used in ``with``) to abort the request, and the server stops generating; an
unreachable server raises the same ``ConnectionError`` on streaming calls as on the others; functions
given as tools keep ``items``, ``enum`` and nested objects, in a stable order. The ``timeout`` is
documented on ``Client``. The SDK imports only httpx, pydantic and anyio.
"""

from __future__ import annotations

import builtins
import sys
import threading
from typing import TYPE_CHECKING, Any

from corral.client import (
    AsyncClient,
    AsyncStream,
    ChatResponse,
    Client,
    DetokenizeResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    Image,
    ListResponse,
    Message,
    Options,
    ProcessResponse,
    ProgressResponse,
    RequestError,
    ResponseError,
    ShowResponse,
    StatusResponse,
    Stream,
    SubscriptableBaseModel,
    SystemOneAnswer,
    SystemOneChoiceAnswer,
    SystemOneChoiceQuestion,
    SystemOneContent,
    SystemOneNoulAnswer,
    SystemOneNoulQuestion,
    SystemOneQuestion,
    SystemOneRequest,
    SystemOneResponse,
    SystemOneScoreAnswer,
    SystemOneScoreQuestion,
    SystemOneUsage,
    TokenizeResponse,
    Tool,
    WebFetchResponse,
    WebSearchResponse,
    convert_function_to_tool,
)
from corral.client import _client as _client_module
from corral.client import _types as _types
from corral.client import _utils as _utils
from corral.version import __version__ as __version__

_FUNCTIONS = (
    "chat",
    "copy",
    "create",
    "create_blob",
    "delete",
    "detokenize",
    "embed",
    "embeddings",
    "generate",
    "list",
    "ps",
    "pull",
    "push",
    "show",
    "stop",
    "systemone",
    "tokenize",
    "web_fetch",
    "web_search",
)

__all__ = [
    "AsyncClient",
    "AsyncStream",
    "ChatResponse",
    "Client",
    "DetokenizeResponse",
    "EmbedResponse",
    "EmbeddingsResponse",
    "GenerateResponse",
    "Image",
    "ListResponse",
    "Message",
    "Options",
    "ProcessResponse",
    "ProgressResponse",
    "RequestError",
    "ResponseError",
    "ShowResponse",
    "StatusResponse",
    "Stream",
    "SubscriptableBaseModel",
    "SystemOneAnswer",
    "SystemOneChoiceAnswer",
    "SystemOneChoiceQuestion",
    "SystemOneContent",
    "SystemOneNoulAnswer",
    "SystemOneNoulQuestion",
    "SystemOneQuestion",
    "SystemOneRequest",
    "SystemOneResponse",
    "SystemOneScoreAnswer",
    "SystemOneScoreQuestion",
    "SystemOneUsage",
    "TokenizeResponse",
    "Tool",
    "WebFetchResponse",
    "WebSearchResponse",
    "chat",
    "convert_function_to_tool",
    "copy",
    "create",
    "create_blob",
    "delete",
    "detokenize",
    "embed",
    "embeddings",
    "generate",
    "list",
    "ps",
    "pull",
    "push",
    "show",
    "stop",
    "systemone",
    "tokenize",
    "web_fetch",
    "web_search",
]

if TYPE_CHECKING:
    # What __getattr__ provides at run time, spelled out for type checkers.
    _client = Client()
    chat = _client.chat
    copy = _client.copy
    create = _client.create
    create_blob = _client.create_blob
    delete = _client.delete
    detokenize = _client.detokenize
    embed = _client.embed
    embeddings = _client.embeddings
    generate = _client.generate
    list = _client.list
    ps = _client.ps
    pull = _client.pull
    push = _client.push
    show = _client.show
    stop = _client.stop
    systemone = _client.systemone
    tokenize = _client.tokenize
    web_fetch = _client.web_fetch
    web_search = _client.web_search

# ollama-python's private modules are imported by name in the wild (``from ollama._types import Options``):
# the same names under ``corral`` find corral's modules. ``corral._client`` stays the default client, as
# ``ollama._client`` is, while ``from corral._client import Client`` finds the module, as with ollama.
for _name, _module in (("_client", _client_module), ("_types", _types), ("_utils", _utils)):
    sys.modules.setdefault(f"{__name__}.{_name}", _module)
del _name, _module

_default_lock = threading.Lock()


def _default_client() -> Client:
    with _default_lock:
        client = globals().get("_client")
        if client is None:
            client = globals()["_client"] = Client()
        return client


def __getattr__(name: str) -> Any:
    if name == "_client":
        return _default_client()
    if name in _FUNCTIONS:
        return getattr(_default_client(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> builtins.list[str]:
    return sorted({*globals(), *__all__, "_client"})
