"""Where the client connects: ``OLLAMA_HOST`` (or the ``host`` argument) turned into a base URL."""

from __future__ import annotations

import urllib.parse

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
_SCHEME_PORTS = {"http": 80, "https": 443}
# A server told to listen on every interface is reached through loopback.
_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def _parse_host(host: str | None) -> str:
    """Normalize a host setting to ``scheme://host:port[/path]``.

    The scheme defaults to ``http``; the port to 11434, or to the scheme's own port when the
    scheme is written out. A path is kept, without its trailing slash.

    >>> _parse_host(None), _parse_host('')
    ('http://127.0.0.1:11434', 'http://127.0.0.1:11434')
    >>> _parse_host('1.2.3.4'), _parse_host(':56789'), _parse_host('1.2.3.4:56789')
    ('http://1.2.3.4:11434', 'http://127.0.0.1:56789', 'http://1.2.3.4:56789')
    >>> _parse_host('http://1.2.3.4'), _parse_host('https://1.2.3.4'), _parse_host('https://1.2.3.4:56789')
    ('http://1.2.3.4:80', 'https://1.2.3.4:443', 'https://1.2.3.4:56789')
    >>> _parse_host('example.com'), _parse_host('example.com:56789')
    ('http://example.com:11434', 'http://example.com:56789')
    >>> _parse_host('http://example.com'), _parse_host('https://example.com:56789')
    ('http://example.com:80', 'https://example.com:56789')
    >>> _parse_host('example.com/'), _parse_host('example.com:56789/')
    ('http://example.com:11434', 'http://example.com:56789')
    >>> _parse_host('example.com/path'), _parse_host('https://example.com:56789/path/')
    ('http://example.com:11434/path', 'https://example.com:56789/path')
    >>> _parse_host('ollama.com:443')
    'http://ollama.com:443'

    IPv6 addresses keep their brackets:

    >>> _parse_host('[0001:002:003:0004::1]'), _parse_host('[0001:002:003:0004::1]:56789/')
    ('http://[0001:002:003:0004::1]:11434', 'http://[0001:002:003:0004::1]:56789')
    >>> _parse_host('https://[0001:002:003:0004::1]'), _parse_host('[0001:002:003:0004::1]/path')
    ('https://[0001:002:003:0004::1]:443', 'http://[0001:002:003:0004::1]:11434/path')

    Differences from ollama-python: surrounding spaces and quotes (as Ollama's Go code trims them)
    are dropped, and a listen-on-everything address is dialled through loopback, which also works
    where connecting to ``0.0.0.0`` does not (Windows):

    >>> _parse_host(' "example.com:1234" '), _parse_host('0.0.0.0'), _parse_host('[::]:8080')
    ('http://example.com:1234', 'http://127.0.0.1:11434', 'http://[::1]:8080')
    """
    host = (host or "").strip().strip("\"'")
    scheme, sep, rest = host.partition("://")
    if sep:
        scheme = scheme.lower()
        port = _SCHEME_PORTS.get(scheme, DEFAULT_PORT)
    else:
        scheme, rest, port = "http", host, DEFAULT_PORT

    parts = urllib.parse.urlsplit(f"{scheme}://{rest}")
    hostname = parts.hostname or DEFAULT_HOST
    hostname = _UNSPECIFIED.get(hostname, hostname)
    port = parts.port or port
    if ":" in hostname:
        hostname = f"[{hostname}]"

    path = parts.path.strip("/")
    return f"{scheme}://{hostname}:{port}/{path}" if path else f"{scheme}://{hostname}:{port}"
