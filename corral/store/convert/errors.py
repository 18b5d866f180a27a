"""The one error conversion raises."""

from __future__ import annotations

from corral.store.errors import StoreError

__all__ = ["ConvertError"]


class ConvertError(StoreError):
    """A Hugging Face folder that cannot be converted: a missing or malformed file, a tensor that is not what
    the architecture needs, an architecture corral does not know. The message names the file, tensor or
    architecture; the server answers it as a 400."""
