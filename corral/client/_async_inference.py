"""``AsyncClient``'s inference methods: ``generate``, ``chat``, ``embed``, ``embeddings``, ``tokenize``,
``detokenize``, ``systemone``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from corral.client._base import (
    Images,
    Messages,
    OptionsArg,
    Tools,
    _copy_images,
    _copy_messages,
    _copy_tools,
)
from corral.client._options import Format, KeepAlive, Think
from corral.client._requests import (
    ChatRequest,
    DetokenizeRequest,
    EmbeddingsRequest,
    EmbedRequest,
    GenerateRequest,
    TokenizeRequest,
)
from corral.client._responses import (
    ChatResponse,
    DetokenizeResponse,
    EmbeddingsResponse,
    EmbedResponse,
    GenerateResponse,
    TokenizeResponse,
)
from corral.client._stream import AsyncStream
from corral.client._systemone import SystemOneContent, SystemOneQuestion, SystemOneRequest, SystemOneResponse
from corral.client._transport import AsyncTransport


class AsyncInference(AsyncTransport):
    """Running a model: text, chat turns, embeddings."""

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

        An empty prompt only loads the model; with ``keep_alive=0`` it unloads it (see ``stop``). ``images``
        take bytes, paths or base64. ``width``/``height``/``steps`` drive experimental image generation.

        Returns a ``GenerateResponse``; with ``stream=True``, an ``AsyncStream`` of parts, the last one with
        ``done=True`` (``await stream.aclose()``, or ``async with``, to abort the request: the server stops
        generating). Raises ``ResponseError`` and ``ConnectionError`` (a stream raises them when iterated). The
        client's ``timeout`` (none by default) bounds the wait for the response, or for each part of a stream.
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

            def add(a: int, b: int) -> int:
                '''Add two numbers.

                Args:
                    a: The first number
                    b: The second number
                '''

            await client.chat('llama3.2', messages=[...], tools=[add])

        ``format`` is ``'json'`` or a JSON schema.

        Returns a ``ChatResponse``; with ``stream=True``, an ``AsyncStream`` of parts, the last one with
        ``done=True`` (``await stream.aclose()``, or ``async with``, to abort the request: the server stops
        generating). Raises ``ResponseError`` and ``ConnectionError`` (a stream raises them when iterated). The
        client's ``timeout`` (none by default) bounds the wait for the response, or for each part of a stream.
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

    async def tokenize(
        self,
        model: str = "",
        content: str = "",
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> TokenizeResponse:
        """The model's token ids for ``content`` (POST /api/tokenize), as its generation would see the text."""
        request = TokenizeRequest(model=model, content=content, options=options, keep_alive=keep_alive)
        return await self._request(
            TokenizeResponse, "POST", "/api/tokenize", json=request.model_dump(exclude_none=True)
        )

    async def detokenize(
        self,
        model: str = "",
        tokens: Sequence[int] = (),
        options: OptionsArg | None = None,
        keep_alive: KeepAlive | None = None,
    ) -> DetokenizeResponse:
        """The text of the model's token ids ``tokens`` (POST /api/detokenize)."""
        request = DetokenizeRequest(model=model, tokens=list(tokens), options=options, keep_alive=keep_alive)
        return await self._request(
            DetokenizeResponse, "POST", "/api/detokenize", json=request.model_dump(exclude_none=True)
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
