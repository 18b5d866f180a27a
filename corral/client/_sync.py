"""``Client``: the blocking SDK client."""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import httpx

from corral.client._base import (
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
from corral.client._stream import Stream, decode_part, response_error
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


class Client(BaseClient[httpx.Client]):
    """A blocking client for an Ollama (or corral) server.

    ``Client(host=None, **kwargs)``: ``host`` defaults to ``OLLAMA_HOST``, then ``127.0.0.1:11434``.
    There is no timeout unless you pass ``timeout=`` (seconds or ``httpx.Timeout``); other keywords go
    to ``httpx.Client``. Methods raise ``ResponseError`` when the server reports an error and
    ``ConnectionError`` when it cannot be reached (streams raise these on iteration).
    """

    def __init__(self, host: str | None = None, **kwargs: Any) -> None:
        super().__init__(httpx.Client, host, **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request_raw(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None
        if not response.is_success:
            raise response_error(response)
        return response

    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[False] = False, **kwargs: Any
    ) -> T: ...
    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: Literal[True], **kwargs: Any
    ) -> Stream[T]: ...
    @overload
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | Stream[T]: ...
    def _request(
        self, cls: type[T], method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> T | Stream[T]:
        if stream:
            return Stream(self._stream_parts(cls, method, url, **kwargs))
        return cls(**self._request_raw(method, url, **kwargs).json())

    def _stream_parts(self, cls: type[T], method: str, url: str, **kwargs: Any) -> Generator[T, None, None]:
        try:
            with self._client.stream(method, url, **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise response_error(response)
                for line in response.iter_lines():
                    if (part := decode_part(cls, line)) is not None:
                        yield part
        except httpx.ConnectError:
            raise ConnectionError(CONNECTION_ERROR_MESSAGE) from None

    @overload
    def generate(
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
    def generate(
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
    ) -> Stream[GenerateResponse]: ...
    @overload
    def generate(
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
    ) -> GenerateResponse | Stream[GenerateResponse]: ...
    def generate(
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
    ) -> GenerateResponse | Stream[GenerateResponse]:
        """Complete ``prompt`` with ``model`` (POST /api/generate).

        An empty prompt only loads the model; with ``keep_alive=0`` it unloads it (see ``stop``).
        ``images`` take bytes, paths or base64. ``width``/``height``/``steps`` drive experimental
        image generation. Returns a ``GenerateResponse``, or with ``stream=True`` an iterator of
        parts (closing it aborts the request).
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
        return self._request(
            GenerateResponse,
            "POST",
            "/api/generate",
            json=request.model_dump(exclude_none=True),
            stream=stream,
        )

    @overload
    def chat(
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
    def chat(
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
    ) -> Stream[ChatResponse]: ...
    @overload
    def chat(
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
    ) -> ChatResponse | Stream[ChatResponse]: ...
    def chat(
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
    ) -> ChatResponse | Stream[ChatResponse]:
        """Continue the conversation ``messages`` with ``model`` (POST /api/chat).

        ``tools`` may mix JSON-schema dicts, ``Tool`` objects and plain Python functions; a function
        is described by its signature and Google-style docstring (``Args:`` section), e.g.::

            def add(a: int, b: int) -> int:
                '''Add two numbers.

                Args:
                    a: The first number
                    b: The second number
                '''

            client.chat('llama3.2', messages=[...], tools=[add])

        ``format`` is ``'json'`` or a JSON schema. Returns a ``ChatResponse``, or with ``stream=True``
        an iterator of parts (closing it aborts the request).
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
        return self._request(
            ChatResponse, "POST", "/api/chat", json=request.model_dump(exclude_none=True), stream=stream
        )

    def systemone(
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
        return self._request(
            SystemOneResponse, "POST", "/v1/systemone", json=request.model_dump(exclude_none=True)
        )

    def embed(
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
        return self._request(EmbedResponse, "POST", "/api/embed", json=request.model_dump(exclude_none=True))

    def embeddings(
        self,
        model: str = "",
        prompt: str | None = None,
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> EmbeddingsResponse:
        """Embed one prompt (POST /api/embeddings). Deprecated: use ``embed``."""
        request = EmbeddingsRequest(model=model, prompt=prompt, options=options, keep_alive=keep_alive)
        return self._request(
            EmbeddingsResponse, "POST", "/api/embeddings", json=request.model_dump(exclude_none=True)
        )

    @overload
    def pull(
        self, model: str, *, insecure: bool = False, stream: Literal[False] = False
    ) -> ProgressResponse: ...
    @overload
    def pull(
        self, model: str, *, insecure: bool = False, stream: Literal[True]
    ) -> Stream[ProgressResponse]: ...
    @overload
    def pull(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | Stream[ProgressResponse]: ...
    def pull(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | Stream[ProgressResponse]:
        """Download ``model`` from its registry (POST /api/pull); stream to follow the progress."""
        request = PullRequest(model=model, insecure=insecure, stream=stream)
        return self._request(
            ProgressResponse, "POST", "/api/pull", json=request.model_dump(exclude_none=True), stream=stream
        )

    @overload
    def push(
        self, model: str, *, insecure: bool = False, stream: Literal[False] = False
    ) -> ProgressResponse: ...
    @overload
    def push(
        self, model: str, *, insecure: bool = False, stream: Literal[True]
    ) -> Stream[ProgressResponse]: ...
    @overload
    def push(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | Stream[ProgressResponse]: ...
    def push(
        self, model: str, *, insecure: bool = False, stream: bool = False
    ) -> ProgressResponse | Stream[ProgressResponse]:
        """Upload ``model`` to its registry (POST /api/push); stream to follow the progress."""
        request = PushRequest(model=model, insecure=insecure, stream=stream)
        return self._request(
            ProgressResponse, "POST", "/api/push", json=request.model_dump(exclude_none=True), stream=stream
        )

    @overload
    def create(
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
    def create(
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
    ) -> Stream[ProgressResponse]: ...
    @overload
    def create(
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
    ) -> ProgressResponse | Stream[ProgressResponse]: ...
    def create(
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
    ) -> ProgressResponse | Stream[ProgressResponse]:
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
        return self._request(
            ProgressResponse, "POST", "/api/create", json=request.model_dump(exclude_none=True), stream=stream
        )

    def create_blob(self, path: str | os.PathLike[str]) -> str:
        """Upload a file as a blob (POST /api/blobs/<digest>) and return its ``sha256:<hex>`` digest."""
        digest = file_digest(path)
        with open(path, "rb") as f:
            self._request_raw("POST", f"/api/blobs/{digest}", content=f)
        return digest

    def list(self) -> ListResponse:
        """The models stored locally (GET /api/tags)."""
        return self._request(ListResponse, "GET", "/api/tags")

    def delete(self, model: str) -> StatusResponse:
        """Remove ``model`` (DELETE /api/delete)."""
        response = self._request_raw(
            "DELETE", "/api/delete", json=DeleteRequest(model=model).model_dump(exclude_none=True)
        )
        return StatusResponse(status="success" if response.status_code == 200 else "error")

    def copy(self, source: str, destination: str) -> StatusResponse:
        """Give model ``source`` a second name ``destination`` (POST /api/copy)."""
        request = CopyRequest(source=source, destination=destination)
        response = self._request_raw("POST", "/api/copy", json=request.model_dump(exclude_none=True))
        return StatusResponse(status="success" if response.status_code == 200 else "error")

    def show(self, model: str) -> ShowResponse:
        """Details, template, parameters and capabilities of ``model`` (POST /api/show)."""
        return self._request(
            ShowResponse, "POST", "/api/show", json=ShowRequest(model=model).model_dump(exclude_none=True)
        )

    def ps(self) -> ProcessResponse:
        """The models loaded now (GET /api/ps)."""
        return self._request(ProcessResponse, "GET", "/api/ps")

    def stop(self, model: str) -> GenerateResponse:
        """Unload ``model`` now, like ``ollama stop``: generate with an empty prompt and ``keep_alive=0``."""
        request = GenerateRequest(model=model, prompt="", keep_alive=0, stream=False)
        return self._request(
            GenerateResponse, "POST", "/api/generate", json=request.model_dump(exclude_none=True)
        )

    def web_search(self, query: str, max_results: int = 3) -> WebSearchResponse:
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
        return self._request(
            WebSearchResponse, "POST", f"{WEB_API}/web_search", json=request.model_dump(exclude_none=True)
        )

    def web_fetch(self, url: str) -> WebFetchResponse:
        """Fetch a web page and return its title, text and links.

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
