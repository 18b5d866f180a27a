"""corral.registry: the OCI distribution client behind ``pull`` and ``push``.

It speaks what every OCI registry speaks (Docker's ``distribution``, Harbor, Zot, GitLab's, ...) and
what Ollama's own registry expects, so ``registry.ollama.ai`` names and a company's registry work
alike.  ``CORRAL_REGISTRY`` serves the default host from another registry (sites without internet).

- :mod:`~corral.registry.endpoint`  names to URLs, ``insecure``, ``CORRAL_REGISTRY``
- :mod:`~corral.registry.client`    requests, 401 handling, error texts
- :mod:`~corral.registry.auth`      credentials, challenges, tokens;  :mod:`~corral.registry.identity` the ed25519 key
- :mod:`~corral.registry.download`  ranged, parallel, resumable, shared, verified blob downloads
- :mod:`~corral.registry.pull`, :mod:`~corral.registry.push`  the two operations

It imports nothing of the server or the scheduler; progress goes to a callback.
"""

from __future__ import annotations

from corral.registry.endpoint import Endpoint, parse_registry, resolve
from corral.registry.errors import (
    BlobDigestMismatch,
    InsecureProtocol,
    ManifestNotFound,
    RegistryError,
    RegistryResponseError,
    RegistryUnreachable,
    Unauthorized,
)
from corral.registry.options import Progress, ProgressFn, RegistryOptions
from corral.registry.pull import pull_model
from corral.registry.push import push_model

__all__ = [
    "BlobDigestMismatch",
    "Endpoint",
    "InsecureProtocol",
    "ManifestNotFound",
    "Progress",
    "ProgressFn",
    "RegistryError",
    "RegistryOptions",
    "RegistryResponseError",
    "RegistryUnreachable",
    "Unauthorized",
    "parse_registry",
    "pull_model",
    "push_model",
    "resolve",
]
