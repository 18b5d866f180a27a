"""DNS-rebinding guard: a loopback-bound server answers only to local ``Host`` names.

A web page on ``evil.example`` can make the browser resolve ``evil.example`` to 127.0.0.1 and
then talk to a local server "same-origin". The browser still sends ``Host: evil.example``, so a
server that only listens on loopback refuses any Host that is not local. This is Ollama's
``allowedHostsMiddleware`` (``server/routes.go``), rule for rule:

1. The guard applies only when the listener address is loopback. Bound to ``0.0.0.0`` or a LAN
   address the server is meant to be reached by other names, and nothing is checked.
2. The port is stripped from ``Host`` (``[::1]:11434`` -> ``::1``).
3. An IP literal passes if it is loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
   unspecified, or one of this machine's own addresses. corral also passes link-local
   addresses (169.254/16, fe80::/10): they cannot be reached from outside the link, and Ollama
   only misses them because its "own address" check depends on interface enumeration.
4. A name passes if it is empty, ``localhost``, this machine's hostname, or ends in
   ``.localhost``, ``.local`` or ``.internal`` (case-insensitive). For a passing *name*, an
   ``OPTIONS`` request is answered 204 right here, as Ollama does.
5. Anything else gets 403 with an empty body.

Two deliberate differences, both more permissive only for loopback literals: ``[::1]`` without a
port is read as ``::1`` (Go's ``SplitHostPort`` fails on it and Ollama answers 403), and an
IPv4-mapped IPv6 literal is judged by its IPv4 address.

Order matters: Ollama runs CORS *outside* this guard, so a browser preflight is answered by CORS
(with its ``Access-Control-*`` headers) before step 4 could answer it bare. Wrap as
``CORSMiddleware(HostGuardMiddleware(app, bind_host=...), extra_origins=...)``.

Pure ASGI (no ``BaseHTTPMiddleware``): streaming responses and disconnect detection pass through
untouched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

__all__ = ["HostGuardMiddleware", "classify_host", "is_loopback_address", "split_host_port"]

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Go's netip.Addr.IsPrivate: RFC 1918 and RFC 4193 only (Python's is_private is much wider)
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
_LOCAL_TLDS = (".localhost", ".local", ".internal")


def split_host_port(hostport: str) -> str:
    """The host part of a ``Host`` header, as Go's ``net.SplitHostPort`` (whole value on error)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return hostport
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            return hostport
        return hostport[1:end]  # "[::1]" alone: lenient, see module docstring
    head, sep, _port = hostport.rpartition(":")
    if not sep or ":" in head or "[" in head or "]" in head:
        return hostport  # no port, or a bare IPv6 address ("too many colons")
    return head


def _parse_ip(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_address(host: str) -> bool:
    """Whether a listener on ``host`` (an IP or a name, as in ``OLLAMA_HOST``) is loopback-only."""
    lowered = host.strip("[]").lower()
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    address = _parse_ip(lowered.split("%")[0])
    if address is None:
        # a name: the listener binds what it resolves to; if it does not resolve, stay guarded
        try:
            address = _parse_ip(socket.gethostbyname(lowered))
        except OSError:
            return True
    return address is not None and address.is_loopback


def _is_local_ip(address: IPAddress) -> bool:
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        return True
    if any(address.version == net.version and address in net for net in _PRIVATE):
        return True
    return address in _own_addresses()


def _own_addresses() -> set[IPAddress]:
    """This machine's interface addresses (Ollama's ``isLocalIP``), best effort, stdlib only."""
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            ip = _parse_ip(str(info[4][0]).split("%")[0])
            if ip is not None:
                found.add(ip)
    found |= _linux_interface_addresses()
    return found


def _linux_interface_addresses() -> set[IPAddress]:
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError, ValueError), open("/proc/net/if_inet6") as table:
        for line in table:
            hex_addr = line.split()[0]
            found.add(ipaddress.IPv6Address(bytes.fromhex(hex_addr)))
    try:
        import fcntl
    except ImportError:  # not on Linux/Unix
        return found
    siocgifaddr = 0x8915
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                request = struct.pack("256s", name.encode()[:15])
                reply = fcntl.ioctl(sock.fileno(), siocgifaddr, request)
                found.add(ipaddress.IPv4Address(reply[20:24]))
    return found


def classify_host(host_header: str, hostname: str) -> Literal["ip", "name"] | None:
    """``"ip"`` or ``"name"`` for an allowed ``Host`` header (rules 2-4), ``None`` to refuse it."""
    host = split_host_port(host_header)
    address = _parse_ip(host.split("%")[0]) if host else None
    if address is not None and _is_local_ip(address):
        return "ip"
    lowered = host.lower()
    if lowered in ("", "localhost") or lowered == hostname.lower() or lowered.endswith(_LOCAL_TLDS):
        return "name"
    return None


class HostGuardMiddleware:
    """The guard as ASGI middleware (module docstring).

    ``bind_host`` is the address the server listens on (``Settings.host``). Without it the guard
    judges each connection by the local address it arrived on (``scope["server"]``), which is
    stricter than Ollama for a server bound to all interfaces: connections made over loopback
    are then checked too.
    """

    def __init__(self, app: ASGIApp, bind_host: str | None = None, *, hostname: str | None = None) -> None:
        self.app = app
        self.hostname = socket.gethostname() if hostname is None else hostname
        self.always = None if bind_host is None else is_loopback_address(bind_host)

    def _applies(self, scope: Scope) -> bool:
        if self.always is not None:
            return self.always
        server = scope.get("server")
        if not server:
            return True  # unix socket or unknown listener: Ollama guards these too
        return is_loopback_address(str(server[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._applies(scope):
            await self.app(scope, receive, send)
            return
        host = ""
        for name, value in scope.get("headers") or ():
            if name == b"host":
                host = value.decode("latin-1")
                break
        verdict = classify_host(host, self.hostname)
        if verdict is None:
            await _refuse(scope, send, 403)
            return
        if verdict == "name" and scope["type"] == "http" and scope["method"] == "OPTIONS":
            await _refuse(scope, send, 204)
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, status: int) -> None:
    if scope["type"] == "websocket":
        # closing before accept makes the server answer the handshake with 403
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [] if status == 204 else [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
