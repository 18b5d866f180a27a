"""Model management: show, copy, delete, pull, push, create, tags, ps, version, progress, error.

Requests that name a model accept the deprecated ``name`` key too; after decoding, ``model``
holds whichever was given (``model`` wins), so routes only look at ``model``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from corral.api._base import RequestModel, ResponseModel, put
from corral.api.messages import Message
from corral.gocodec import format_time, sorted_map

__all__ = [
    "CopyRequest",
    "CreateRequest",
    "DeleteRequest",
    "ErrorResponse",
    "ListModelResponse",
    "ListResponse",
    "ModelDetails",
    "ProcessModelResponse",
    "ProcessResponse",
    "ProgressResponse",
    "PullRequest",
    "PushRequest",
    "ShowRequest",
    "ShowResponse",
    "Tensor",
    "VersionResponse",
]


class _NamedRequest(RequestModel):
    model: str = ""
    name: str = ""  # deprecated spelling of model

    @model_validator(mode="after")
    def _name_fallback(self) -> _NamedRequest:
        if not self.model and self.name:
            self.model = self.name
        return self


class ShowRequest(_NamedRequest):
    system: str = ""
    template: str = ""  # deprecated, ignored by Ollama
    verbose: bool = False
    options: dict[str, Any] | None = None


class DeleteRequest(_NamedRequest):
    pass


class CopyRequest(RequestModel):
    source: str = ""
    destination: str = ""


class PullRequest(_NamedRequest):
    """``insecure`` allows plain HTTP to the registry; ``username``/``password`` are ignored (as upstream)."""

    insecure: bool = False
    username: str = ""
    password: str = ""
    stream: bool = True


class PushRequest(PullRequest):
    pass


class CreateRequest(_NamedRequest):
    """``POST /api/create`` (reference §3.2). ``from`` is ``from_`` here; ``files``/``adapters`` map
    relative file names to ``sha256:<hex>`` digests already uploaded with ``POST /api/blobs``.
    """

    stream: bool = True
    quantize: str = ""
    quantization: str = ""  # deprecated spelling of quantize
    from_: str = Field(default="", validation_alias="from")
    remote_host: str = ""
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    draft_files: dict[str, str] | None = None
    draft_quantize: str = ""
    template: str = ""
    license: str | list[str] | None = None
    system: str = ""
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    info: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _quantization_fallback(self) -> CreateRequest:
        if not self.quantize and self.quantization:
            self.quantize = self.quantization
        return self

    def licenses(self) -> list[str]:
        if self.license is None:
            return []
        return [self.license] if isinstance(self.license, str) else list(self.license)


# --- responses ------------------------------------------------------------------------------


class ModelDetails(ResponseModel):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""
    context_length: int = 0
    embedding_length: int = 0

    def to_wire(self) -> dict[str, Any]:
        # the six classic keys are always written (families may be null); the lengths are omitempty
        out: dict[str, Any] = {
            "parent_model": self.parent_model,
            "format": self.format,
            "family": self.family,
            "families": self.families,
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }
        put(out, "context_length", self.context_length)
        put(out, "embedding_length", self.embedding_length)
        return out


class ListModelResponse(ResponseModel):
    """One entry of ``/api/tags``. ``digest`` is the manifest's sha256 hex, without ``sha256:``."""

    name: str
    model: str
    remote_model: str = ""
    remote_host: str = ""
    modified_at: datetime | int
    size: int
    digest: str
    details: ModelDetails = Field(default_factory=ModelDetails)
    capabilities: list[str] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "model": self.model}
        put(out, "remote_model", self.remote_model)
        put(out, "remote_host", self.remote_host)
        out["modified_at"] = format_time(self.modified_at)
        out["size"] = self.size
        out["digest"] = self.digest
        out["details"] = self.details.to_wire()
        put(out, "capabilities", self.capabilities)
        return out


class ListResponse(ResponseModel):
    models: list[ListModelResponse] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"models": [m.to_wire() for m in self.models]}


class ProcessModelResponse(ResponseModel):
    """One entry of ``/api/ps``. ``size_vram == size`` reads as "100% GPU"."""

    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails = Field(default_factory=ModelDetails)
    expires_at: datetime | int
    size_vram: int = 0
    context_length: int = 0
    node: str | None = None  # corral, on a Ray cluster: the node serving it ("address/node id")

    def to_wire(self) -> dict[str, Any]:
        extra = {"node": self.node} if self.node is not None else {}
        return {
            "name": self.name,
            "model": self.model,
            "size": self.size,
            "digest": self.digest,
            "details": self.details.to_wire(),
            "expires_at": format_time(self.expires_at),
            "size_vram": self.size_vram,
            "context_length": self.context_length,
            **extra,
        }


class ProcessResponse(ResponseModel):
    models: list[ProcessModelResponse] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        return {"models": [m.to_wire() for m in self.models]}


class Tensor(ResponseModel):
    name: str
    type: str
    shape: list[int]

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "shape": list(self.shape)}


class ShowResponse(ResponseModel):
    """``/api/show``. ``model_info`` is always written, ``null`` when unknown: the official Python
    client requires the key. Its keys (and ``projector_info``'s) are sorted, as Go sorts maps; wrap
    GGUF float32 values in ``Float32`` to print them as Ollama does.
    """

    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    system: str = ""
    renderer: str = ""
    parser: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    messages: list[Message] | None = None
    remote_model: str = ""
    remote_host: str = ""
    model_info: dict[str, Any] | None = None
    projector_info: dict[str, Any] | None = None
    tensors: list[Tensor] | None = None
    capabilities: list[str] | None = None
    modified_at: datetime | int
    requires: str = ""

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        put(out, "license", self.license)
        put(out, "modelfile", self.modelfile)
        put(out, "parameters", self.parameters)
        put(out, "template", self.template)
        put(out, "system", self.system)
        put(out, "renderer", self.renderer)
        put(out, "parser", self.parser)
        out["details"] = self.details.to_wire()
        if self.messages:
            out["messages"] = [m.to_wire() for m in self.messages]
        put(out, "remote_model", self.remote_model)
        put(out, "remote_host", self.remote_host)
        out["model_info"] = sorted_map(self.model_info)
        if self.projector_info:
            out["projector_info"] = sorted_map(self.projector_info)
        if self.tensors:
            out["tensors"] = [t.to_wire() for t in self.tensors]
        put(out, "capabilities", self.capabilities)
        out["modified_at"] = format_time(self.modified_at)
        put(out, "requires", self.requires)
        return out


class ProgressResponse(ResponseModel):
    """A pull/push/create progress line; the last one is normally ``{"status": "success"}``."""

    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        put(out, "digest", self.digest)
        put(out, "total", self.total)
        put(out, "completed", self.completed)
        return out


class VersionResponse(ResponseModel):
    version: str

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version}


class ErrorResponse(ResponseModel):
    error: str

    def to_wire(self) -> dict[str, Any]:
        return {"error": self.error}
