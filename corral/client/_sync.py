"""``Client``: the blocking SDK client, put together from its method families.

``SyncInference`` (``_sync_inference``) runs models, ``SyncModels`` (``_sync_models``) manages them, both on
``SyncTransport`` (``_transport``); the ollama.com web tools, which corral's server does not host, are here.
``AsyncClient`` (``_async``) is the method-for-method asyncio twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from corral.client._base import WEB_API
from corral.client._requests import WebFetchRequest, WebSearchRequest
from corral.client._responses import WebFetchResponse, WebSearchResponse
from corral.client._sync_inference import SyncInference
from corral.client._sync_models import SyncModels


class Client(SyncInference, SyncModels):
    """A blocking client for an Ollama (or corral) server.

    ``host`` defaults to ``OLLAMA_HOST``, then ``127.0.0.1:11434``; any form Ollama accepts works
    (``example.com``, ``:8080``, ``https://host/prefix``, ``[::1]:11434``...).

    ``timeout`` is ``None`` by default: no limit at all, since loading a large model can take minutes.
    Pass seconds (``Client(timeout=30)``) or an ``httpx.Timeout`` (``httpx.Timeout(5, read=120)``) to
    bound each network operation; when one runs out, httpx's ``httpx.TimeoutException`` (for example
    ``httpx.ReadTimeout``) is raised. On a stream the read timeout applies to the wait for each part,
    not to the whole response, so a long answer is never cut while parts keep coming.

    ``headers`` go with every request (``Content-Type``, ``Accept`` and ``User-Agent`` stay the SDK's
    own); without an ``Authorization`` header, ``OLLAMA_API_KEY`` is sent as a bearer token. Any
    other keyword (``verify``, ``proxy``, ``transport``, ``trust_env``, ``follow_redirects``...) goes to
    ``httpx.Client`` unchanged.

    Methods raise ``ResponseError`` when the server reports an error and ``ConnectionError`` when it
    cannot be reached; streaming methods raise the same ones, when iterated. Use the client in a
    ``with`` block, or call ``close()``, to release its connections.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        headers: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(httpx.Client, host, timeout=timeout, headers=headers, **kwargs)

    def web_search(self, query: str, max_results: int = 3) -> WebSearchResponse:
        """Search the web with ollama.com's search service and return the best results.

        Args:
            query: What to search for
            max_results: How many results to return (default 3)

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                search runs on ollama.com
        """
        self._require_bearer("web search")
        request = WebSearchRequest(query=query, max_results=max_results)
        return self._request(
            WebSearchResponse, "POST", f"{WEB_API}/web_search", json=request.model_dump(exclude_none=True)
        )

    def web_fetch(self, url: str) -> WebFetchResponse:
        """Fetch a web page through ollama.com and return its title, text and links.

        Args:
            url: Address of the page to fetch

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                fetch runs on ollama.com
        """
        self._require_bearer("web fetch")
        request = WebFetchRequest(url=url)
        return self._request(
            WebFetchResponse, "POST", f"{WEB_API}/web_fetch", json=request.model_dump(exclude_none=True)
        )
