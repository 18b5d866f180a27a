"""Every option of reference §2.1 and its observable effect, each checked on the real model.

| option | kind | observable effect checked here |
|---|---|---|
| seed | runtime | same seed at temperature 0.8 gives the same text; other seeds give other texts |
| num_predict | runtime | ``done_reason: "length"`` after exactly that many tokens |
| stop | runtime | the text ends before the stop string, ``done_reason: "stop"`` |
| temperature | runtime | 0 is deterministic; a high temperature with a seed wanders from greedy |
| top_k | runtime | 1 equals greedy at any temperature |
| top_p | runtime | a tiny top_p equals greedy at a high temperature |
| min_p | runtime | min_p 0.99 equals greedy at a high temperature |
| typical_p | runtime | a small typical_p changes a seeded sample |
| repeat_penalty | runtime | changes a repetitive greedy continuation |
| repeat_last_n | runtime | 0 switches the penalties off (greedy again) |
| presence_penalty, frequency_penalty | runtime | change a repetitive greedy continuation |
| num_keep | runtime | an over-long prompt keeps its first num_keep tokens when the middle is cut |
| num_ctx, num_batch, num_thread, use_mmap | load | a change starts a new runner (another pid) |
| num_gpu, main_gpu, draft_num_predict | load | accepted; no GPU / no draft model here, so no effect and no reload |
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import CorralServer, wait_until

MODEL = "smollm2:135m"
STORY = "Once upon a time, in a small village by the sea, there lived"
REPETITIVE = "apple banana apple banana apple banana apple banana apple banana apple banana apple"


@pytest.fixture(scope="module")
def srv(models_dir: Path) -> Iterator[CorralServer]:
    # Its own server: the load-option checks count runner processes.
    s = CorralServer(models=models_dir, env={"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_LOADED_MODELS": "1"}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def http(srv: CorralServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=300) as c:
        yield c


def gen(http: httpx.Client, prompt: str = STORY, raw: bool = True, **options: Any) -> dict[str, Any]:
    options.setdefault("num_predict", 24)
    r = http.post("/api/generate", json={"model": MODEL, "prompt": prompt, "raw": raw, "stream": False,
                                         "options": options})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def text(http: httpx.Client, prompt: str = STORY, **options: Any) -> str:
    return str(gen(http, prompt, **options)["response"])


def test_seed_reproduces_at_temperature(http: httpx.Client) -> None:
    a = text(http, temperature=0.8, seed=42)
    assert a and text(http, temperature=0.8, seed=42) == a
    others = {text(http, temperature=0.8, seed=s) for s in (1, 2, 3)}
    assert others - {a}, "three other seeds all reproduced seed 42's text"


def test_num_predict_stops_at_length(http: httpx.Client) -> None:
    body = gen(http, temperature=0, num_predict=7)
    assert body["done_reason"] == "length" and body["eval_count"] == 7


def test_stop_cuts(http: httpx.Client) -> None:
    free = text(http, temperature=0, num_predict=32)
    word = next(w for w in free.split() if len(w) > 2)
    body = gen(http, temperature=0, num_predict=32, stop=[word])
    assert body["done_reason"] == "stop"
    assert word not in body["response"] and free.startswith(body["response"])


def test_temperature_zero_is_deterministic_and_high_temperature_wanders(http: httpx.Client) -> None:
    greedy = text(http, temperature=0)
    assert text(http, temperature=0) == greedy
    samples = {text(http, temperature=1.5, seed=s) for s in (5, 6, 7)}
    assert samples - {greedy}


@pytest.mark.parametrize("options", [
    {"top_k": 1, "temperature": 1.5, "seed": 9},
    {"top_p": 0.001, "temperature": 1.5, "seed": 9},
    {"min_p": 0.99, "temperature": 1.5, "seed": 9},
], ids=["top_k", "top_p", "min_p"])
def test_truncating_samplers_reduce_to_greedy(http: httpx.Client, options: dict[str, Any]) -> None:
    assert text(http, **options) == text(http, temperature=0)


def test_typical_p_changes_a_seeded_sample(http: httpx.Client) -> None:
    plain = [text(http, temperature=1.0, seed=s, num_predict=32) for s in (11, 12)]
    typical = [text(http, temperature=1.0, seed=s, num_predict=32, typical_p=0.2) for s in (11, 12)]
    assert plain != typical


@pytest.mark.parametrize("penalty", [{"repeat_penalty": 1.8}, {"presence_penalty": 1.5},
                                     {"frequency_penalty": 1.5}], ids=lambda p: next(iter(p)))
def test_penalties_change_a_repetitive_continuation(http: httpx.Client, penalty: dict[str, Any]) -> None:
    greedy = text(http, REPETITIVE, temperature=0, num_predict=16)
    assert text(http, REPETITIVE, temperature=0, num_predict=16, **penalty) != greedy
    # repeat_last_n 0 looks at no earlier tokens: the penalty has nothing to act on
    assert text(http, REPETITIVE, temperature=0, num_predict=16, repeat_last_n=0, **penalty) == greedy


def test_num_keep_survives_the_middle_cut(http: httpx.Client) -> None:
    words = " ".join(f"w{i}" for i in range(400))
    prompt = f"KEEP THIS HEADER. {words}"
    full = gen(http, prompt, raw=False, temperature=0, num_predict=1, num_ctx=4096)["context"]
    cut = gen(http, prompt, raw=False, temperature=0, num_predict=1, num_ctx=256, num_keep=40)
    assert cut["done_reason"] in ("stop", "length") and len(cut["context"]) < len(full)
    assert cut["context"][:40] == full[:40]
    low = gen(http, prompt, raw=False, temperature=0, num_predict=1, num_ctx=256, num_keep=2)["context"]
    assert low[:40] != full[:40] and low[:2] == full[:2]


def runner_pid(srv: CorralServer) -> int:
    pids = wait_until(lambda: srv.runners(), 60, what="a runner")
    assert len(pids) == 1, pids
    return int(pids[0])


@pytest.mark.parametrize("option", [{"num_ctx": 1024}, {"num_batch": 64}, {"num_thread": 1}, {"use_mmap": False}],
                         ids=lambda o: next(iter(o)))
def test_load_options_reload(http: httpx.Client, srv: CorralServer, option: dict[str, Any]) -> None:
    assert text(http, temperature=0, num_predict=4)
    before = runner_pid(srv)
    assert text(http, temperature=0, num_predict=4, **option)
    after = wait_until(lambda: [p for p in srv.runners() if p != before], 60, what="a new runner")
    assert after and before not in srv.runners()
    if "num_ctx" in option:
        ps = http.get("/api/ps").json()["models"]
        assert [m["context_length"] for m in ps] == [option["num_ctx"]]


@pytest.mark.parametrize("option", [{"num_gpu": 0}, {"num_gpu": 99}, {"main_gpu": 1}, {"draft_num_predict": 8}],
                         ids=lambda o: f"{next(iter(o))}={next(iter(o.values()))}")
def test_gpu_and_draft_options_are_accepted_without_effect(http: httpx.Client, srv: CorralServer,
                                                           option: dict[str, Any]) -> None:
    greedy = text(http, temperature=0, num_predict=8)
    before = runner_pid(srv)
    assert text(http, temperature=0, num_predict=8, **option) == greedy
    assert srv.runners() == [before]
