"""HTTP clients for the servers under test, each reduced to the few measurements the workloads need.

Every method takes one prompt and returns plain numbers (seconds, token counts, rates), so a workload can
run the same step against corral, llama-server and llama-cpp-python's server in turn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

TIMEOUT = httpx.Timeout(600.0, connect=10.0)


@dataclass
class Decode:
    tokens: int
    rate: float  # tokens per second of generation, as the server itself reports it (client-side if none)
    drafted: int | None = None  # speculative decoding: tokens guessed (None: the server reported no counts)
    accepted: int | None = None  # of those, the ones the model kept


@dataclass
class FirstToken:
    ttfb: float  # request sent -> first body line with generated text, seconds
    prefill: float  # the server's own prompt-evaluation time for the same request, seconds
    prompt_tokens: int


@dataclass
class Turns:
    first_prefill: float
    second_prefill: float
    first_tokens: int  # prompt tokens evaluated in each turn
    second_tokens: int


class Target(Protocol):
    name: str
    base: str

    def decode(self, prompt: str, n: int) -> Decode: ...

    def complete(self, client: httpx.Client, prompt: str, n: int) -> int: ...

    def first_token(self, prompt: str, n: int) -> FirstToken: ...


def _decode(tokens: int, rate: float, drafted: Any, accepted: Any) -> Decode:
    if drafted is None:
        return Decode(tokens, rate)
    return Decode(tokens, rate, int(drafted), int(accepted or 0))


def _messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system is not None else []
    return [*head, {"role": "user", "content": prompt}]


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(url, json=body)
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


class Corral:
    """corral's Ollama API; every request carries the same load options so one runner serves them all."""

    name = "corral"

    def __init__(self, base: str, model: str, *, threads: int, ctx_per_slot: int,
                 load: Mapping[str, Any] | None = None) -> None:
        self.base = base
        self.model = model
        self.load_options: dict[str, Any] = {"num_ctx": ctx_per_slot, "num_thread": threads, **(load or {})}

    def options(self, n: int, **extra: Any) -> dict[str, Any]:
        return {**self.load_options, "temperature": 0, "seed": 0, "num_predict": n, **extra}

    def generate(self, client: httpx.Client, prompt: str, n: int, **extra: Any) -> dict[str, Any]:
        body = {"model": self.model, "prompt": prompt, "raw": True, "stream": False, "options": self.options(n),
                **extra}
        return _post(client, self.base + "/api/generate", body)

    def decode(self, prompt: str, n: int, **options: Any) -> Decode:
        """``options`` go with the request's (``ngram_draft``, ...); a final chunk that reports speculation
        (``draft_tokens`` / ``draft_accepted``) fills ``drafted`` / ``accepted``."""
        with httpx.Client(timeout=TIMEOUT) as client:
            out = self.generate(client, prompt, n, options=self.options(n, **options))
        count = int(out["eval_count"])
        return _decode(count, count / (out["eval_duration"] / 1e9), out.get("draft_tokens"), out.get("draft_accepted"))

    def complete(self, client: httpx.Client, prompt: str, n: int) -> int:
        return int(self.generate(client, prompt, n)["eval_count"])

    def _first_token(self, path: str, body: dict[str, Any]) -> FirstToken:
        ttfb = 0.0
        final: dict[str, Any] = {}
        with httpx.Client(timeout=TIMEOUT) as client:
            t0 = time.perf_counter()
            with client.stream("POST", self.base + path, json=body) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if not line:
                        continue
                    if not ttfb:
                        ttfb = time.perf_counter() - t0
                    final = json.loads(line)
        return FirstToken(ttfb, final["prompt_eval_duration"] / 1e9, int(final["prompt_eval_count"]))

    def first_token(self, prompt: str, n: int) -> FirstToken:
        body = {"model": self.model, "prompt": prompt, "raw": True, "stream": True, "options": self.options(n)}
        return self._first_token("/api/generate", body)

    def first_token_chat(self, prompt: str, n: int, system: str | None = None) -> FirstToken:
        body = {"model": self.model, "messages": _messages(prompt, system), "stream": True,
                "options": self.options(n)}
        return self._first_token("/api/chat", body)

    def first_token_openai(self, prompt: str, n: int) -> FirstToken:
        """The same chat through ``/v1/chat/completions`` (SSE). OpenAI's stream reports no prefill time, so
        ``prefill`` is 0 here: the workload compares its time to first token with ``/api/chat``'s instead."""
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "stream": True,
                "max_tokens": n, "temperature": 0, "seed": 0, "options": self.load_options}
        ttfb = 0.0
        with httpx.Client(timeout=TIMEOUT) as client:
            t0 = time.perf_counter()
            with client.stream("POST", self.base + "/v1/chat/completions", json=body) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if line.startswith("data: {") and not ttfb:
                        ttfb = time.perf_counter() - t0
        return FirstToken(ttfb, 0.0, 0)

    def chat_turns(self, system: str, first: str, second: str, n: int) -> Turns:
        messages: list[dict[str, str]] = [{"role": "system", "content": system}, {"role": "user", "content": first}]
        with httpx.Client(timeout=TIMEOUT) as client:
            url = self.base + "/api/chat"
            a = _post(client, url, {"model": self.model, "messages": messages, "stream": False,
                                    "options": self.options(n)})
            messages += [a["message"], {"role": "user", "content": second}]
            b = _post(client, url, {"model": self.model, "messages": messages, "stream": False,
                                    "options": self.options(n)})
        return Turns(a["prompt_eval_duration"] / 1e9, b["prompt_eval_duration"] / 1e9,
                     int(a["prompt_eval_count"]), int(b["prompt_eval_count"]))

    def unload(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            _post(client, self.base + "/api/generate", {"model": self.model, "keep_alive": 0,
                                                        "options": self.load_options})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ps = client.get(self.base + "/api/ps").json()
                if not any(m.get("name") == self.model or m.get("model") == self.model for m in ps["models"]):
                    return
                time.sleep(0.05)
        raise RuntimeError(f"{self.model} did not unload")

    def load_duration(self) -> float:
        with httpx.Client(timeout=TIMEOUT) as client:
            out = self.generate(client, "Hello", 1)
        return float(out["load_duration"]) / 1e9


class LlamaServer:
    """llama-server's native /completion, with ``ignore_eos`` so every request writes exactly ``n`` tokens."""

    name = "llama-server"

    def __init__(self, base: str) -> None:
        self.base = base

    def body(self, prompt: str, n: int, **extra: Any) -> dict[str, Any]:
        return {"prompt": prompt, "n_predict": n, "temperature": 0, "seed": 0, "ignore_eos": True,
                "cache_prompt": True, **extra}

    def decode(self, prompt: str, n: int) -> Decode:
        with httpx.Client(timeout=TIMEOUT) as client:
            out = _post(client, self.base + "/completion", self.body(prompt, n))
        t = out["timings"]
        return _decode(int(t["predicted_n"]), float(t["predicted_per_second"]), t.get("draft_n"),
                       t.get("draft_n_accepted"))

    def complete(self, client: httpx.Client, prompt: str, n: int) -> int:
        return int(_post(client, self.base + "/completion", self.body(prompt, n))["timings"]["predicted_n"])

    def first_token(self, prompt: str, n: int) -> FirstToken:
        ttfb = 0.0
        final: dict[str, Any] = {}
        with httpx.Client(timeout=TIMEOUT) as client:
            t0 = time.perf_counter()
            with client.stream("POST", self.base + "/completion", json=self.body(prompt, n, stream=True)) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    if not ttfb:
                        ttfb = time.perf_counter() - t0
                    final = json.loads(line[6:])
        t = final["timings"]
        return FirstToken(ttfb, float(t["prompt_ms"]) / 1e3, int(t["prompt_n"]))

    def first_token_chat(self, prompt: str, n: int, system: str | None = None) -> FirstToken:
        """Through ``/v1/chat/completions`` (SSE): the first chunk with text, and the last chunk's timings.
        ``prompt_tokens`` counts what was evaluated (``prompt_n``), plus what came from the cache (``cache_n``)."""
        body = {"messages": _messages(prompt, system), "max_tokens": n, "temperature": 0, "seed": 0,
                "stream": True, "cache_prompt": True}
        ttfb = 0.0
        timings: dict[str, Any] = {}
        with httpx.Client(timeout=TIMEOUT) as client:
            t0 = time.perf_counter()
            with client.stream("POST", self.base + "/v1/chat/completions", json=body) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
                    if not ttfb and (delta.get("content") or delta.get("reasoning_content")):
                        ttfb = time.perf_counter() - t0
                    timings = chunk.get("timings") or timings
        return FirstToken(ttfb, float(timings["prompt_ms"]) / 1e3,
                          int(timings["prompt_n"]) + int(timings.get("cache_n") or 0))

    def chat_turns(self, system: str, first: str, second: str, n: int) -> Turns:
        messages: list[dict[str, str]] = [{"role": "system", "content": system}, {"role": "user", "content": first}]
        url = self.base + "/v1/chat/completions"
        with httpx.Client(timeout=TIMEOUT) as client:
            body = {"messages": messages, "max_tokens": n, "temperature": 0, "seed": 0, "cache_prompt": True}
            a = _post(client, url, body)
            messages += [{"role": "assistant", "content": a["choices"][0]["message"]["content"] or ""},
                         {"role": "user", "content": second}]
            b = _post(client, url, {**body, "messages": messages})
        ta, tb = a["timings"], b["timings"]
        return Turns(ta["prompt_ms"] / 1e3, tb["prompt_ms"] / 1e3, int(ta["prompt_n"]), int(tb["prompt_n"]))


class LlamaCppPython:
    """llama-cpp-python's OpenAI-style server. It reports no timings, so the decode rate is measured from the
    stream: chunks after the first over the time between the first and the last chunk."""

    name = "llama-cpp-python"

    def __init__(self, base: str) -> None:
        self.base = base

    def body(self, prompt: str, n: int, **extra: Any) -> dict[str, Any]:
        return {"prompt": prompt, "max_tokens": n, "temperature": 0, "seed": 0, **extra}

    def decode(self, prompt: str, n: int) -> Decode:
        stamps: list[float] = []
        with httpx.Client(timeout=TIMEOUT) as client, client.stream(
                "POST", self.base + "/v1/completions", json=self.body(prompt, n, stream=True)) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    if chunk["choices"][0].get("text"):
                        stamps.append(time.perf_counter())
        if len(stamps) < 2:
            return Decode(len(stamps), 0.0)
        return Decode(len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0]))

    def complete(self, client: httpx.Client, prompt: str, n: int) -> int:
        out = _post(client, self.base + "/v1/completions", self.body(prompt, n))
        return int(out["usage"]["completion_tokens"])

    def first_token(self, prompt: str, n: int) -> FirstToken:
        raise NotImplementedError("llama-cpp-python reports no prefill time")
