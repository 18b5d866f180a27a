"""What shapes a request besides its content: model options, and the types of the common arguments.

``Options`` lists the options ollama-python knows; every method also takes a plain dict, sent as is, so
options added to the server later need no SDK release.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic.json_schema import JsonSchemaValue

from corral.client._model import SubscriptableBaseModel

KeepAlive = float | str
"Seconds as a number, or a duration string such as ``'5m'``; ``0`` unloads at once, negative keeps forever."

Format = Literal["", "json"] | JsonSchemaValue
"``'json'`` for any JSON object, or a JSON schema (e.g. ``Model.model_json_schema()``) to follow."

Think = bool | str
"``True``/``False``, or a level the model defines such as ``'low'``, ``'medium'``, ``'high'``."

License = str | list[str]
"One license text, or several."

Digests = dict[str, str]
"File name to blob digest (``sha256:<hex>``), as returned by ``create_blob``."


class Options(SubscriptableBaseModel):
    """Model and sampling options; a plain dict is accepted wherever this is, with any keys."""

    # Fixed when the model is loaded.
    numa: bool | None = None
    num_ctx: int | None = None
    num_batch: int | None = None
    num_gpu: int | None = None
    main_gpu: int | None = None
    low_vram: bool | None = None
    f16_kv: bool | None = None
    logits_all: bool | None = None
    vocab_only: bool | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    embedding_only: bool | None = None
    num_thread: int | None = None

    # Per request.
    num_keep: int | None = None
    seed: int | None = None
    num_predict: int | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    tfs_z: float | None = None
    typical_p: float | None = None
    repeat_last_n: int | None = None
    temperature: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    mirostat: int | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    penalize_newline: bool | None = None
    stop: Sequence[str] | None = None
