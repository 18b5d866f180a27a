"""The SDK clients, under the module name ollama-python's own tests import them from.

``Client`` (blocking) and ``AsyncClient`` (asyncio) share ``BaseClient``; the argument helpers and
``_parse_host`` live beside them and are re-exported here for code written against ``ollama._client``.
"""

from corral.client._async import AsyncClient
from corral.client._base import (
    COMPATIBLE_VERSION,
    CONNECTION_ERROR_MESSAGE,
    BaseClient,
    _as_path,
    _copy_images,
    _copy_messages,
    _copy_tools,
)
from corral.client._host import _parse_host
from corral.client._sync import Client

__version__ = COMPATIBLE_VERSION

__all__ = [
    "CONNECTION_ERROR_MESSAGE",
    "AsyncClient",
    "BaseClient",
    "Client",
    "_as_path",
    "_copy_images",
    "_copy_messages",
    "_copy_tools",
    "_parse_host",
]
