"""The store's Go JSON: blobs and manifests as Ollama's ``json.NewEncoder(f).Encode`` writes them.

Blob digests are sha256 of these bytes, so a params or config blob that differs from Ollama's by one space
or one escaped ``<`` gets another digest. The encoder is :mod:`corral.gocodec`'s; this module fixes the
store's one choice, below, so that blobs created before the encoders were merged keep their digests.
"""

from __future__ import annotations

from typing import Any

from corral import gocodec
from corral.gocodec import format_json_float as format_float

__all__ = ["dumps", "format_float"]

# The store has always written \b and \f as \u0008 and \u000c (Go before 1.22). Ollama built with a newer Go
# writes "\b" and "\f", so a params blob holding one of those two characters (a stop sequence, say) gets a
# different digest from Ollama's; switching changes the digest of such blobs corral has already written.
PRE_GO122_ESCAPES = True


def dumps(obj: Any, *, sort_keys: bool = False, newline: bool = False) -> bytes:
    """Encode ``obj`` as Go would.

    ``sort_keys`` mimics a Go ``map`` (keys sorted); leave it off for values built in struct field order.
    ``newline`` mimics ``json.Encoder.Encode``, which Ollama uses for the blobs it writes.
    """
    return gocodec.dumps(obj, sort_keys=sort_keys, newline=newline, pre_go122_escapes=PRE_GO122_ESCAPES)
