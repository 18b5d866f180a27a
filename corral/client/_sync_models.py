"""``Client``'s model management: ``pull push create create_blob list delete copy show ps stop``."""

from __future__ import annotations

import os
from typing import Literal, overload

from corral.client._base import (
    Messages,
    OptionsArg,
    file_digest,
)
from corral.client._options import Digests, License
from corral.client._requests import (
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    GenerateRequest,
    PullRequest,
    PushRequest,
    ShowRequest,
)
from corral.client._responses import (
    GenerateResponse,
    ListResponse,
    ProcessResponse,
    ProgressResponse,
    ShowResponse,
    StatusResponse,
)
from corral.client._stream import Stream
from corral.client._transport import SyncTransport


class SyncModels(SyncTransport):
    """Managing models: the store (list, show, create, copy, delete), registries, what is loaded."""

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
        """Download ``model`` from its registry (POST /api/pull); ``insecure`` allows plain HTTP.

        Returns the final ``ProgressResponse`` (``status='success'``); with ``stream=True``, a ``Stream`` of
        progress parts (``close()`` it, or leave its ``with`` block, to cancel). Without ``stream`` nothing
        arrives before the end, so a client ``timeout`` has to cover the whole transfer.
        """
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
        """Upload ``model`` to its registry (POST /api/push); ``insecure`` allows plain HTTP.

        Returns the final ``ProgressResponse`` (``status='success'``); with ``stream=True``, a ``Stream`` of
        progress parts (``close()`` it, or leave its ``with`` block, to cancel). Without ``stream`` nothing
        arrives before the end, so a client ``timeout`` has to cover the whole transfer.
        """
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

        ``files`` and ``adapters`` map file names to digests returned by ``create_blob``; ``system``,
        ``template``, ``license``, ``parameters`` and ``messages`` replace the base model's.

        Returns the final ``ProgressResponse`` (``status='success'``); with ``stream=True``, a ``Stream`` of
        progress parts (``close()`` it, or leave its ``with`` block, to cancel). Without ``stream`` nothing
        arrives before the end, so a client ``timeout`` has to cover the whole transfer.
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
