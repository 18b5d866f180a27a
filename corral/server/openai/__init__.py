"""OpenAI's API (``/v1/*``) as a translation onto the native chat, generate and embed paths."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    from corral.server.openai import chat, completions, embeddings, models, responses

    return [*chat.routes(), *completions.routes(), *embeddings.routes(), *models.routes(), *responses.routes()]
