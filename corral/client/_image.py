"""Images for multimodal models: whatever the caller holds (bytes, a path, base64), sent as base64."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import BaseModel, model_serializer


class Image(BaseModel):
    """One image for a multimodal model, serialized to base64 when the request is built.

    ``value`` may be raw ``bytes``, a ``Path``, a path string, a base64 string, or a ``data:`` URL.
    A string that names a missing ``.png``/``.jpg``/``.jpeg``/``.webp`` file, or that is neither a
    file nor base64, raises ``ValueError`` at serialization time.
    """

    value: str | bytes | Path

    @model_serializer
    def _to_base64(self) -> str:
        value = self.value
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, Path):
            return base64.b64encode(value.read_bytes()).decode()
        return _encode_image_string(value)


_IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp")


def _encode_image_string(value: str) -> str:
    try:
        path = Path(value)
        if path.is_file():
            return base64.b64encode(path.read_bytes()).decode()
    except (OSError, ValueError):
        pass  # too long or otherwise impossible as a path: it can only be data
    if value.rsplit(".", 1)[-1].lower() in _IMAGE_SUFFIXES:
        raise ValueError(f"File {value} does not exist")
    if value.startswith("data:") and ";base64," in value:
        value = value.split(";base64,", 1)[1]
    try:
        base64.b64decode(value)
    except (binascii.Error, ValueError):
        raise ValueError("Invalid image data, expected base64 string or path to image file") from None
    return value
