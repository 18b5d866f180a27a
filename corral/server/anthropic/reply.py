"""Anthropic's answer from the core's events: content blocks, the stop reason, and the event stream.

A stream and a whole answer are built by the same :class:`Blocks`, so the SDK's accumulation of the stream
gives the message a non-streamed request gets: a block per run of thinking or text (a new one whenever the
kind changes), one per tool call (its input sent whole, as one ``input_json_delta``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from corral.api.anthropic.messages import event, message, new_id, usage
from corral.api.wire import dumps
from corral.server.core.events import Delta, Done, Event
from corral.server.core.stream import SSEEvent

__all__ = ["Blocks", "StopWatch", "merger", "stop_reason", "stream_events"]


@dataclass
class Blocks:
    """The content blocks so far; ``feed`` adds a delta and returns the stream events for what it added."""

    content: list[dict[str, Any]] = field(default_factory=list)
    open: str = ""  # "thinking" or "text" while the last block can still grow
    calls: int = 0

    def feed(self, delta: Delta) -> list[SSEEvent]:
        out = self._grow("thinking", delta.thinking) + self._grow("text", delta.content)
        for call in delta.calls:
            out += self.close()
            args = call.function.arguments
            self.content.append({"type": "tool_use", "id": new_id("toolu"), "name": call.function.name,
                                 "input": args})
            i, self.calls = len(self.content) - 1, self.calls + 1
            out += [_sse("content_block_start", index=i, content_block={**self.content[-1], "input": {}}),
                    _sse("content_block_delta", index=i,
                         delta={"type": "input_json_delta", "partial_json": dumps(args).decode()}),
                    _sse("content_block_stop", index=i)]
        return out

    def _grow(self, kind: str, text: str) -> list[SSEEvent]:
        if not text:
            return []
        out = []
        if self.open != kind:
            out = self.close()
            self.content.append({"type": kind, kind: "", "signature": ""} if kind == "thinking"
                                else {"type": kind, kind: ""})
            self.open = kind
            out.append(_sse("content_block_start", index=len(self.content) - 1, content_block=dict(self.content[-1])))
        self.content[-1][kind] += text
        return [*out, _sse("content_block_delta", index=len(self.content) - 1,
                           delta={"type": f"{kind}_delta", kind: text})]

    def close(self) -> list[SSEEvent]:
        if not self.open:
            return []
        self.open = ""
        return [_sse("content_block_stop", index=len(self.content) - 1)]


class StopWatch:
    """Which of ``stop_sequences`` ended the reply, if one did.

    The runner stops *at* a stop string without sending it, and says ``stop`` whether a stop string or the
    end-of-turn token ended the reply. The log-probabilities (asked for only when there are stop sequences)
    carry every generated token's bytes, the stop string's included and the end-of-turn token's not: the
    reply ended on a stop sequence exactly when one occurs in those bytes and reaches into the last token."""

    def __init__(self, stops: list[str] | None) -> None:
        self.stops = [s for s in stops or [] if s]
        self.text = bytearray()
        self.last = 0

    def feed(self, delta: Delta) -> None:
        if not self.stops:
            return
        for lp in delta.logprobs or []:
            piece = bytes(lp.bytes) if lp.bytes is not None else lp.token.encode()
            self.text += piece
            self.last = len(piece)

    def matched(self) -> str | None:
        found: list[tuple[int, int, str]] = []
        for n, stop in enumerate(self.stops):
            at = self.text.find(stop.encode())
            if at != -1 and at + len(stop.encode()) > len(self.text) - self.last:
                found.append((at, n, stop))
        return min(found)[2] if found else None


def _sse(kind: str, **fields: Any) -> SSEEvent:
    return SSEEvent(kind, event(kind, **fields))


def stop_reason(done: Done, called: bool, stop_sequence: str | None) -> str:
    if called:
        return "tool_use"
    if done.reason == "length":
        return "max_tokens"
    return "stop_sequence" if stop_sequence else "end_turn"


async def stream_events(msg_id: str, model: str, events: AsyncIterator[Event], stops: list[str] | None,
                        input_tokens: int) -> AsyncIterator[SSEEvent]:
    """Anthropic's events: message_start and a ping, the blocks, then message_delta and message_stop."""
    blocks, watch, started = Blocks(), StopWatch(stops), False
    async for ev in events:
        if not isinstance(ev, Delta | Done):
            continue
        if not started:  # only now: an error before the first event still gets its own status
            started = True
            start = message(msg_id, model, [], None, None, usage(input_tokens, 0))
            yield _sse("message_start", message=start)
            yield _sse("ping")
        delta = ev.last if isinstance(ev, Done) else ev
        watch.feed(delta)
        for item in blocks.feed(delta):
            yield item
        if isinstance(ev, Done):
            for item in blocks.close():
                yield item
            stop_sequence = watch.matched() if ev.reason == "stop" else None
            yield _sse("message_delta", delta={"stop_reason": stop_reason(ev, blocks.calls > 0, stop_sequence),
                                               "stop_sequence": stop_sequence},
                       usage=usage(ev.prompt_tokens, ev.completion_tokens))
            yield _sse("message_stop")


def merger(msg_id: str, model: str, stops: list[str] | None) -> Callable[[list[Event]], dict[str, Any]]:
    """The whole message, from every event of the run (for :class:`~corral.server.core.stream.WholeResponse`)."""

    def merge(events: list[Event]) -> dict[str, Any]:
        blocks, watch, done = Blocks(), StopWatch(stops), Done("stop")
        for ev in events:
            if isinstance(ev, Delta | Done):
                delta = ev.last if isinstance(ev, Done) else ev
                watch.feed(delta)
                blocks.feed(delta)
                done = ev if isinstance(ev, Done) else done
        stop_sequence = watch.matched() if done.reason == "stop" else None
        reason = stop_reason(done, blocks.calls > 0, stop_sequence)
        return message(msg_id, model, blocks.content, reason, stop_sequence,
                       usage(done.prompt_tokens, done.completion_tokens))

    return merge
