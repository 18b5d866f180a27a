"""``options`` (and Modelfile ``PARAMETER``) keys: types, defaults, and Ollama's coercion.

``validate_options(raw)`` applies Ollama's ``Options.FromMap`` rules to a request's ``options``:

- an integer option takes any JSON number and truncates it (``2048.9`` -> ``2048``), because Go
  sees every JSON number as float64 and converts;
- a float option takes any JSON number; a bool option only ``true``/``false``; ``stop`` only an
  array of strings (a bare string is an error, as upstream);
- ``null`` values are skipped; unknown and deprecated keys are ignored and reported back so the
  route can log them (Ollama logs "invalid option provided");
- a wrong type is a :class:`BadRequest` with Ollama's text (``option "num_ctx" must be of type
  integer``). Ollama answers 500 there; corral answers 400 on purpose: it is the client's mistake.

Precedence for a request is ``DEFAULTS`` < the model's Modelfile parameters < request options
(:func:`merge_options`). Changing a ``LOAD_OPTIONS`` key on a loaded model means reloading it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from corral.api.errors import BadRequest

__all__ = [
    "DEFAULTS",
    "DEPRECATED_OPTIONS",
    "LOAD_OPTIONS",
    "OPTION_TYPES",
    "RUNTIME_OPTIONS",
    "Options",
    "merge_options",
    "validate_options",
]

OptionType = Literal["int", "float", "bool", "strings"]

OPTION_TYPES: dict[str, OptionType] = {
    # load: fixed when the runner starts; a change forces a reload
    "num_ctx": "int",
    "num_batch": "int",
    "num_gpu": "int",
    "main_gpu": "int",
    "use_mmap": "bool",
    "num_thread": "int",
    "draft_num_predict": "int",
    "num_parallel": "int",  # corral: a model's slots (Modelfile PARAMETER num_parallel; OLLAMA_NUM_PARALLEL else)
    # runtime: per request
    "num_keep": "int",
    "seed": "int",
    "num_predict": "int",
    "top_k": "int",
    "top_p": "float",
    "min_p": "float",
    "typical_p": "float",
    "repeat_last_n": "int",
    "temperature": "float",
    "repeat_penalty": "float",
    "presence_penalty": "float",
    "frequency_penalty": "float",
    "stop": "strings",
    "ngram_draft": "int",  # corral: tokens drafted a step by n-gram lookup (0: off; CORRAL_NGRAM_DRAFT else)
}

LOAD_OPTIONS = frozenset({"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict",
                          "num_parallel"})
RUNTIME_OPTIONS = frozenset(OPTION_TYPES) - LOAD_OPTIONS

DEPRECATED_OPTIONS = frozenset(
    {
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "numa",
        "tfs_z",
        "embedding_only",
    }
)
"""Removed upstream; still sent by old clients (the Python SDK's ``Options`` lists them). Ignored."""

DEFAULTS: dict[str, Any] = {
    "num_batch": 512,
    "num_gpu": -1,  # -1 = decide from free memory
    "num_thread": 0,  # 0 = let the runtime decide
    "draft_num_predict": 0,
    "num_keep": 4,
    "seed": -1,  # -1 = random
    "num_predict": -1,  # -1 = until a stop or the context is full
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": 64,
    "temperature": 0.8,
    # reference §2.1 (Ollama of 2026, llama-server era) has 1.0; Ollama's older Go engine used 1.1
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
"""Defaults for keys with a fixed default. ``num_ctx`` (from ``OLLAMA_CONTEXT_LENGTH`` or memory),
``main_gpu``, ``use_mmap`` and ``stop`` have none here: absent means "let the scheduler/model decide".
"""


class Options(BaseModel):
    """Typed view of validated options (every field optional: ``None`` = not set)."""

    model_config = ConfigDict(extra="ignore")

    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    use_mmap: bool | None = None
    num_thread: int | None = None
    draft_num_predict: int | None = None
    num_parallel: int | None = None
    num_keep: int | None = None
    ngram_draft: int | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_last_n: int | None = None
    temperature: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: list[str] | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(key: str, kind: OptionType, value: Any) -> Any:
    if kind == "int":
        if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
            raise BadRequest(f'option "{key}" must be of type integer')
        return int(value)  # truncates toward zero, like Go's int64(float64)
    if kind == "float":
        if not _is_number(value):
            raise BadRequest(f'option "{key}" must be of type float32')
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f'option "{key}" must be of type boolean')
        return value
    if not isinstance(value, list):
        raise BadRequest(f'option "{key}" must be of type array')
    if not all(isinstance(item, str) for item in value):
        # sic: Ollama's wording
        raise BadRequest(f'option "{key}" must be of an array of strings')
    return list(value)


def validate_options(raw: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """Check and coerce a request's ``options`` (module docstring).

    Returns ``(options, ignored_keys)``: the known keys with Python values of their declared
    type, in the caller's order, and the unknown or deprecated keys that were dropped.
    """
    options: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in (raw or {}).items():
        kind = OPTION_TYPES.get(key)
        if kind is None:
            ignored.append(key)
            continue
        if value is None:
            continue
        options[key] = _coerce(key, kind, value)
    return options, ignored


def merge_options(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers win: ``merge_options(DEFAULTS, model_params, request_options)``."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            merged.update(layer)
    return merged
