"""Memory estimates for scheduling: how much a runner will take, and how much the machine can give.

A runner's resident size is dominated by its weights (mapped from the GGUF) and its KV cache, which grows
with the context length times the slots. Both are known from GGUF metadata before loading.
"""

from __future__ import annotations

from typing import Any

from corral.runner.meminfo import mem_available

COMPUTE_OVERHEAD = 150 * 2**20  # llama.cpp's compute buffers and the Python process itself, measured ~100-200 MiB


def _arch_int(kv: dict[str, Any], key: str, default: int = 0) -> int:
    arch = kv.get("general.architecture", "")
    value = kv.get(f"{arch}.{key}", default)
    if isinstance(value, list):  # per-layer arrays (e.g. head_count_kv in some models): take the largest
        value = max(value) if value else default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# bytes per cached element: ggml's q8_0 and q4_0 store 32 values in 34 and 18 bytes
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def kv_cache_bytes(kv: dict[str, Any], n_ctx_total: int, kv_type: str = "f16") -> int:
    """K and V for every layer and every cell of the cache, in ``kv_type``."""
    n_layer = _arch_int(kv, "block_count")
    n_embd = _arch_int(kv, "embedding_length")
    n_head = _arch_int(kv, "attention.head_count", 1) or 1
    n_head_kv = _arch_int(kv, "attention.head_count_kv", n_head) or n_head
    head_k = _arch_int(kv, "attention.key_length", n_embd // n_head)
    head_v = _arch_int(kv, "attention.value_length", n_embd // n_head)
    per_token = n_layer * n_head_kv * (head_k + head_v) * KV_BYTES_PER_ELEMENT[kv_type]
    return int(per_token * n_ctx_total)


def estimate_runner_bytes(weights_bytes: int, kv: dict[str, Any], num_ctx: int, num_parallel: int,
                          kv_type: str = "f16") -> int:
    return weights_bytes + kv_cache_bytes(kv, num_ctx * num_parallel, kv_type) + COMPUTE_OVERHEAD


def available_memory(cap: int | None, used_by_runners: int) -> int:
    """What the loaded runners plus a new one may use: the cap if set, else what the system offers now.

    The system figure already excludes the loaded runners' memory, so it is added back to compare like with
    like against their estimates.
    """
    if cap is not None:
        return cap
    return mem_available() + used_by_runners
