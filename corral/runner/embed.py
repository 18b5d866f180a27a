"""Embedding requests: every input of one request, as many inputs per decode as the batch holds. Apart from
the decode loop: an embedding runner holds no slots and no sampler, only pooled vectors."""

from __future__ import annotations

from typing import Any

from corral.runner.engine import EMBED_SEQS, Engine


class InputTooLong(Exception):
    """An embedding input longer than the context, with truncation off."""


def embed(eng: Engine, msg: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The reply to an ``embed`` message (a result or an error), and how many decodes it took."""
    decodes = 0
    try:
        limit = eng.n_ctx_slot
        inputs: list[list[int]] = []
        for text in msg["inputs"]:
            tokens = eng.tokenize(text) or [eng.bos]
            if len(tokens) > limit:
                if not msg.get("truncate", True):
                    raise InputTooLong()
                tokens = tokens[:limit]
            inputs.append(tokens)
        vectors: list[list[float]] = []
        pack: list[list[int]] = []
        used = 0
        for tokens in inputs:
            if pack and (used + len(tokens) > eng.n_batch or len(pack) == EMBED_SEQS):
                vectors += eng.embed_pass(pack)
                decodes += 1
                pack, used = [], 0
            pack.append(tokens)
            used += len(tokens)
        if pack:
            vectors += eng.embed_pass(pack)
            decodes += 1
    except InputTooLong:
        return {"kind": "error", "id": msg["id"], "error": "input too long", "code": "input_too_long"}, decodes
    except Exception as exc:
        return {"kind": "error", "id": msg["id"], "error": str(exc)}, decodes
    return {"kind": "result", "id": msg["id"], "embeddings": vectors, "counts": [len(t) for t in inputs]}, decodes
