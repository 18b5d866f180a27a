"""Anthropic's Messages API (``/v1/messages``) as a translation onto the native chat path."""

from __future__ import annotations

from starlette.routing import Route

__all__ = ["routes"]


def routes() -> list[Route]:
    from corral.server.anthropic import messages

    return messages.routes()
