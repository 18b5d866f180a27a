"""Golden key sets: which keys Ollama's JSON carries for each endpoint, in Go's field order.

``GOLDEN_KEYS[name]`` is ``{"required": [...], "optional": [...]}``: required keys appear in every
object of that kind; optional ones are ``omitempty`` in Ollama's structs and appear only when
non-empty (metrics when non-zero, ``thinking``/``context`` when non-empty...). Both lists are in
the order Ollama writes the keys. Names with a dot are nested objects (``tags.model`` is one entry
of ``/api/tags``'s ``models``). The same data is checked in as ``tests/golden/keys.json``.

``_debug_render_only`` answers are final chunks without ``done_reason``; they are outside these sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["GOLDEN_KEYS", "check_wire"]

_METRICS = [
    ("total_duration", False),
    ("load_duration", False),
    ("prompt_eval_count", False),
    ("prompt_eval_duration", False),
    ("eval_count", False),
    ("eval_duration", False),
]

# (key, always present?) in Go struct order
_ORDER: dict[str, list[tuple[str, bool]]] = {
    "generate.chunk": [
        ("model", True),
        ("remote_model", False),
        ("remote_host", False),
        ("created_at", True),
        ("response", True),
        ("thinking", False),
        ("done", True),
        ("tool_calls", False),
        ("logprobs", False),
        ("image", False),
        ("completed", False),
        ("total", False),
        ("truncated", False),  # corral's own: how much context-overflow handling cut
    ],
    "generate.final": [
        ("model", True),
        ("remote_model", False),
        ("remote_host", False),
        ("created_at", True),
        ("response", True),
        ("thinking", False),
        ("done", True),
        ("done_reason", True),
        ("context", False),
        *_METRICS,
        ("tool_calls", False),
        ("_debug_info", False),
        ("logprobs", False),
        ("image", False),
        ("completed", False),
        ("total", False),
    ],
    "chat.chunk": [
        ("model", True),
        ("remote_model", False),
        ("remote_host", False),
        ("created_at", True),
        ("message", True),
        ("done", True),
        ("logprobs", False),
    ],
    "chat.final": [
        ("model", True),
        ("remote_model", False),
        ("remote_host", False),
        ("created_at", True),
        ("message", True),
        ("done", True),
        ("done_reason", True),
        ("_debug_info", False),
        ("logprobs", False),
        *_METRICS,
        ("truncated", False),  # corral's own
    ],
    "chat.message": [
        ("role", True),
        ("content", True),
        ("thinking", False),
        ("images", False),
        ("tool_calls", False),
        ("tool_name", False),
        ("tool_call_id", False),
    ],
    "tool_call": [("id", False), ("function", True)],
    "tool_call.function": [("index", True), ("name", True), ("arguments", True)],
    "logprob": [("token", True), ("logprob", True), ("bytes", False), ("top_logprobs", False)],
    "details": [
        ("parent_model", True),
        ("format", True),
        ("family", True),
        ("families", True),
        ("parameter_size", True),
        ("quantization_level", True),
        ("context_length", False),
        ("embedding_length", False),
    ],
    "tags": [("models", True)],
    "tags.model": [
        ("name", True),
        ("model", True),
        ("remote_model", False),
        ("remote_host", False),
        ("modified_at", True),
        ("size", True),
        ("digest", True),
        ("details", True),
        ("capabilities", False),
    ],
    "show": [
        ("license", False),
        ("modelfile", False),
        ("parameters", False),
        ("template", False),
        ("system", False),
        ("renderer", False),
        ("parser", False),
        ("details", True),
        ("messages", False),
        ("remote_model", False),
        ("remote_host", False),
        ("model_info", True),
        ("projector_info", False),
        ("tensors", False),
        ("capabilities", False),
        ("modified_at", True),
        ("requires", False),
    ],
    "ps": [("models", True)],
    "ps.model": [
        ("name", True),
        ("model", True),
        ("size", True),
        ("digest", True),
        ("details", True),
        ("expires_at", True),
        ("size_vram", True),
        ("context_length", True),
    ],
    "version": [("version", True)],
    "embed": [
        ("model", True),
        ("embeddings", True),
        ("total_duration", False),
        ("load_duration", False),
        ("prompt_eval_count", False),
    ],
    "embeddings": [("embedding", True)],
    "progress": [("status", True), ("digest", False), ("total", False), ("completed", False)],
    "error": [("error", True)],
}

GOLDEN_KEYS: dict[str, dict[str, list[str]]] = {
    name: {
        "required": [key for key, always in keys if always],
        "optional": [key for key, always in keys if not always],
    }
    for name, keys in _ORDER.items()
}


def check_wire(name: str, wire: Mapping[str, Any]) -> list[str]:
    """Problems of one JSON object against ``GOLDEN_KEYS[name]``: missing, unknown, misordered keys."""
    order = [key for key, _ in _ORDER[name]]
    problems = [f"{name}: missing {key!r}" for key in GOLDEN_KEYS[name]["required"] if key not in wire]
    problems += [f"{name}: unexpected {key!r}" for key in wire if key not in order]
    positions = [order.index(key) for key in wire if key in order]
    if positions != sorted(positions):
        problems.append(f"{name}: keys out of Ollama's order: {list(wire)}")
    return problems
