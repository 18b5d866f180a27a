"""``AsyncClient``: the asyncio (anyio) SDK client, method for method the twin of ``Client``.

``AsyncInference`` (``_async_inference``) runs models, ``AsyncModels`` (``_async_models``) manages them, both
on ``AsyncTransport`` (``_transport``); the ollama.com web tools are here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from corral.client._async_inference import AsyncInference
from corral.client._async_models import AsyncModels
from corral.client._base import WEB_API
from corral.client._requests import WebFetchRequest, WebSearchRequest
from corral.client._responses import WebFetchResponse, WebSearchResponse


class AsyncClient(AsyncInference, AsyncModels):
    """An asyncio client for an Ollama (or corral) server.

    The arguments are ``Client``'s: ``host`` (default ``OLLAMA_HOST``, then ``127.0.0.1:11434``),
    ``timeout`` (default ``None``, no limit; seconds or an ``httpx.Timeout`` bound each network
    operation, and running out raises ``httpx.TimeoutException``; on a stream it bounds the wait for
    each part, not the whole response), ``headers``, and any ``httpx.AsyncClient`` keyword.

    Streaming methods are awaited, then iterated: ``async for part in await client.chat(..., stream=True)``;
    ``await stream.aclose()`` (or ``async with`` around the stream) aborts the request. Use the client in
    ``async with``, or ``await close()``, to release its connections.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        headers: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(httpx.AsyncClient, host, timeout=timeout, headers=headers, **kwargs)

    async def web_search(self, query: str, max_results: int = 3) -> WebSearchResponse:
        """Search the web with ollama.com's search service and return the best results.

        Args:
            query: What to search for
            max_results: How many results to return (default 3)

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                search runs on ollama.com (ollama-python's async client skips this check)
        """
        self._require_bearer("web search")
        request = WebSearchRequest(query=query, max_results=max_results)
        return await self._request(
            WebSearchResponse, "POST", f"{WEB_API}/web_search", json=request.model_dump(exclude_none=True)
        )

    async def web_fetch(self, url: str) -> WebFetchResponse:
        """Fetch a web page through ollama.com and return its title, text and links.

        Args:
            url: Address of the page to fetch

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                fetch runs on ollama.com (ollama-python's async client skips this check)
        """
        self._require_bearer("web fetch")
        request = WebFetchRequest(url=url)
        return await self._request(
            WebFetchResponse, "POST", f"{WEB_API}/web_fetch", json=request.model_dump(exclude_none=True)
        )
