"""``GET /v1/models`` and ``GET /v1/models/{model}``: the store's models in OpenAI's shapes, as Ollama lists
them (the id is the model's short name, ``owned_by`` its namespace, ``created`` its modification time)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from corral.api.openai.common import openai_envelope
from corral.server.core.generation import resolve
from corral.server.core.stream import json_response
from corral.server.family import family_route
from corral.server.reqlog import note_model
from corral.server.state import state_of
from corral.store.models import LocalModel

__all__ = ["routes"]


def _model(model: LocalModel, model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": int(model.modified_at.timestamp()),
            "owned_by": model.name.namespace}


async def list_models(request: Request) -> Response:
    models = [_model(m, m.short_name) for m in state_of(request).store.list()]
    # Ollama writes null for an empty store, which the openai SDK cannot iterate; an empty list reads the same
    return json_response({"object": "list", "data": models})


async def retrieve_model(request: Request) -> Response:
    name = request.path_params["model"]
    note_model(request.scope, name)
    return json_response(_model(resolve(state_of(request), name), name))


def routes() -> list[Route]:
    return [family_route("/v1/models", list_models, ["GET"], openai_envelope),
            family_route("/v1/models/{model:path}", retrieve_model, ["GET"], openai_envelope)]
