"""Images in a request: checked here, before any runner sees them, and tagged into the prompt as Ollama tags
them (``[img-N]`` before a message's text, or in place of an ``[img]`` the text already has); the runner
swaps each tag for the image's embeddings (corral.runner.vision)."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from typing import Any

import anyio

from corral.api.errors import BadRequest

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
# A 20k x 20k image is 1.2 GB of pixels once decoded; a vision encoder sees a few hundred pixels a side anyway
MAX_PIXELS = 64 * 1024 * 1024
MARKER = re.compile(r"\[img-\d+\]")


def _check(data: bytes, n: int) -> None:
    from PIL import Image

    if not data:
        raise BadRequest(f"invalid image {n}: it is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.format not in FORMATS:
                    raise BadRequest(f"invalid image {n}: {img.format} is not supported (PNG, JPEG, WebP or GIF)")
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise BadRequest(f"invalid image {n}: it has no pixels")
                if width * height > MAX_PIXELS:
                    raise BadRequest(f"invalid image {n}: {width}x{height} pixels is too large "
                                     f"(at most {MAX_PIXELS} pixels)")
                img.load()  # a truncated or corrupt file fails here, not in the runner
    except BadRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(f"invalid image {n}: too large (at most {MAX_PIXELS} pixels)") from None
    except Exception as exc:  # Pillow raises several kinds for data that is not a usable image
        raise BadRequest(f"invalid image {n}: {exc}") from None


async def check_images(images: list[str]) -> None:
    """Decode every image once, off the event loop: a 400 naming the first bad one."""
    if not images:
        return

    def work() -> None:
        for n, text in enumerate(images):
            try:
                data = base64.b64decode(text, validate=False)
            except (binascii.Error, ValueError):
                raise BadRequest(f"invalid image {n}: not base64") from None
            _check(data, n)

    await anyio.to_thread.run_sync(work)


def tag_images(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Messages with their images replaced by tags in their text, and the images in tag order."""
    images: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        attached = m.get("images") or []
        if not attached:
            out.append(m)
            continue
        content, prefix = str(m.get("content") or ""), ""
        for image in attached:
            tag = f"[img-{len(images)}]"
            images.append(image)
            if "[img]" in content:
                content = content.replace("[img]", tag, 1)
            else:
                prefix += tag
        out.append({**m, "content": prefix + content, "images": None})
    return out, images
