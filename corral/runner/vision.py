"""Images for a model with a projector, through llama.cpp's libmtmd (``llama_cpp.mtmd_cpp``).

The server writes Ollama's ``[img-N]`` markers into the prompt and sends the images (base64, already checked);
here each marker becomes mtmd's own, the images become bitmaps (decoded with Pillow: PNG, JPEG, WebP, the first
frame of a GIF), and mtmd splits the prompt into text chunks and image chunks.

The rest of the runner thinks in token lists, so an image stands in the prompt as ``n_tokens`` copies of one
negative number derived from its bytes: prefix matching (a follow-up turn, another slot, the host cache) then
treats the same image as the same tokens and another image as different, and the decode loop knows to hand
the span to :meth:`Vision.evaluate` instead of its token batch.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from typing import Any

import llama_cpp as ll
from llama_cpp import mtmd_cpp as mt

MARKER = re.compile(r"\[img-(\d+)\]")


class ImageError(ValueError):
    """An image the runner cannot use (the request fails; the runner lives)."""


@dataclass
class MediaPrompt:
    tokens: list[int]
    spans: dict[int, Any] = field(default_factory=dict)  # prompt index of an image's first token -> its chunk
    chunks: Any = None  # mtmd_input_chunks owning those chunks; freed with :meth:`Vision.release`


def image_token(data: bytes) -> int:
    """The stand-in token of an image: negative (no vocabulary has it), the same for the same bytes."""
    return -1 - int.from_bytes(hashlib.sha256(data).digest()[:4], "little") % (1 << 30)


def rgb_of(data: bytes) -> tuple[int, int, bytes]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)  # a GIF's (or an animated WebP's) first frame
            rgb = img.convert("RGB")
    except Exception as exc:  # Pillow raises several kinds for a bad file
        raise ImageError(f"invalid image: {exc}") from None
    return rgb.width, rgb.height, rgb.tobytes()


_log_cb: Any = None


class Vision:
    def __init__(self, projector: str, model: Any, n_threads: int, bos: int = -1) -> None:
        global _log_cb
        self.bos = bos
        if _log_cb is None and not os.environ.get("CORRAL_LLAMA_VERBOSE"):
            @ll.llama_log_callback
            def quiet(level: int, text: bytes, _user: Any) -> None:
                if level in (3, 4):  # warnings and errors only: mtmd logs every chunk otherwise
                    os.write(2, text)
            _log_cb = quiet
            mt.mtmd_helper_log_set(_log_cb, ctypes.c_void_p(0))
        params = mt.mtmd_context_params_default()
        params.use_gpu = False
        params.print_timings = False
        params.n_threads = n_threads
        self.ctx = mt.mtmd_init_from_file(projector.encode(), model, params)
        if not self.ctx:
            raise RuntimeError(f"failed to load the projector {projector}")
        if not mt.mtmd_support_vision(self.ctx):
            raise RuntimeError(f"the projector {projector} has no vision encoder")
        if mt.mtmd_decode_use_mrope(self.ctx):
            # M-RoPE models (Qwen2-VL) place an image on fewer positions than it has tokens; the loop counts
            # one position a token
            raise RuntimeError("projectors with M-RoPE positions are not supported")
        self.marker = mt.mtmd_default_marker().decode()

    def tokenize(self, prompt: str, images: list[str]) -> MediaPrompt:
        """The prompt's tokens with each referenced image's span of stand-in tokens."""
        blobs = [base64.b64decode(b, validate=False) for b in images]
        order: list[int] = []

        def swap(m: re.Match[str]) -> str:
            n = int(m.group(1))
            if n >= len(blobs):
                return m.group(0)  # not an image of this request: left as text
            order.append(n)
            return self.marker
        text = MARKER.sub(swap, prompt)
        bitmaps = (mt.mtmd_bitmap_p_ctypes * max(1, len(order)))()
        made: list[Any] = []
        try:
            for i, n in enumerate(order):
                w, h, rgb = rgb_of(blobs[n])
                pixels = (ctypes.c_uint8 * len(rgb)).from_buffer_copy(rgb)
                bitmap = mt.mtmd_bitmap_init(w, h, pixels)  # copies the pixels
                if not bitmap:
                    raise ImageError(f"image {n}: mtmd could not take it")
                made.append(bitmap)
                # some projectors cut one image into several chunks (tiles): the id says whose a chunk is
                mt.mtmd_bitmap_set_id(bitmap, str(i).encode())
                bitmaps[i] = bitmap
            raw = text.encode()
            inp = mt.mtmd_input_text(text=raw, text_len=len(raw), add_special=True, parse_special=True)
            chunks = mt.mtmd_input_chunks_init()
            rc = mt.mtmd_tokenize(self.ctx, chunks, ctypes.byref(inp), bitmaps, len(order))
            if rc != 0:
                mt.mtmd_input_chunks_free(chunks)
                raise ImageError(f"the images could not be prepared (mtmd_tokenize returned {rc})")
        finally:
            for bitmap in made:
                mt.mtmd_bitmap_free(bitmap)
        out = MediaPrompt([], chunks=chunks)
        try:
            for i in range(mt.mtmd_input_chunks_size(chunks)):
                chunk = mt.mtmd_input_chunks_get(chunks, i)
                if mt.mtmd_input_chunk_get_type(chunk) == mt.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    size = ctypes.c_size_t(0)
                    ptr = mt.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(size))
                    out.tokens.extend(ptr[:size.value] if size.value and ptr else [])
                elif mt.mtmd_input_chunk_get_type(chunk) == mt.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    which = int((mt.mtmd_input_chunk_get_id(chunk) or b"0").decode())
                    out.spans[len(out.tokens)] = chunk
                    out.tokens.extend([image_token(blobs[order[which]])] * self.n_tokens(chunk))
                else:
                    raise ImageError("this projector's input is not an image")
        except Exception:
            self.release(out)
            raise
        if len(out.tokens) >= 2 and out.tokens[0] == out.tokens[1] == self.bos:
            # a template that writes the BOS itself plus mtmd adding one gives two (as Engine.tokenize drops)
            out.tokens = out.tokens[1:]
            out.spans = {at - 1: chunk for at, chunk in out.spans.items()}
        return out

    @staticmethod
    def n_tokens(chunk: Any) -> int:
        return int(mt.mtmd_input_chunk_get_n_tokens(chunk))

    def evaluate(self, lctx: Any, chunk: Any, n_past: int, seq: int, n_batch: int) -> int:
        """Encode one image and decode its embeddings into a sequence's cache at ``n_past``; the new n_past."""
        new = ctypes.c_int32(0)  # llama_pos
        rc = mt.mtmd_helper_eval_chunk_single(self.ctx, lctx, chunk, n_past, seq, n_batch, False, ctypes.byref(new))
        if rc != 0:
            raise ImageError(f"the image could not be evaluated ({rc})")
        return int(new.value)

    @staticmethod
    def release(prompt: MediaPrompt) -> None:
        if prompt.chunks is not None:
            mt.mtmd_input_chunks_free(prompt.chunks)
            prompt.chunks = None
