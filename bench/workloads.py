"""The workloads. Each function runs one step of one workload against every system in turn (A, B, A, B, ...
across rounds) and records one sample per system; ``run.py`` calls them round after round.

Workload names (the keys in ``Results``) and what one sample is:

- ``decode{n}``: tokens per second of generation on one stream writing ``n`` tokens (server-reported).
- ``agg{c}``: ``c`` concurrent streams of ``AGG_TOKENS`` tokens each; generated tokens over wall seconds
  from the moment all ``c`` requests are released to the moment the last one completes.
- ``ftt_{short,long}``: time to the first streamed line minus the server's own prefill time, milliseconds.
- ``v1_extra``: time to the first token through ``/v1/chat/completions`` minus through ``/api/chat``, the two
  requests back to back on one cached prompt (OpenAI's stream has no prefill time to subtract).
- ``prefix``: the second chat turn's prompt-evaluation time over the first turn's.
- ``load_cold`` / ``load_warm``: corral's ``load_duration`` after a ``keep_alive: 0`` unload / when loaded.
- ``tags_rps`` / ``show_rps``: sequential requests per second on one keep-alive connection.
- ``rss_*``: resident memory in MB from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.anchors import Anchors
from bench.prompts import filler, story
from bench.results import Results
from bench.targets import TIMEOUT, Corral, FirstToken, LlamaServer, Target


@dataclass(frozen=True)
class Config:
    rounds: int = 3
    threads: int = 2
    slots: int = 8
    ctx_per_slot: int = 2048
    decode_lengths: tuple[int, ...] = (128, 512)
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    agg_tokens: int = 128
    # One 128-token decode lasts about a second; paired corral/llama-server ratios scatter 0.98-1.04 from
    # one to the next on this VM, so each round takes several, interleaved.
    decode_samples: int = 3
    # The same for c concurrent streams: 4- and 8-stream ratios to llama-server moved 0.99-1.04 between runs
    # of one sample per round.
    agg_samples: int = 3
    ftt_predict: int = 4
    # A first token's few milliseconds scatter with the 2-core VM's scheduling (a woken process now and then
    # waits 3-4 ms for a core the decode threads hold), so each round takes several samples per system.
    ftt_samples: int = 5
    ftt_long_samples: int = 2  # a ~1k-token prefill takes 1.5-3 s
    v1_samples: int = 10  # pairs of ~20 ms requests: paired differences scatter ±5 ms with the VM's scheduling
    turn_predict: int = 16
    endpoint_seconds: float = 1.0
    max_foreign_share: float = 0.05  # a round during which other processes used more is run again
    max_redo: int = 3


def _nonce() -> str:
    return uuid.uuid4().hex[:8]


# --- generation ---------------------------------------------------------------------------------------


def decode(res: Results, model: str, rnd: int, systems: Sequence[Target], n: int, samples: int = 1) -> None:
    for _ in range(samples):
        for t in systems:
            d = t.decode(story(rnd), n)
            res.add(model, f"decode{n}", t.name, d.rate)
            res.add(model, f"decode{n}_tokens", t.name, d.tokens)


def _concurrent(t: Target, c: int, n: int, rnd: int) -> tuple[int, float]:
    barrier = threading.Barrier(c + 1)
    counts = [0] * c
    ends = [0.0] * c
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                barrier.wait()
                counts[i] = t.complete(client, story(i, f".{rnd}"), n)
                ends[i] = time.perf_counter()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(c)]
    for th in threads:
        th.start()
    barrier.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return sum(counts), max(ends) - t0


def aggregate(res: Results, model: str, rnd: int, systems: Sequence[Target], c: int, n: int,
              samples: int = 1) -> None:
    """``samples`` alternations of the first two systems (corral, llama-server); any further system (the
    one-request-at-a-time Python peer) once."""
    for k in range(samples):
        for t in systems if k == 0 else systems[:2]:
            tokens, wall = _concurrent(t, c, n, rnd)
            res.add(model, f"agg{c}", t.name, tokens / wall)
            res.add(model, f"agg{c}_tokens", t.name, tokens)


# --- latency --------------------------------------------------------------------------------------------


def first_token(res: Results, model: str, corral: Corral, server: LlamaServer | None, cfg: Config) -> None:
    """A unique prefix defeats every prompt cache, so each request evaluates its whole prompt."""
    prompts = {"short": lambda: f"[{_nonce()}] " + story(0), "long": lambda: f"[{_nonce()}] " + filler(760, 7)}
    for kind, make in prompts.items():
        steps: list[tuple[str, Callable[[str, int], FirstToken]]] = [("corral", corral.first_token)]
        if kind == "short":
            steps.append(("corral-chat", corral.first_token_chat))
        if server is not None:
            steps.append(("llama-server", server.first_token))
        for _ in range(cfg.ftt_samples if kind == "short" else cfg.ftt_long_samples):
            for name, fn in steps:
                ft = fn(make(), cfg.ftt_predict)
                res.add(model, f"ftt_{kind}", name, (ft.ttfb - ft.prefill) * 1e3)
                res.add(model, f"ttfb_{kind}", name, ft.ttfb * 1e3)
                res.add(model, f"prefill_{kind}", name, ft.prefill * 1e3)
                res.add(model, f"prompt_tokens_{kind}", name, ft.prompt_tokens)


def translation(res: Results, model: str, corral: Corral, cfg: Config) -> None:
    """What the OpenAI translation adds to the first token: one chat through ``/v1/chat/completions`` and
    through ``/api/chat``, back to back. The prompt is the same every time, so both evaluate one token of it
    (a unique prompt's prefill scatters by ±15 ms, which would bury a difference of a few hundred µs)."""
    prompt = "Write one short sentence about the sea."
    for _ in range(cfg.v1_samples):
        chat = corral.first_token_chat(prompt, cfg.ftt_predict)
        v1 = corral.first_token_openai(prompt, cfg.ftt_predict)
        res.add(model, "v1_extra", "corral", (v1.ttfb - chat.ttfb) * 1e3)


def prefix(res: Results, model: str, corral: Corral, server: LlamaServer | None, cfg: Config) -> None:
    system = f"Session {_nonce()}. You are a careful assistant who answers briefly. Background: " + filler(90, 3)
    first = "Read these notes and tell me what they are about.\n\n" + filler(300, 5)
    second = "Thanks. Now summarise that in one short sentence, please."
    systems: list[Corral | LlamaServer] = [corral] + ([server] if server is not None else [])
    for t in systems:
        turns = t.chat_turns(system, first, second, cfg.turn_predict)
        res.add(model, "prefix", t.name, turns.second_prefill / turns.first_prefill)
        res.add(model, "prefix_first_ms", t.name, turns.first_prefill * 1e3)
        res.add(model, "prefix_second_ms", t.name, turns.second_prefill * 1e3)
        res.add(model, "prefix_first_tokens", t.name, turns.first_tokens)
        res.add(model, "prefix_second_tokens", t.name, turns.second_tokens)


def load(res: Results, model: str, corral: Corral) -> None:
    corral.unload()
    res.add(model, "load_cold", "corral", corral.load_duration() * 1e3)
    res.add(model, "load_warm", "corral", corral.load_duration() * 1e3)


def _rate(fn: Callable[[httpx.Client], httpx.Response], seconds: float) -> float:
    with httpx.Client(timeout=TIMEOUT) as client:
        fn(client).raise_for_status()
        n = 0
        t0 = time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            fn(client).raise_for_status()
            n += 1
    return n / elapsed


def endpoints(res: Results, model: str, corral: Corral, server: LlamaServer | None, cfg: Config) -> None:
    res.add(model, "tags_rps", "corral", _rate(lambda c: c.get(corral.base + "/api/tags"), cfg.endpoint_seconds))
    if server is not None:
        res.add(model, "tags_rps", "llama-server",
                _rate(lambda c: c.get(server.base + "/v1/models"), cfg.endpoint_seconds))
    res.add(model, "show_rps", "corral",
            _rate(lambda c: c.post(corral.base + "/api/show", json={"model": corral.model}), cfg.endpoint_seconds))
    if server is not None:
        res.add(model, "show_rps", "llama-server",
                _rate(lambda c: c.get(server.base + "/props"), cfg.endpoint_seconds))


# --- llama.cpp's command-line anchors --------------------------------------------------------------------


def _jsonl(argv: list[str]) -> list[dict[str, object]]:
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def batched_bench(anchors: Anchors, model_path: Path, cfg: Config, npl: Sequence[int], ntg: int,
                  npp: int = 32) -> dict[int, float]:
    """``llama-batched-bench`` S_TG (generated tokens per second of generation) per number of sequences."""
    argv = [str(anchors.tool("llama-batched-bench")), "-m", str(model_path), "-c", str(cfg.ctx_per_slot * cfg.slots),
            "-b", "512", "-ub", "512", "-t", str(cfg.threads), "-tb", str(cfg.threads), "-ngl", "0",
            "--no-repack", "-npp", str(npp), "-ntg", str(ntg), "-npl", ",".join(map(str, npl)),
            "--output-format", "jsonl"]
    return {int(str(r["pl"])): float(str(r["speed_tg"])) for r in _jsonl(argv)}


def llama_bench(anchors: Anchors, model_path: Path, cfg: Config, ns: Sequence[int]) -> dict[int, float]:
    """``llama-bench`` text generation (``tg{n}``) tokens per second, one repetition."""
    argv = [str(anchors.tool("llama-bench")), "-m", str(model_path), "-p", "0", "-n", ",".join(map(str, ns)),
            "-t", str(cfg.threads), "-r", "1", "-ngl", "0", "--repack", "0", "-o", "jsonl"]
    return {int(str(r["n_gen"])): float(str(r["avg_ts"])) for r in _jsonl(argv)}


def engine_decode(res: Results, model: str, anchors: Anchors, model_path: Path, cfg: Config) -> None:
    for n in cfg.decode_lengths:
        res.add(model, f"decode{n}", "batched-bench", batched_bench(anchors, model_path, cfg, [1], n)[1])
    for n, ts in llama_bench(anchors, model_path, cfg, cfg.decode_lengths).items():
        res.add(model, f"decode{n}", "llama-bench", ts)


def engine_aggregate(res: Results, model: str, anchors: Anchors, model_path: Path, cfg: Config) -> None:
    for pl, ts in batched_bench(anchors, model_path, cfg, cfg.concurrency, cfg.agg_tokens).items():
        res.add(model, f"agg{pl}", "batched-bench", ts)


# --- memory ---------------------------------------------------------------------------------------------


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of one process, in MB (10^6 bytes)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) * 1024 / 1e6
    return out


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]
