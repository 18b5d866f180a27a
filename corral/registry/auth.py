"""Registry credentials and the answers to a ``401``: HTTP basic, a bearer token, Ollama's signature.

Where credentials come from, first match wins (a registry only ever sees them after it answered
401, and they never appear in a log or an error message):

1. ``username``/``password`` of the API request (``/api/pull``, ``/api/push``);
2. ``CORRAL_REGISTRY_USERNAME`` / ``CORRAL_REGISTRY_PASSWORD``, for the default registry only
   (``CORRAL_REGISTRY`` when set, else ``registry.ollama.ai``);
3. a file in Docker's ``config.json`` format (``{"auths": {"host:port": {"auth": base64("user:pass")}}}``
   or ``username``/``password`` keys): ``CORRAL_REGISTRY_AUTH_FILE``, else
   ``~/.ollama/registry-auth.json``, else ``~/.docker/config.json`` (so ``docker login`` works too).

A challenge is answered thus:

- ``Basic``: the credentials, or :class:`~corral.registry.errors.Unauthorized`;
- ``Bearer realm=...,service=...,scope=...``: a token from the realm, asked for with the
  credentials as basic auth; without credentials, with Ollama's ed25519 signature when the realm is
  on the registry's own host (Ollama refuses other realms; so does corral for signed requests),
  else anonymously (public repositories on token-based registries).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from corral.registry.errors import RegistryUnreachable, Unauthorized, describe_errors
from corral.registry.identity import Identity, new_nonce, signed_text

__all__ = ["Challenge", "Credentials", "find_credentials", "parse_challenge", "request_token"]

log = logging.getLogger("corral.registry")

ENV_USERNAME = "CORRAL_REGISTRY_USERNAME"
ENV_PASSWORD = "CORRAL_REGISTRY_PASSWORD"
ENV_AUTH_FILE = "CORRAL_REGISTRY_AUTH_FILE"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    source: str
    """Where they came from, for messages (never the values themselves)."""

    def __repr__(self) -> str:  # keep passwords out of tracebacks and logs
        return f"Credentials(username={self.username!r}, source={self.source!r})"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def _auth_files() -> list[Path]:
    env = os.environ.get(ENV_AUTH_FILE, "").strip()
    if env:
        return [Path(env).expanduser()]
    home = Path.home()
    return [home / ".ollama" / "registry-auth.json", home / ".docker" / "config.json"]


def _from_file(path: Path, host: str) -> Credentials | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("cannot read registry credentials from %s: %s", path, type(e).__name__)
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = host.lower()
    for key, entry in auths.items():
        # Docker writes keys as bare hosts or as URLs ("https://host/v1/").
        key_host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
        if key_host.lower() != wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]), str(path))
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                user, _, password = base64.b64decode(auth).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                log.warning("malformed auth entry for %s in %s", host, path)
                return None
            return Credentials(user, password, str(path))
    return None


def find_credentials(host: str, *, default_host: str, username: str = "", password: str = "",
                     env: Mapping[str, str] | None = None, auth_file: Path | None = None) -> Credentials | None:
    """Credentials for ``host`` (``host[:port]`` as requests go), in the order of the module doc."""
    if username and password:
        return Credentials(username, password, "the request")
    e = os.environ if env is None else env
    user, pw = e.get(ENV_USERNAME, ""), e.get(ENV_PASSWORD, "")
    if user and pw and host.lower() == default_host.lower():
        return Credentials(user, pw, f"{ENV_USERNAME}/{ENV_PASSWORD}")
    for path in [auth_file] if auth_file is not None else _auth_files():
        found = _from_file(path, host)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Challenge:
    scheme: str
    """``basic`` or ``bearer`` (lower case)."""
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*,?')


def parse_challenge(header: str) -> Challenge | None:
    """``WWW-Authenticate: Bearer realm="...",service="...",scope="a b"`` (quoted commas allowed)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break
        value = m.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1).lower()] = value
        pos = m.end()
    return Challenge(scheme.lower(), params)


def _token_url(challenge: Challenge, *, signed: bool) -> str:
    realm = challenge.realm
    query: list[tuple[str, str]] = []
    base, _, existing = realm.partition("?")
    query.extend(parse_qsl(existing, keep_blank_values=True))
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    for scope in challenge.params.get("scope", "").split(" "):
        if scope:
            query.append(("scope", scope))
    if signed:
        query += [("ts", str(int(time.time()))), ("nonce", new_nonce())]
    # Go's url.Values.Encode sorts by key; Ollama signs that exact text, so we do the same.
    query.sort(key=lambda kv: kv[0])
    return f"{base}?{urlencode(query)}" if query else base


async def request_token(client: httpx.AsyncClient, challenge: Challenge, registry_host: str,
                        credentials: Credentials | None, identity: Identity) -> str:
    """A bearer token for ``challenge`` (see the module doc for which way it is asked for)."""
    realm = urlsplit(challenge.realm)
    if realm.scheme not in ("http", "https") or not realm.netloc:
        raise Unauthorized(f"unauthorized: the registry's token realm {challenge.realm!r} is not a URL")
    headers: dict[str, str] = {}
    signed = False
    if credentials is not None:
        headers["Authorization"] = credentials.basic()
    elif realm.netloc.lower() == registry_host.lower():
        signed = True
    url = _token_url(challenge, signed=signed)
    if signed:
        headers["Authorization"] = identity.authorization(signed_text("GET", str(httpx.URL(url))))
    try:
        response = await client.get(url, headers=headers)
    except httpx.TransportError as e:
        raise RegistryUnreachable(f"cannot reach the token service {realm.netloc}: {e}") from None
    if response.status_code >= 400:
        detail = describe_errors(response.status_code, response.content)
        hint = _hint(registry_host, credentials, signed, identity)
        raise Unauthorized(f"unauthorized: token request to {realm.netloc} failed ({detail}){hint}")
    try:
        body = response.json()
    except ValueError:
        body = None
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise Unauthorized(f"unauthorized: the token service {realm.netloc} returned no token")
    return token


def _hint(host: str, credentials: Credentials | None, signed: bool, identity: Identity) -> str:
    if credentials is not None:
        return f"; check the credentials for {host} from {credentials.source}"
    if signed:
        return f"; this registry may not know the key {identity.path}.pub"
    return no_credentials_hint(host)


def no_credentials_hint(host: str) -> str:
    return (f"; no credentials for {host}: set {ENV_USERNAME}/{ENV_PASSWORD} (default registry) "
            f"or add it to {ENV_AUTH_FILE} (Docker config.json format)")
