"""Ollama's native API (``/api/*``): routes, and the translation of the core's events to its wire chunks."""

from __future__ import annotations

from starlette.routing import Route

from corral.server.ollama import embed, infer, models, registry, store, tokens

__all__ = ["routes"]


def routes() -> list[Route]:
    return [*models.routes(), *infer.routes(), *embed.routes(), *tokens.routes(), *store.routes(), *registry.routes()]
