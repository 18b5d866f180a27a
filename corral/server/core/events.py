"""What the core yields for one chat or generate request, whatever API family asked.

::

    Delta      a piece of the reply: thinking, content, whole tool calls, log-probabilities
    Done       the end: why (stop, length, load, unload), the last piece, counts and timings
    Rendered   ``_debug_render_only``: the prompt that would have run, and nothing else

A family's translation turns these into its own wire chunks; none of them knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.api.messages import Logprob, ToolCall

__all__ = ["Delta", "Done", "Event", "Rendered"]


@dataclass(slots=True)
class Delta:
    content: str = ""
    thinking: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[Logprob] | None = None

    def __bool__(self) -> bool:
        return bool(self.content or self.thinking or self.calls or self.logprobs)


@dataclass(slots=True)
class Done:
    """``reason`` is Ollama's ``done_reason``; ``metrics`` its six counters (nanoseconds and tokens)."""

    reason: str
    last: Delta = field(default_factory=Delta)
    metrics: dict[str, Any] = field(default_factory=dict)
    context: list[int] | None = None  # generate's token context (prompt and reply), not in raw mode
    truncated: dict[str, int] | None = None  # what fitting to the context cut, never silent
    prompt_length: int | None = None  # the whole prompt in tokens, its cached prefix included
    evaluated: int | None = None  # the prompt tokens the runner evaluated (the rest came from its cache)

    @property
    def prompt_tokens(self) -> int:
        """The prompt's size in tokens, cached prefix included (Ollama's ``prompt_eval_count`` since 0.30.1)."""
        if self.prompt_length is not None:
            return self.prompt_length
        return int(self.metrics.get("prompt_eval_count", 0))

    @property
    def cached_tokens(self) -> int:
        """The prompt's tokens the runner found in its cache and did not evaluate again."""
        if self.evaluated is None:
            return 0
        return max(0, self.prompt_tokens - self.evaluated)

    @property
    def completion_tokens(self) -> int:
        return int(self.metrics.get("eval_count", 0))


@dataclass(slots=True)
class Rendered:
    prompt: str
    image_count: int = 0


Event = Delta | Done | Rendered
