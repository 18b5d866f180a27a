"""System One: scoring questions about a state with one forward pass (``POST /v1/systemone``).

Added to ollama-python in 0.6.3 for Ollama v0.35+. Three kinds of question, told apart by ``type``:
``choice`` (pick one key of ``criteria``), ``noul`` (probability of true) and ``score``
(an expected position on an ordered scale).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from corral.client._model import SubscriptableBaseModel

SystemOneContent = str | dict[str, Any] | list[Any]
"""Text, or a JSON object or array that the server renders as text."""


class SystemOneChoiceQuestion(SubscriptableBaseModel):
    type: Literal["choice"] = "choice"
    instructions: SystemOneContent
    criteria: dict[str, str | None]
    "Choices in order, each with a description (``None``: the key describes itself)."


class SystemOneNoulQuestion(SubscriptableBaseModel):
    type: Literal["noul"] = "noul"
    instructions: SystemOneContent
    criteria: dict[Literal["false", "true"], str] | None = None
    "Optional meaning of each answer."


class SystemOneScoreQuestion(SubscriptableBaseModel):
    type: Literal["score"] = "score"
    instructions: SystemOneContent
    criteria: list[str]
    "Scale points from lowest to highest."


SystemOneQuestion = Annotated[
    SystemOneChoiceQuestion | SystemOneNoulQuestion | SystemOneScoreQuestion,
    Field(discriminator="type"),
]


class SystemOneRequest(SubscriptableBaseModel):
    model: str
    state: SystemOneContent
    questions: dict[str, SystemOneQuestion]
    keep_alive: float | str | None = None


class SystemOneNoulAnswer(SubscriptableBaseModel):
    type: Literal["noul"]
    noul: float
    "Probability that the answer is true."


class SystemOneChoiceAnswer(SubscriptableBaseModel):
    type: Literal["choice"]
    choice: str
    probabilities: dict[str, float]
    confidence: float


class SystemOneScoreAnswer(SubscriptableBaseModel):
    type: Literal["score"]
    score: float
    "Expected zero-based position on the scale; may be fractional."
    legend: dict[str, str]
    probabilities: dict[str, float]
    confidence: float


SystemOneAnswer = Annotated[
    SystemOneNoulAnswer | SystemOneChoiceAnswer | SystemOneScoreAnswer,
    Field(discriminator="type"),
]


class SystemOneUsage(SubscriptableBaseModel):
    input_tokens: int
    output_tokens: int


class SystemOneResponse(SubscriptableBaseModel):
    model: str
    answers: dict[str, SystemOneAnswer]
    usage: SystemOneUsage
