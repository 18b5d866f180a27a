"""One registry conversation: httpx underneath, authentication and error texts on top.

A request goes out with the authorization earned so far (none at first).  A ``401`` is answered
once (see :mod:`corral.registry.auth`) and the request repeated; a second ``401`` is final.  The
``Authorization`` header only ever goes to the registry's own host: a blob redirected to storage
elsewhere (a CDN, a presigned bucket URL) is fetched without it, which httpx also enforces on
cross-origin redirects.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

from corral.registry.auth import Credentials, find_credentials, no_credentials_hint, parse_challenge, request_token
from corral.registry.endpoint import Endpoint, parse_registry
from corral.registry.errors import (
    ManifestNotFound,
    RegistryError,
    RegistryResponseError,
    RegistryUnreachable,
    Unauthorized,
    describe_errors,
)
from corral.registry.identity import Identity
from corral.registry.options import RegistryOptions
from corral.store.names import DEFAULT_HOST

__all__ = ["RegistryClient"]

log = logging.getLogger("corral.registry")


def _unreachable(endpoint: Endpoint, exc: httpx.TransportError) -> RegistryUnreachable:
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        text = f"cannot reach registry {endpoint.host}: {reason}"
        if endpoint.host.lower() == DEFAULT_HOST:
            text += " (without internet access, point CORRAL_REGISTRY at a registry of your own)"
    else:
        text = f"connection to registry {endpoint.host} failed: {reason}"
    return RegistryUnreachable(text)


class RegistryClient:
    """Requests to one :class:`Endpoint`; use as ``async with RegistryClient(...) as client``."""

    def __init__(self, endpoint: Endpoint, options: RegistryOptions, *, username: str = "",
                 password: str = "", authorization: str | None = None) -> None:
        self.endpoint = endpoint
        self.options = options
        self._username = username
        self._password = password
        self._authorization = authorization
        self._credentials_tried = False
        timeout = httpx.Timeout(options.stall_timeout, connect=options.connect_timeout)
        self.http = httpx.AsyncClient(timeout=timeout, follow_redirects=True,
                                      headers={"User-Agent": options.user_agent},
                                      event_hooks=options.event_hooks or {})

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.http.aclose()

    @property
    def authorization(self) -> str | None:
        """What this client earned, to start another one for the same registry without a new 401."""
        return self._authorization

    # -- helpers -----------------------------------------------------------------------------

    def absolute(self, location: str) -> str:
        """A ``Location`` header made absolute against the registry (distribution may send paths)."""
        return urljoin(self.endpoint.base_url + "/", location)

    def _headers(self, url: str, headers: Mapping[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self._authorization and urlsplit(url).netloc.lower() == self.endpoint.host.lower():
            out["Authorization"] = self._authorization
        return out

    def _credentials(self) -> Credentials | None:
        default_host = DEFAULT_HOST
        if self.options.default_registry:
            default_host = parse_registry(self.options.default_registry)[0]
        return find_credentials(self.endpoint.host, default_host=default_host, username=self._username,
                                password=self._password, auth_file=self.options.auth_file)

    async def _authenticate(self, response: httpx.Response) -> None:
        """Earn an authorization for the challenge in ``response`` (a 401), or raise Unauthorized."""
        host = self.endpoint.host
        detail = self._unauthorized_text(response)
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        credentials = self._credentials()
        if challenge is None or challenge.scheme == "basic":
            if credentials is None:
                raise Unauthorized(detail + no_credentials_hint(host))
            if self._credentials_tried:
                raise Unauthorized(f"{detail}; {host} refused the credentials from {credentials.source}")
            self._credentials_tried = True
            self._authorization = credentials.basic()
            return
        if challenge.scheme != "bearer":
            raise Unauthorized(f"{detail}; unsupported authentication scheme {challenge.scheme!r}")
        identity = Identity(self.options.key_path)
        token = await request_token(self.http, challenge, host, credentials, identity)
        self._authorization = f"Bearer {token}"

    @staticmethod
    def _unauthorized_text(response: httpx.Response) -> str:
        detail = describe_errors(401, response.content) if response.content else "authentication required"
        return detail if detail.startswith("unauthorized") else f"unauthorized: {detail}"

    def error_for(self, response: httpx.Response, *, manifest: bool = False) -> RegistryResponseError:
        """The error for a failed, already read response."""
        if response.status_code == 404 and manifest:
            return ManifestNotFound()
        message = describe_errors(response.status_code, response.content)
        if response.status_code == 401:
            return Unauthorized(self._unauthorized_text(response))
        return RegistryResponseError(response.status_code, message)

    # -- requests ----------------------------------------------------------------------------

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      content: bytes | None = None, follow_redirects: bool = True) -> httpx.Response:
        """Send, answering one 401; the body is read.  Errors other than 401 are the caller's."""
        async with self.stream(method, url, headers=headers, content=content,
                               follow_redirects=follow_redirects) as response:
            await response.aread()
            return response

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                     content: bytes | None = None, follow_redirects: bool = True) -> AsyncIterator[httpx.Response]:
        """Like :meth:`request`, with the body left to read from the yielded response."""
        for attempt in range(2):
            request = self.http.build_request(method, url, headers=self._headers(url, headers), content=content)
            try:
                response = await self.http.send(request, stream=True, follow_redirects=follow_redirects)
            except httpx.TransportError as e:
                raise _unreachable(self.endpoint, e) from None
            if response.status_code == 401:
                try:
                    await response.aread()
                except httpx.TransportError:
                    pass
                await response.aclose()
                if attempt == 0:
                    await self._authenticate(response)
                    continue
                raise self._final_unauthorized(response)
            try:
                yield response
            finally:
                await response.aclose()
            return
        raise RegistryError("unreachable")  # pragma: no cover - the loop always returns or raises

    def _final_unauthorized(self, response: httpx.Response) -> Unauthorized:
        error = self._unauthorized_text(response)
        credentials = self._credentials()
        if credentials is not None:
            return Unauthorized(f"{error}; {self.endpoint.host} refused the credentials from {credentials.source}")
        return Unauthorized(f"{error}{no_credentials_hint(self.endpoint.host)}")
