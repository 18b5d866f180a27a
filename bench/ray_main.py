"""``make bench-ray`` (``bench/run.py --suite ray``; also the last step of ``make bench``): what the Ray path
costs. Eight concurrent streams on one local runner of 8 slots (2 threads), against the same eight on two
Ray worker nodes, each with a runner of 4 slots and 1 thread (``CORRAL_REPLICAS=2``), the head node serving
the API only. On one 2-core machine both setups spend the same two cores on decoding, so the ratio is the
overhead of actors, streaming generators and the cluster's own processes, not a gain from more hardware.

The two phases run one after the other, never side by side (two busy setups on 2 cores collapse each other);
each round alternates which goes first. The cluster runs in a network namespace (tests/raycluster.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench import anchors as anc
from bench import main as bm
from bench import report
from bench.prompts import story
from bench.targets import TIMEOUT

MODEL = "smollm2:135m"
STREAMS, TOKENS, SAMPLES = 8, 128, 3  # SAMPLES: bursts measured per setup and round (one burst scatters ±10 %)
BEGIN, END = "<!-- ray:begin -->", "<!-- ray:end -->"


def burst(base: str, options: dict[str, int]) -> float:
    """Eight streams at once; their generated tokens over the wall time, in tokens per second. Every prompt
    starts with a new nonce: a runner that saw the same prompt before would skip its prefill, and which
    replica a request lands on changes from one burst to the next, while one local runner sees them all."""
    nonce = uuid.uuid4().hex[:12]

    def one(i: int) -> int:
        with httpx.Client(timeout=TIMEOUT) as c:
            prompt = f"[{nonce}] ({i}) " + story(i)
            r = c.post(base + "/api/generate", json={"model": MODEL, "prompt": prompt, "stream": False,
                                                     "options": {"temperature": 0, "num_predict": TOKENS, **options}})
            r.raise_for_status()
            return int(r.json()["eval_count"])

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(STREAMS) as pool:
        tokens = sum(pool.map(one, range(STREAMS)))
    return tokens / (time.perf_counter() - t0)


def local_phase(store_root: Path, rates: list[float]) -> None:
    srv = anc.corral_server(store_root, threads=2, slots=STREAMS, log_dir=bm.OUT, tag="ray-local")
    with srv:
        burst(srv.base, {"num_thread": 2})  # load and warm
        rates += [burst(srv.base, {"num_thread": 2}) for _ in range(SAMPLES)]


def ray_phase(store_root: Path, rates: list[float]) -> None:
    from tests.raycluster import ClusterServer, NodeSpec, RayCluster

    cluster = RayCluster([NodeSpec(0, 2 << 30), NodeSpec(1, 2 << 30), NodeSpec(1, 2 << 30)])
    for i, node in enumerate(cluster.nodes[1:], 1):
        node.env["CORRAL_NODE_BLOBS"] = str(cluster.temp / f"blobs{i}")
    cluster.start()
    server = None
    try:
        server = ClusterServer(cluster, store_root, {"OLLAMA_NUM_PARALLEL": str(STREAMS // 2), "CORRAL_REPLICAS": "2",
                                                     "OLLAMA_KEEP_ALIVE": "30m"}, bm.OUT / "corral-ray.log")
        base = server.url
        # both replicas loaded before measuring: a burst on one busy runner asks for the second
        for _ in range(10):
            burst(base, {"num_thread": 1})
            if len(httpx.get(base + "/api/ps").json()["models"]) == 2:
                break
        rates += [burst(base, {"num_thread": 1}) for _ in range(SAMPLES)]
    finally:
        if server is not None:
            server.stop()
        cluster.stop()


def render(local: list[float], ray: list[float]) -> str:
    # each round's median against the same round's: the machine's pace drifts between rounds
    ratios = [statistics.median(ray[i:i + SAMPLES]) / statistics.median(local[i:i + SAMPLES])
              for i in range(0, len(ray), SAMPLES)]
    return "\n".join([
        "### Runners on a Ray cluster (issue 22)",
        "",
        f"{STREAMS} concurrent streams of {TOKENS} tokens on {MODEL}, aggregate tokens/s (median of {len(ray)} "
        f"bursts: {len(ray) // SAMPLES} rounds of {SAMPLES}; each round runs both setups, one after the other, "
        "and the ratio row compares each round's medians). Local: one runner, 8 slots, 2 threads. "
        "Ray: two worker nodes on this machine, one runner each (4 slots, 1 thread), the head node serving the "
        "API; the same two cores decode in both. Target: the Ray path within 10 % of local.",
        "",
        "| setup | tok/s (median) | samples |",
        "|---|---:|---|",
        f"| local runner | {statistics.median(local):.1f} | {', '.join(f'{x:.1f}' for x in local)} |",
        f"| two Ray nodes | {statistics.median(ray):.1f} | {', '.join(f'{x:.1f}' for x in ray)} |",
        f"| ratio Ray / local | {statistics.median(ratios):.3f} | {', '.join(f'{x:.3f}' for x in ratios)} |",
    ])


def main(args: argparse.Namespace) -> int:
    from corral.store.testing import make_temp_store

    bm.OUT.mkdir(parents=True, exist_ok=True)
    local: list[float] = []
    ray: list[float] = []
    with tempfile.TemporaryDirectory(prefix="corral-bench-ray-") as tmp:
        store = make_temp_store(tmp, names=[MODEL])
        for rnd in range(args.rounds):
            phases = [lambda: local_phase(store.root, local), lambda: ray_phase(store.root, ray)]
            for phase in phases if rnd % 2 == 0 else phases[::-1]:
                phase()
            bm.log(f"ray round {rnd + 1}: local {statistics.median(local[-SAMPLES:]):.1f} tok/s, "
                   f"ray {statistics.median(ray[-SAMPLES:]):.1f} tok/s")
    text = render(local, ray)
    print(text)
    if not args.no_write:
        report.write_results_md(bm.BENCH / "RESULTS.md", text, BEGIN, END)
    return 0
