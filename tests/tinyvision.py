"""A tiny random vision model pair for tests: a llama text model and a llava-style ("mlp") CLIP projector.

Both are written with the ``gguf`` package and numpy, deterministically from a seed, and are small enough that
llama.cpp's libmtmd (vendored in llama-cpp-python 0.3.36) loads and runs them on CPU in well under a second.

* The text model is a ``llama`` with a byte-level GPT-2 BPE vocabulary of its own (256 byte tokens, a few
  merges, ``<|startoftext|>``/``<|endoftext|>``), so it needs no other GGUF to borrow a tokenizer from.
* The projector follows clip.cpp's ``PROJECTOR_TYPE_MLP`` (LLaVA 1.5): a CLIP ViT with a class token, a
  pre-layernorm, and ``mm.0``/``mm.2`` linear layers around a GELU whose output width is the text model's.
  mtmd resizes every image to ``image_size`` square, so each image is ``(image_size / patch_size)**2`` tokens.

``python -m tests.tinyvision DIR`` writes both into DIR and checks, with llama_cpp's low-level API and
``llama_cpp.mtmd_cpp``, that images reach the text model (see :func:`self_check`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType, TokenType

__all__ = [
    "TEXT",
    "VISION",
    "TextShape",
    "VisionShape",
    "gradient_rgb",
    "n_image_tokens",
    "self_check",
    "solid_rgb",
    "write_projector",
    "write_text_model",
]

# llama.cpp marks "<|endoftext|>" as end-of-generation by its text; another EOS name draws a load warning.
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# Words whose left-to-right merges make up the BPE table: enough that ordinary prompts use merged tokens,
# which exercises the ranks llama.cpp reads from tokenizer.ggml.merges.
_WORDS = ("Ġthe", "Ġimage", "Ġis", "Ġwhat", "What", "Ġcolour", "Ġcolor", "Ġthis", "Ġa", "Ġred", "Ġblue",
          "Ġdescribe", "Describe", "Ġpicture", "in", "on", "er", "at")


@dataclass(frozen=True)
class TextShape:
    n_embd: int = 64
    n_ff: int = 128
    n_layer: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ctx: int = 1024


@dataclass(frozen=True)
class VisionShape:
    image_size: int = 32
    patch_size: int = 8
    n_embd: int = 48
    n_ff: int = 96  # != n_embd, else clip.cpp's fix-up for old llava files swaps ffn up/down (and warns)
    n_layer: int = 2  # llava reads the second-to-last layer, so the last one is loaded but never run
    n_head: int = 4
    proj_hidden: int = 64


TEXT = TextShape()
VISION = VisionShape()


def n_image_tokens(shape: VisionShape = VISION) -> int:
    """Embeddings one image becomes: one per patch (the class token is dropped by the llava projector)."""
    return (shape.image_size // shape.patch_size) ** 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, which llama.cpp's BPE decoding inverts."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    out: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def _vocab() -> tuple[list[str], list[int], list[str]]:
    """Tokens, their types and the merges: bytes first, then merged pieces, then the two control tokens."""
    byte_map = _bytes_to_unicode()
    tokens = [byte_map[b] for b in range(256)]
    known = set(tokens)
    merges: list[str] = []
    for word in _WORDS:
        piece = word[0]
        for ch in word[1:]:
            merged = piece + ch
            if merged not in known:
                merges.append(f"{piece} {ch}")
                tokens.append(merged)
                known.add(merged)
            piece = merged
    types = [int(TokenType.NORMAL)] * len(tokens) + [int(TokenType.CONTROL)] * 2
    tokens += [BOS, EOS]
    return tokens, types, merges


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    # numpy shape (n_out, n_in) is ggml [n_in, n_out]: what llama.cpp and clip.cpp multiply x by.
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _close(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_text_model(path: str | Path, seed: int = 0, *, shape: TextShape = TEXT) -> Path:
    """A random F32 llama model with its own byte-level BPE vocabulary; returns ``path``."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab()
    head_dim = shape.n_embd // shape.n_head
    w = GGUFWriter(str(path), "llama")
    w.add_type("model")
    w.add_name("tiny-random-llava-text")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # a named pre-tokenizer, else llama.cpp warns "GENERATION QUALITY WILL BE DEGRADED"
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index(BOS))
    w.add_eos_token_id(tokens.index(EOS))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_block_count(shape.n_layer)
    w.add_context_length(shape.n_ctx)
    w.add_embedding_length(shape.n_embd)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(LlamaFileType.ALL_F32)

    d, kv = shape.n_embd, head_dim * shape.n_head_kv
    # No output.weight: llama.cpp ties the output projection to token_embd.
    w.add_tensor("token_embd.weight", _normal(rng, (len(tokens), d), 1.0))
    w.add_tensor("output_norm.weight", np.ones(d, dtype=np.float32))
    for i in range(shape.n_layer):
        blk = f"blk.{i}"
        w.add_tensor(f"{blk}.attn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(f"{blk}.attn_q.weight", _normal(rng, (d, d), 0.2))
        w.add_tensor(f"{blk}.attn_k.weight", _normal(rng, (kv, d), 0.2))
        w.add_tensor(f"{blk}.attn_v.weight", _normal(rng, (kv, d), 0.2))
        w.add_tensor(f"{blk}.attn_output.weight", _normal(rng, (d, d), 0.2))
        w.add_tensor(f"{blk}.ffn_norm.weight", np.ones(d, dtype=np.float32))
        w.add_tensor(f"{blk}.ffn_gate.weight", _normal(rng, (shape.n_ff, d), 0.2))
        w.add_tensor(f"{blk}.ffn_up.weight", _normal(rng, (shape.n_ff, d), 0.2))
        w.add_tensor(f"{blk}.ffn_down.weight", _normal(rng, (d, shape.n_ff), 0.2))
    _close(w)
    return path


def write_projector(path: str | Path, text_width: int = TEXT.n_embd, seed: int = 0, *,
                    shape: VisionShape = VISION, out_scale: float = 1.0) -> Path:
    """A random F32 llava-style mmproj whose embeddings are ``text_width`` wide; returns ``path``.

    ``out_scale`` multiplies ``mm.2`` (the last projection): larger makes image embeddings dominate the prompt.
    """
    path = Path(path)
    rng = np.random.default_rng(seed + 1_000)  # not the text model's stream when both use the same seed
    d, ff, p = shape.n_embd, shape.n_ff, shape.patch_size
    n_pos = n_image_tokens(shape) + 1  # the class token has a position of its own
    w = GGUFWriter(str(path), "clip")
    w.add_type("mmproj")
    w.add_name("tiny-random-llava-mmproj")
    w.add_file_type(LlamaFileType.ALL_F32)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_text_encoder", False)  # ignored by clip.cpp; old llava files carry it
    w.add_bool("clip.use_gelu", True)  # the FFN activation; without it clip.cpp uses quick-GELU
    # clip.cpp reads these with gguf_get_val_u32/f32, which assert the stored type: uint32 and float32 only.
    w.add_uint32("clip.vision.image_size", shape.image_size)
    w.add_uint32("clip.vision.patch_size", p)
    w.add_uint32("clip.vision.embedding_length", d)
    w.add_uint32("clip.vision.feed_forward_length", ff)
    w.add_uint32("clip.vision.projection_dim", text_width)
    w.add_uint32("clip.vision.block_count", shape.n_layer)
    w.add_uint32("clip.vision.attention.head_count", shape.n_head)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])  # required: three float32 each
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    # Conv kernel, ggml [p, p, 3, d]; numpy reverses the order.
    w.add_tensor("v.patch_embd.weight", _normal(rng, (d, 3, p, p), 0.2))
    w.add_tensor("v.class_embd", _normal(rng, (d,), 1.0))
    w.add_tensor("v.position_embd.weight", _normal(rng, (n_pos, d), 0.2))
    w.add_tensor("v.pre_ln.weight", np.ones(d, dtype=np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(d, dtype=np.float32))
    for i in range(shape.n_layer):
        blk = f"v.blk.{i}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"{blk}.{name}.weight", _normal(rng, (d, d), 0.2))
            w.add_tensor(f"{blk}.{name}.bias", np.zeros(d, dtype=np.float32))
        for name in ("ln1", "ln2"):
            w.add_tensor(f"{blk}.{name}.weight", np.ones(d, dtype=np.float32))
            w.add_tensor(f"{blk}.{name}.bias", np.zeros(d, dtype=np.float32))
        w.add_tensor(f"{blk}.ffn_up.weight", _normal(rng, (ff, d), 0.2))
        w.add_tensor(f"{blk}.ffn_up.bias", np.zeros(ff, dtype=np.float32))
        w.add_tensor(f"{blk}.ffn_down.weight", _normal(rng, (d, ff), 0.2))
        w.add_tensor(f"{blk}.ffn_down.bias", np.zeros(d, dtype=np.float32))
    # mm.2 is required: clip.cpp reads the projector's output width (checked against the text model) off it.
    w.add_tensor("mm.0.weight", _normal(rng, (shape.proj_hidden, d), 0.3))
    w.add_tensor("mm.0.bias", np.zeros(shape.proj_hidden, dtype=np.float32))
    w.add_tensor("mm.2.weight", _normal(rng, (text_width, shape.proj_hidden), 0.3 * out_scale))
    w.add_tensor("mm.2.bias", np.zeros(text_width, dtype=np.float32))
    _close(w)
    return path


def solid_rgb(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """Raw RGB24 pixels (row-major, 3 bytes each) of one colour, as mtmd_bitmap_init takes them."""
    return bytes(rgb) * (width * height)


def gradient_rgb(width: int, height: int) -> bytes:
    """Raw RGB24 pixels: red rising left to right, green top to bottom, blue constant."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    img = np.stack([x, y, np.full_like(x, 64.0)], axis=-1)
    return img.astype(np.uint8).tobytes()


def _quiet_logs() -> None:
    """Only warnings and errors from llama.cpp and libmtmd: clip.cpp otherwise logs at debug level."""
    import ctypes
    import os

    import llama_cpp as ll
    from llama_cpp import mtmd_cpp as mt

    @ll.llama_log_callback
    def log(level: int, text: bytes, _user: object) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            os.write(2, text)

    global _log_cb
    _log_cb = log  # the C side keeps only the raw pointer
    ll.llama_log_set(log, ctypes.c_void_p(0))
    # mtmd has a logger of its own; the helper's setter also sets mtmd's (and so clip.cpp's).
    mt.mtmd_helper_log_set(log, ctypes.c_void_p(0))


_log_cb: object = None


def self_check(directory: str | Path, n_predict: int = 8, *, verbose: bool = False) -> None:
    """Write the pair into ``directory``, run it through libmtmd, and assert that images steer generation.

    Prints each run's chunks and greedy tokens; raises AssertionError if an image chunk does not have
    :func:`n_image_tokens` tokens, if two different images (or an image and no image) give the same output,
    or if the same image twice gives different outputs.
    """
    import ctypes

    import llama_cpp as ll
    from llama_cpp import mtmd_cpp as mt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not verbose:
        _quiet_logs()
    t0 = time.perf_counter()
    model_path = write_text_model(directory / "tiny-text.gguf")
    proj_path = write_projector(directory / "tiny-mmproj.gguf", TEXT.n_embd)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()

    ll.llama_backend_init()
    mparams = ll.llama_model_default_params()
    mparams.n_gpu_layers = 0
    mparams.use_extra_bufts = False  # the AMX buffer type faults on these machines (see corral.runner.engine)
    model = ll.llama_model_load_from_file(str(model_path).encode(), mparams)
    assert model, "text model failed to load"
    cparams = ll.llama_context_default_params()
    cparams.n_ctx = 256
    cparams.n_batch = cparams.n_ubatch = 64
    cparams.n_threads = cparams.n_threads_batch = 2
    ctx = ll.llama_init_from_model(model, cparams)
    assert ctx, "context failed to initialise"
    vocab = ll.llama_model_get_vocab(model)
    n_vocab = ll.llama_vocab_n_tokens(vocab)

    mparams_mm = mt.mtmd_context_params_default()
    mparams_mm.use_gpu = False
    mparams_mm.print_timings = False
    mparams_mm.n_threads = 2
    mctx = mt.mtmd_init_from_file(str(proj_path).encode(), model, mparams_mm)
    assert mctx, "mtmd_init_from_file failed"
    assert mt.mtmd_support_vision(mctx)
    marker = mt.mtmd_default_marker().decode()

    def generate(rgb: bytes | None, size: tuple[int, int] = (VISION.image_size, VISION.image_size)) -> list[int]:
        # One sequence, cleared each run: every run starts from an empty KV cache.
        ll.llama_memory_clear(ll.llama_get_memory(ctx), True)
        prompt = f"Describe {marker} the image." if rgb is not None else "Describe the image."
        raw = prompt.encode()
        text = mt.mtmd_input_text(text=raw, text_len=len(raw), add_special=True, parse_special=True)
        bitmaps = (mt.mtmd_bitmap_p_ctypes * 1)()
        if rgb is not None:
            # mtmd_bitmap_init takes no length: it copies nx * ny * 3 bytes, whatever the buffer holds.
            assert len(rgb) == size[0] * size[1] * 3
            pixels = (ctypes.c_uint8 * len(rgb)).from_buffer_copy(rgb)
            bitmaps[0] = mt.mtmd_bitmap_init(size[0], size[1], pixels)  # copies the pixels
            assert bitmaps[0], "mtmd_bitmap_init failed"
        chunks = mt.mtmd_input_chunks_init()
        try:
            rc = mt.mtmd_tokenize(mctx, chunks, ctypes.byref(text), bitmaps, 1 if rgb is not None else 0)
            assert rc == 0, f"mtmd_tokenize returned {rc}"
            kinds = []
            for i in range(mt.mtmd_input_chunks_size(chunks)):
                chunk = mt.mtmd_input_chunks_get(chunks, i)
                kind = mt.mtmd_input_chunk_get_type(chunk)
                n = mt.mtmd_input_chunk_get_n_tokens(chunk)
                kinds.append(f"{'text' if kind == mt.MTMD_INPUT_CHUNK_TYPE_TEXT else 'image'}:{n}")
                if kind == mt.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                    assert n == n_image_tokens(), f"image chunk has {n} tokens"
            n_past = ll.llama_pos(0)
            rc = mt.mtmd_helper_eval_chunks(mctx, ctx, chunks, 0, 0, cparams.n_batch, True, ctypes.byref(n_past))
            assert rc == 0, f"mtmd_helper_eval_chunks returned {rc}"
            print(f"  chunks {kinds}, total {mt.mtmd_helper_get_n_tokens(chunks)} tokens, n_past {n_past.value}")
        finally:
            mt.mtmd_input_chunks_free(chunks)
            if bitmaps[0]:
                mt.mtmd_bitmap_free(bitmaps[0])
        out: list[int] = []
        for _ in range(n_predict):
            logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
            tok = int(np.argmax(logits))  # greedy, and not stopping at EOS: the point is comparing tokens
            out.append(tok)
            one = (ll.llama_token * 1)(tok)
            assert ll.llama_decode(ctx, ll.llama_batch_get_one(one, 1)) == 0
        return out

    red = solid_rgb(VISION.image_size, VISION.image_size, (220, 20, 20))
    grad = gradient_rgb(48, 40)  # not the projector's size: mtmd resizes it
    runs = {
        "text only": generate(None),
        "image A (solid red)": generate(red),
        "image B (gradient)": generate(grad, (48, 40)),
        "image A again": generate(red),
    }
    t_run = time.perf_counter() - t1
    for name, toks in runs.items():
        print(f"{name:>20}: {toks}")
    assert runs["image A (solid red)"] != runs["image B (gradient)"], "two images gave the same output"
    assert runs["image A (solid red)"] != runs["text only"], "an image changed nothing"
    assert runs["image B (gradient)"] != runs["text only"], "an image changed nothing"
    assert runs["image A (solid red)"] == runs["image A again"], "the same image gave different outputs"
    mt.mtmd_free(mctx)
    ll.llama_free(ctx)
    ll.llama_model_free(model)
    print(f"ok: {n_image_tokens()} image tokens; build {t_build:.2f}s, load + 4 runs {t_run:.2f}s")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "-v"]
    if len(args) != 1:
        sys.exit("usage: python -m tests.tinyvision [-v] DIR")
    self_check(args[0], verbose="-v" in sys.argv[1:])
