"""Hugging Face folders made from the bundled SmolLM2-135M GGUF, for tests of ``corral create`` from a folder.

``write_hf_folder(gguf_path, out_dir)`` writes what ``transformers`` would save for a ``LlamaForCausalLM``:
``config.json``, ``generation_config.json``, ``tokenizer.json`` (built with the ``tokenizers`` library from the
GGUF's vocabulary and merges), ``tokenizer_config.json`` (with the chat template), ``special_tokens_map.json``
and the weights as safetensors (F32, F16 or BF16; one file, or shards with ``model.safetensors.index.json``).

The weights are the GGUF's, dequantized (``gguf.quants.dequantize``) and renamed to Hugging Face's names; q and
k projections are un-permuted (llama.cpp's converter permutes their rows for its rope layout), so that a
converter that permutes them again gets back the GGUF's rows exactly.

Also a small numpy safetensors reader/writer (``read_safetensors``, ``load_hf_tensors``, ``write_safetensors``)
that needs neither torch nor the ``safetensors`` package.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SAFETENSORS_DTYPES",
    "TensorSpec",
    "bf16_bits_to_f32",
    "f32_to_bf16_bits",
    "gguf_to_hf_name",
    "load_hf_tensors",
    "permute_qk",
    "read_safetensors",
    "read_safetensors_header",
    "unpermute_qk",
    "write_hf_folder",
    "write_hf_tokenizer",
    "write_safetensors",
]

# safetensors dtype name -> numpy dtype of the stored element (BF16 is kept as its raw uint16 bits)
SAFETENSORS_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_TRANSFORMERS_VERSION = "4.46.0"


# --- bfloat16 ------------------------------------------------------------------------------------------------


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), rounding to nearest even, as torch's ``.to(torch.bfloat16)`` does.
    NaNs stay (quiet) NaNs."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4")
    rounded = (bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)
    out = rounded.astype("<u2")
    nan = np.isnan(a)
    if nan.any():
        out[nan] = ((bits[nan] >> np.uint32(16)) | np.uint32(0x0040)).astype("<u2")
    return out


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32, exactly."""
    return (np.asarray(bits, dtype="<u2").astype("<u4") << np.uint32(16)).view("<f4")


def _encode(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` (any float array) as the little-endian elements of safetensors ``dtype``."""
    if dtype == "BF16":
        return f32_to_bf16_bits(np.asarray(a, dtype=np.float32))
    return np.ascontiguousarray(a, dtype=SAFETENSORS_DTYPES[dtype])


# --- safetensors -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One tensor to write: its name, shape, and a function that produces its values (called once, when the
    tensor's turn comes, so that only one tensor is in memory at a time)."""

    name: str
    shape: tuple[int, ...]
    produce: Callable[[], np.ndarray]


def write_safetensors(
    path: Path, tensors: Sequence[TensorSpec], *, dtype: str = "F32", metadata: Mapping[str, str] | None = None
) -> int:
    """Write ``tensors`` as one safetensors file of ``dtype`` elements; returns the size of the tensor data.

    As the ``safetensors`` library does: the header's keys sorted, tensors laid out in name order, the header
    padded with spaces to a multiple of 8 bytes, ``{"format": "pt"}`` metadata unless told otherwise."""
    if dtype not in SAFETENSORS_DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}")
    item = SAFETENSORS_DTYPES[dtype].itemsize
    ordered = sorted(tensors, key=lambda t: t.name)
    header: dict[str, Any] = {"__metadata__": dict(metadata) if metadata is not None else {"format": "pt"}}
    offset = 0
    for t in ordered:
        size = math.prod(t.shape) * item
        header[t.name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in ordered:
            values = t.produce()
            if tuple(values.shape) != t.shape:
                raise ValueError(f"{t.name}: produced shape {values.shape}, declared {t.shape}")
            f.write(_encode(values, dtype).reshape(-1).view(np.uint8).data)
            del values
    return offset


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    """The parsed JSON header of a safetensors file (``__metadata__`` included) and where its data starts."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    return header, 8 + n


def read_safetensors(path: Path, *, names: Iterable[str] | None = None, raw: bool = False) -> dict[str, np.ndarray]:
    """The tensors of one safetensors file, memory-mapped.

    Float tensors come back as float32 (BF16 and F16 widened exactly; F32 as a read-only memmap view) unless
    ``raw``, which gives the stored elements (BF16 as uint16 bits)."""
    header, start = read_safetensors_header(path)
    wanted = set(names) if names is not None else None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start)
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__" or (wanted is not None and name not in wanted):
            continue
        dtype = SAFETENSORS_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end - begin != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"{path}: {name}: data_offsets disagree with shape and dtype")
        a = data[begin:end].view(dtype).reshape(shape)
        if not raw and info["dtype"] == "BF16":
            a = bf16_bits_to_f32(a)
        elif not raw and info["dtype"] == "F16":
            a = a.astype(np.float32)
        out[name] = a
    return out


def load_hf_tensors(folder: Path, *, raw: bool = False) -> dict[str, np.ndarray]:
    """All tensors of a Hugging Face folder: ``model.safetensors``, or the shards its index names."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        out: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            names = [n for n, f in weight_map.items() if f == shard]
            got = read_safetensors(folder / shard, names=names, raw=raw)
            if set(got) != set(names):
                raise ValueError(f"{shard}: missing {sorted(set(names) - set(got))}")
            out.update(got)
        return out
    return read_safetensors(folder / "model.safetensors", raw=raw)


# --- q/k permutation -------------------------------------------------------------------------------------------


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py): Hugging Face q/k rows -> GGUF rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of ``permute_qk``: GGUF q/k rows -> Hugging Face rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- GGUF -> Hugging Face ---------------------------------------------------------------------------------------

_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# The order of LlamaForCausalLM's state_dict (what transformers shards by).
_STATE_ORDER = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm"]


def gguf_to_hf_name(name: str) -> str:
    """``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight`` (llama tensors only)."""
    stem, _, suffix = name.rpartition(".")
    parts = stem.split(".")
    if parts[0] == "blk" and len(parts) == 3 and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{suffix}"
    if stem in _TOP_NAMES:
        return f"{_TOP_NAMES[stem]}.{suffix}"
    raise ValueError(f"no Hugging Face name for GGUF tensor {name!r}")


def _state_key(gguf_name: str) -> tuple[int, int, int]:
    stem = gguf_name.rpartition(".")[0]
    parts = stem.split(".")
    if parts[0] == "blk":
        return (1, int(parts[1]), _STATE_ORDER.index(parts[2]))
    return ({"token_embd": 0, "output_norm": 2, "output": 3}[stem], 0, 0)


def _field(reader: Any, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def _f32_value(x: float) -> float:
    """A float32 metadata value as the short decimal it was written from (9.999999747e-06 -> 1e-05)."""
    return float(str(np.float32(x)))


def write_hf_folder(gguf_path: Path, out_dir: Path, *, dtype: str = "F32", shards: int = 1) -> Path:
    """Write ``out_dir`` as transformers would save the GGUF's llama model (``LlamaForCausalLM``); returns it.

    ``dtype``: "F32", "F16" or "BF16" for the weights. ``shards`` > 1: ``model-0000i-of-0000N.safetensors``
    files and ``model.safetensors.index.json``, split by size in state-dict order."""
    import gguf  # the server extra's; imported here so that the safetensors helpers need only numpy

    if dtype not in _TORCH_DTYPE:
        raise ValueError(f"dtype must be one of {sorted(_TORCH_DTYPE)}, not {dtype!r}")
    if shards < 1:
        raise ValueError("shards must be >= 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(gguf_path)
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{gguf_path}: architecture {arch!r}, not llama")

    n_head = int(_field(reader, "llama.attention.head_count"))
    n_head_kv = int(_field(reader, "llama.attention.head_count_kv", n_head))
    tokens: list[str] = _field(reader, "tokenizer.ggml.tokens")
    by_name = {t.name: t for t in reader.tensors}
    tied = "output.weight" not in by_name

    def produce(t: Any) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            w = gguf.quants.dequantize(t.data, t.tensor_type)  # numpy order: GGUF's shape reversed
            w = np.asarray(w, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))
            kind = t.name.split(".")[-2]
            if kind == "attn_q":
                w = unpermute_qk(w, n_head)
            elif kind == "attn_k":
                w = unpermute_qk(w, n_head_kv)
            return np.ascontiguousarray(w)

        return run

    specs = [
        TensorSpec(gguf_to_hf_name(t.name), tuple(int(d) for d in reversed(t.shape)), produce(t))
        for t in sorted(reader.tensors, key=lambda t: _state_key(t.name))
    ]
    _write_weights(out_dir, specs, dtype=dtype, shards=shards)

    config = _config(reader, dtype=dtype, n_head=n_head, n_head_kv=n_head_kv, vocab=len(tokens), tied=tied)
    _write_json(out_dir / "config.json", config)
    generation = {"_from_model_config": True, "bos_token_id": config["bos_token_id"],
                  "eos_token_id": config["eos_token_id"], "transformers_version": _TRANSFORMERS_VERSION}
    if config.get("pad_token_id") is not None:
        generation["pad_token_id"] = config["pad_token_id"]
    _write_json(out_dir / "generation_config.json", generation)
    _write_tokenizer(reader, out_dir, tokens=tokens, max_len=config["max_position_embeddings"])
    return out_dir


def write_hf_tokenizer(gguf_path: Path, out_dir: Path) -> Path:
    """Only the tokenizer files of ``write_hf_folder`` (tokenizer.json, tokenizer_config.json,
    special_tokens_map.json): a second, not the seconds of the weights."""
    import gguf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(gguf_path)
    arch = _field(reader, "general.architecture")
    max_len = int(_field(reader, f"{arch}.context_length", 2048))
    _write_tokenizer(reader, out_dir, tokens=_field(reader, "tokenizer.ggml.tokens"), max_len=max_len)
    return out_dir


def _shard_bounds(sizes: Sequence[int], shards: int) -> list[int]:
    """Start indexes of ``shards`` contiguous, non-empty groups of ``sizes``, about equal in total size."""
    n = len(sizes)
    if shards > n:
        raise ValueError(f"{shards} shards for {n} tensors")
    total = sum(sizes)
    cum = np.concatenate([[0], np.cumsum(sizes)])  # cum[i]: size of tensors before i
    bounds = [0]
    for k in range(1, shards):
        i = int(np.searchsorted(cum, k * total / shards))
        bounds.append(min(max(i, bounds[-1] + 1), n - (shards - k)))
    return bounds


def _write_weights(out_dir: Path, specs: Sequence[TensorSpec], *, dtype: str, shards: int) -> None:
    item = SAFETENSORS_DTYPES[dtype].itemsize
    if shards == 1:
        write_safetensors(out_dir / "model.safetensors", specs, dtype=dtype)
        return
    bounds = [*_shard_bounds([math.prod(s.shape) * item for s in specs], shards), len(specs)]
    weight_map: dict[str, str] = {}
    total = 0
    for k in range(shards):
        group = specs[bounds[k]:bounds[k + 1]]
        filename = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        total += write_safetensors(out_dir / filename, group, dtype=dtype)
        weight_map.update({s.name: filename for s in group})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    _write_json(out_dir / "model.safetensors.index.json", index)


def _config(reader: Any, *, dtype: str, n_head: int, n_head_kv: int, vocab: int, tied: bool) -> dict[str, Any]:
    hidden = int(_field(reader, "llama.embedding_length"))
    head_dim = int(_field(reader, "llama.attention.key_length", hidden // n_head))
    bos = _field(reader, "tokenizer.ggml.bos_token_id")
    eos = _field(reader, "tokenizer.ggml.eos_token_id")
    pad = _field(reader, "tokenizer.ggml.padding_token_id")
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": None if bos is None else int(bos),
        "eos_token_id": None if eos is None else int(eos),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": int(_field(reader, "llama.feed_forward_length")),
        "max_position_embeddings": int(_field(reader, "llama.context_length")),
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": n_head,
        "num_hidden_layers": int(_field(reader, "llama.block_count")),
        "num_key_value_heads": n_head_kv,
        "pad_token_id": None if pad is None else int(pad),
        "pretraining_tp": 1,
        "rms_norm_eps": _f32_value(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_scaling": None,
        "rope_theta": _f32_value(_field(reader, "llama.rope.freq_base", 10000.0)),
        "tie_word_embeddings": tied,
        "torch_dtype": _TORCH_DTYPE[dtype],
        "transformers_version": _TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": vocab,
    }
    return config


# --- tokenizer ---------------------------------------------------------------------------------------------------

_CONTROL = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL
_USER_DEFINED = 4


def _pre_tokenizer(pre: str | None) -> Any:
    """The Hugging Face pre-tokenizer behind llama.cpp's ``tokenizer.ggml.pre`` (the byte-level BPE ones a
    llama model can carry; an unknown one raises rather than tokenize differently)."""
    from tokenizers import Regex, pre_tokenizers

    if pre in ("smollm", "starcoder", "refact", "codeshell"):
        # llama.cpp: "\p{N}" then the GPT-2 regex; SmolLM2's tokenizer.json: Digits then ByteLevel
        return pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ])
    if pre in ("gpt-2", "gpt2", "default", None):
        return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if pre in ("llama-bpe", "llama3"):
        pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                   r"|\s*[\r\n]+|\s+(?!\S)|\s+")
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ])
    raise ValueError(f"no Hugging Face pre-tokenizer known for tokenizer.ggml.pre={pre!r}")


def _special_entry(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def _write_tokenizer(reader: Any, out_dir: Path, *, tokens: list[str], max_len: int) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"tokenizer.ggml.model={model!r}: only byte-level BPE (gpt2) is supported")
    types: list[int] = list(_field(reader, "tokenizer.ggml.token_type", [1] * len(tokens)))
    merges_raw: list[str] = _field(reader, "tokenizer.ggml.merges", [])
    merges = [(a, b) for a, _, b in (m.partition(" ") for m in merges_raw)]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("duplicate tokens in the GGUF vocabulary")

    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = None
    tok.pre_tokenizer = _pre_tokenizer(_field(reader, "tokenizer.ggml.pre"))
    tok.decoder = decoders.ByteLevel()

    def special(key: str) -> str | None:
        i = _field(reader, key)
        return None if i is None or not 0 <= int(i) < len(tokens) else tokens[int(i)]

    bos, eos = special("tokenizer.ggml.bos_token_id"), special("tokenizer.ggml.eos_token_id")
    unk, pad = special("tokenizer.ggml.unknown_token_id"), special("tokenizer.ggml.padding_token_id")
    add_bos = bool(_field(reader, "tokenizer.ggml.add_bos_token", False))
    add_eos = bool(_field(reader, "tokenizer.ggml.add_eos_token", False))
    post: list[Any] = [processors.ByteLevel(trim_offsets=False)]
    if (add_bos and bos is not None) or (add_eos and eos is not None):
        single = " ".join([*(["$bos:0"] if add_bos else []), "$A:0", *(["$eos:0"] if add_eos else [])])
        pair = " ".join([*(["$bos:0"] if add_bos else []), "$A:0", *(["$eos:0"] if add_eos else []),
                         *(["$bos:1"] if add_bos else []), "$B:1", *(["$eos:1"] if add_eos else [])])
        named = [(t, vocab[t]) for t, on in ((bos, add_bos), (eos, add_eos)) if on and t is not None]
        template = processors.TemplateProcessing(
            single=single.replace("$bos", bos or "").replace("$eos", eos or ""),
            pair=pair.replace("$bos", bos or "").replace("$eos", eos or ""),
            special_tokens=named,
        )
        post.append(template)
    tok.post_processor = post[0] if len(post) == 1 else processors.Sequence(post)

    added = [i for i, t in enumerate(types) if t in (_CONTROL, _USER_DEFINED)]
    # add_tokens keeps the vocabulary's ids, since every added token is already in it
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i in added if types[i] == _CONTROL])
    tok.add_tokens([AddedToken(tokens[i], special=False, normalized=False)
                    for i in added if types[i] == _USER_DEFINED])
    for i in added:
        if tok.token_to_id(tokens[i]) != i:
            raise AssertionError(f"added token {tokens[i]!r} got id {tok.token_to_id(tokens[i])}, not {i}")
    tok.save(str(out_dir / "tokenizer.json"))

    controls = [tokens[i] for i in added if types[i] == _CONTROL]
    extra = [t for t in controls if t not in (bos, eos, unk, pad)]
    chat_template = _field(reader, "tokenizer.chat_template")
    tok_config: dict[str, Any] = {
        "add_bos_token": add_bos,
        "add_eos_token": add_eos,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(i): {**_special_entry(tokens[i]), "special": types[i] == _CONTROL} for i in added
        },
        "additional_special_tokens": extra,
        "bos_token": bos,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "model_max_length": max_len,
        "pad_token": pad,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": unk,
        "vocab_size": len(tokens),
    }
    if chat_template is not None:
        tok_config["chat_template"] = chat_template
    _write_json(out_dir / "tokenizer_config.json", tok_config)

    special_map: dict[str, Any] = {"additional_special_tokens": extra}
    for key, value in (("bos_token", bos), ("eos_token", eos), ("pad_token", pad), ("unk_token", unk)):
        if value is not None:
            special_map[key] = _special_entry(value)
    _write_json(out_dir / "special_tokens_map.json", special_map)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

