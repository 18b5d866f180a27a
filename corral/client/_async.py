"""``AsyncClient``: the asyncio (anyio) SDK client, method for method the twin of ``Client``."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import anyio
import anyio.to_thread
import httpx

from corral.client._base import (
    CHUNK_SIZE,
    CONNECTION_ERROR_MESSAGE,
    WEB_API,
    BaseClient,
    Images,
    Messages,
    OptionsArg,
    Tools,
    _copy_images,
    _copy_messages,
    _copy_tools,
    file_digest,
)
from corral.client._stream import AsyncStream, decode_part, response_error
from corral.client._systemone import SystemOneContent, SystemOneQuestion, SystemOneRequest, SystemOneResponse
from corral.client._types import (
    ChatRequest,
    ChatResponse,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    Digests,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    Format,
    GenerateRequest,
    GenerateResponse,
    KeepAlive,
    License,
    ListResponse,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    ShowRequest,
    ShowResponse,
    StatusResponse,
    Think,
    WebFetchRequest,
    WebFetchResponse,
    WebSearchRequest,
    WebSearchResponse,
)

T = TypeVar("T")


class AsyncClient(BaseClient[httpx.AsyncClient]):
    """An asyncio client for an Ollama (or corral) server; see ``Client`` for the arguments.

    Streaming methods are awaited, then iterated:
    ``async for part in await client.chat(..., stream=True)``.
    """

    def __init__(self, host: str | None = None, **kwargs: Any) -> None:
        super().__init__(httpx.AsyncClient, host, **kwargs)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _request_raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if not response.is_success:
            raise response_error(response)
        return response

    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[False] = False, **kwargs: Any
    ) -> T: ...
    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[True], **kwargs: Any
    ) -> AsyncStream[T]: ...
    @overload
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | AsyncStream[T]: ...
    async def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | AsyncStream[T]:
        if stream:
            return AsyncStream(self._stream_parts(cls, method, url, **kwargs))
        return cls(**(await self._request_raw(method, url, **kwargs)).json())

    async def _stream_parts(
        self, cls: type[T], method: str, url: str, **kwargs: Any
    ) -> AsyncGenerator[T, None]:
        try:
            async with self._client.stream(method, url, **kwargs) as response:
                if not response.is_success:
                    await response.aread()
                    raise response_error(response)
                async for line in response.aiter_lines():
                    if (part := decode_part(cls, line)) is not None:
                        yield part
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None

    @overload
    async def generate(
        self,
        model: str = "",
        prompt: str | None = None,
        suffix: str | None = None,
        *,
        system: str | None = None,
        template: str | None = None,
        context: Sequence[int] | None = None,
        stream: Literal[False] = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        raw: bool | None = None,
        format: Format | None = None,
        images: Images | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
    ) -> GenerateResponse: ...
    @overload
    async def generate(
        self,
        model: str = "",
        prompt: str | None = None,
        suffix: str | None = None,
        *,
        system: str | None = None,
        template: str | None = None,
        context: Sequence[int] | None = None,
        stream: Literal[True],
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        raw: bool | None = None,
        format: Format | None = None,
        images: Images | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
    ) -> AsyncStream[GenerateResponse]: ...
    @overload
    async def generate(
        self,
        model: str = "",
        prompt: str | None = None,
        suffix: str | None = None,
        *,
        system: str | None = None,
        template: str | None = None,
        context: Sequence[int] | None = None,
        stream: bool = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        raw: bool | None = None,
        format: Format | None = None,
        images: Images | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
    ) -> GenerateResponse | AsyncStream[GenerateResponse]: ...
    async def generate(
        self,
        model: str = "",
        prompt: str | None = None,
        suffix: str | None = None,
        *,
        system: str | None = None,
        template: str | None = None,
        context: Sequence[int] | None = None,
        stream: bool = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        raw: bool | None = None,
        format: Format | None = None,
        images: Images | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
    ) -> GenerateResponse | AsyncStream[GenerateResponse]:
        """Complete ``prompt`` with ``model`` (POST /api/generate).

        An empty prompt only loads the model; with ``keep_alive=0`` it unloads it (see ``stop``).
        ``images`` take bytes, paths or base64. ``width``/``height``/``steps`` drive experimental
        image generation. Returns a ``GenerateResponse``, or with ``stream=True`` an async iterator of
        parts (``aclose()`` aborts the request).
        """
        request = GenerateRequest(
            model=model,
            prompt=prompt,
            suffix=suffix,
            system=system,
            template=template,
            context=context,
            stream=stream,
            think=think,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            raw=raw,
            format=format,
            images=list(_copy_images(images)) if images else None,
            options=options,
            keep_alive=keep_alive,
            width=width,
            height=height,
            steps=steps,
        )
        return await self._request(
            GenerateResponse,
            "POST",
            "/api/generate",
            json=request.model_dump(exclude_none=True),
            stream=stream,
        )

    @overload
    async def chat(
        self,
        model: str = "",
        messages: Messages | None = None,
        *,
        tools: Tools | None = None,
        stream: Literal[False] = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        format: Format | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> ChatResponse: ...
    @overload
    async def chat(
        self,
        model: str = "",
        messages: Messages | None = None,
        *,
        tools: Tools | None = None,
        stream: Literal[True],
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        format: Format | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> AsyncStream[ChatResponse]: ...
    @overload
    async def chat(
        self,
        model: str = "",
        messages: Messages | None = None,
        *,
        tools: Tools | None = None,
        stream: bool = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        format: Format | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> ChatResponse | AsyncStream[ChatResponse]: ...
    async def chat(
        self,
        model: str = "",
        messages: Messages | None = None,
        *,
        tools: Tools | None = None,
        stream: bool = False,
        think: Think | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        format: Format | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> ChatResponse | AsyncStream[ChatResponse]:
        """Continue the conversation ``messages`` with ``model`` (POST /api/chat).

        ``tools`` may mix JSON-schema dicts, ``Tool`` objects and plain Python functions; a function
        is described by its signature and Google-style docstring (``Args:`` section), e.g.::

            async def add(a: int, b: int) -> int:
                '''Add two numbers.

                Args:
                    a: The first number
                    b: The second number
                '''

            client.chat('llama3.2', messages=[...], tools=[add])

        ``format`` is ``'json'`` or a JSON schema. Returns a ``ChatResponse``, or with ``stream=True``
        an async iterator of parts (``aclose()`` aborts the request).
        """
        request = ChatRequest(
            model=model,
            messages=list(_copy_messages(messages)),
            tools=list(_copy_tools(tools)),
            stream=stream,
            think=think,
            logprobs=logprobs,
            top_logprobs=top_logprobs,
            format=format,
            options=options,
            keep_alive=keep_alive,
        )
        return await self._request(
            ChatResponse, "POST", "/api/chat", json=request.model_dump(exclude_none=True), stream=stream
        )

    async def systemone(
        self,
        model: str,
        state: SystemOneContent,
        questions: Mapping[str, SystemOneQuestion | Mapping[str, Any]],
        keep_alive: KeepAlive | None = None,
    ) -> SystemOneResponse:
        """Answer choice/noul/score ``questions`` about ``state`` (POST /v1/systemone; never streams)."""
        request = SystemOneRequest.model_validate(
            {"model": model, "state": state, "questions": questions, "keep_alive": keep_alive}
        )
        return await self._request(
            SystemOneResponse, "POST", "/v1/systemone", json=request.model_dump(exclude_none=True)
        )

    async def embed(
        self,
        model: str = "",
        input: str | Sequence[str] = "",
        truncate: bool | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
        dimensions: int | None = None,
    ) -> EmbedResponse:
        """Embed one text or several (POST /api/embed); ``dimensions`` shortens the vectors."""
        request = EmbedRequest(
            model=model,
            input=input,
            truncate=truncate,
            options=options,
            keep_alive=keep_alive,
            dimensions=dimensions,
        )
        return await self._request(
            EmbedResponse, "POST", "/api/embed", json=request.model_dump(exclude_none=True)
        )

    async def embeddings(
        self,
        model: str = "",
        prompt: str | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> EmbeddingsResponse:
        """Embed one prompt (POST /api/embeddings). Deprecated: use ``embed``."""
        request = EmbeddingsRequest(model=model, prompt=prompt, options=options, keep_alive=keep_alive)
        return await self._request(
            EmbeddingsResponse, "POST", "/api/embeddings", json=request.model_dump(exclude_none=True)
        )

    @overload
    async def pull(
        self, model: str, *, insecure: bool = False, stream: Literal[False] = False
    ) -> ProgressResponse: ...
    @overload
    async def pull(
        self, model: str, *, insecure: bool = False, stream: Literal[True]
    ) -> AsyncStream[ProgressResponse]: ...
    @overload
    async def pull(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncStream[ProgressResponse]: ...
    async def pull(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncStream[ProgressResponse]:
        """Download ``model`` from its registry (POST /api/pull); stream to follow the progress."""
        request = PullRequest(model=model, insecure=insecure, stream=stream)
        return await self._request(
            ProgressResponse, "POST", "/api/pull", json=request.model_dump(exclude_none=True), stream=stream
        )

    @overload
    async def push(
        self, model: str, *, insecure: bool = False, stream: Literal[False] = False
    ) -> ProgressResponse: ...
    @overload
    async def push(
        self, model: str, *, insecure: bool = False, stream: Literal[True]
    ) -> AsyncStream[ProgressResponse]: ...
    @overload
    async def push(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncStream[ProgressResponse]: ...
    async def push(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | AsyncStream[ProgressResponse]:
        """Upload ``model`` to its registry (POST /api/push); stream to follow the progress."""
        request = PushRequest(model=model, insecure=insecure, stream=stream)
        return await self._request(
            ProgressResponse, "POST", "/api/push", json=request.model_dump(exclude_none=True), stream=stream
        )

    @overload
    async def create(
        self,
        model: str,
        quantize: str | None = None,
        from_: str | None = None,
        files: Digests | None = None,
        adapters: Digests | None = None,
        template: str | None = None,
        license: License | None = None,
        system: str | None = None,
        parameters: OptionsArg | None = None,
        messages: Messages | None = None,
        *,
        stream: Literal[False] = False,
    ) -> ProgressResponse: ...
    @overload
    async def create(
        self,
        model: str,
        quantize: str | None = None,
        from_: str | None = None,
        files: Digests | None = None,
        adapters: Digests | None = None,
        template: str | None = None,
        license: License | None = None,
        system: str | None = None,
        parameters: OptionsArg | None = None,
        messages: Messages | None = None,
        *,
        stream: Literal[True],
    ) -> AsyncStream[ProgressResponse]: ...
    @overload
    async def create(
        self,
        model: str,
        quantize: str | None = None,
        from_: str | None = None,
        files: Digests | None = None,
        adapters: Digests | None = None,
        template: str | None = None,
        license: License | None = None,
        system: str | None = None,
        parameters: OptionsArg | None = None,
        messages: Messages | None = None,
        *,
        stream: bool = False,
    ) -> ProgressResponse | AsyncStream[ProgressResponse]: ...
    async def create(
        self,
        model: str,
        quantize: str | None = None,
        from_: str | None = None,
        files: Digests | None = None,
        adapters: Digests | None = None,
        template: str | None = None,
        license: License | None = None,
        system: str | None = None,
        parameters: OptionsArg | None = None,
        messages: Messages | None = None,
        *,
        stream: bool = False,
    ) -> ProgressResponse | AsyncStream[ProgressResponse]:
        """Create ``model`` (POST /api/create) from ``from_`` (a model name) and/or uploaded files.

        ``files`` and ``adapters`` map file names to digests returned by ``create_blob``.
        """
        request = CreateRequest(
            model=model,
            stream=stream,
            quantize=quantize,
            from_=from_,
            files=files,
            adapters=adapters,
            template=template,
            license=license,
            system=system,
            parameters=parameters,
            messages=messages,
        )
        return await self._request(
            ProgressResponse, "POST", "/api/create", json=request.model_dump(exclude_none=True), stream=stream
        )

    async def create_blob(self, path: str | os.PathLike[str]) -> str:
        """Upload a file as a blob (POST /api/blobs/<digest>) and return its ``sha256:<hex>`` digest."""
        digest = await anyio.to_thread.run_sync(file_digest, path)

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(path, "rb") as f:
                while chunk := await f.read(CHUNK_SIZE):
                    yield chunk

        await self._request_raw("POST", f"/api/blobs/{digest}", content=chunks())
        return digest

    async def list(self) -> ListResponse:
        """The models stored locally (GET /api/tags)."""
        return await self._request(ListResponse, "GET", "/api/tags")

    async def delete(self, model: str) -> StatusResponse:
        """Remove ``model`` (DELETE /api/delete)."""
        response = await self._request_raw(
            "DELETE", "/api/delete", json=DeleteRequest(model=model).model_dump(exclude_none=True)
        )
        return StatusResponse(status="success" if response.status_code == 200 else "error")

    async def copy(self, source: str, destination: str) -> StatusResponse:
        """Give model ``source`` a second name ``destination`` (POST /api/copy)."""
        request = CopyRequest(source=source, destination=destination)
        response = await self._request_raw("POST", "/api/copy", json=request.model_dump(exclude_none=True))
        return StatusResponse(status="success" if response.status_code == 200 else "error")

    async def show(self, model: str) -> ShowResponse:
        """Details, template, parameters and capabilities of ``model`` (POST /api/show)."""
        return await self._request(
            ShowResponse, "POST", "/api/show", json=ShowRequest(model=model).model_dump(exclude_none=True)
        )

    async def ps(self) -> ProcessResponse:
        """The models loaded now (GET /api/ps)."""
        return await self._request(ProcessResponse, "GET", "/api/ps")

    async def stop(self, model: str) -> GenerateResponse:
        """Unload ``model`` now, like ``ollama stop``: generate with an empty prompt and ``keep_alive=0``."""
        request = GenerateRequest(model=model, prompt="", keep_alive=0, stream=False)
        return await self._request(
            GenerateResponse, "POST", "/api/generate", json=request.model_dump(exclude_none=True)
        )

    async def web_search(self, query: str, max_results: int = 3) -> WebSearchResponse:
        """Search the web and return the best results.

        Args:
            query: What to search for
            max_results: How many results to return (default 3)

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                search runs on ollama.com
        """
        self._require_bearer("web search")
        request = WebSearchRequest(query=query, max_results=max_results)
        return await self._request(
            WebSearchResponse, "POST", f"{WEB_API}/web_search", json=request.model_dump(exclude_none=True)
        )

    async def web_fetch(self, url: str) -> WebFetchResponse:
        """Fetch a web page and return its title, text and links.

        Args:
            url: Address of the page to fetch

        Raises:
            ValueError: without an ``OLLAMA_API_KEY`` or a bearer ``Authorization`` header, since the
                fetch runs on ollama.com
        """
        self._require_bearer("web fetch")
        request = WebFetchRequest(url=url)
        return await self._request(
            WebFetchResponse, "POST", f"{WEB_API}/web_fetch", json=request.model_dump(exclude_none=True)
        )
