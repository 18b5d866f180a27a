"""The benchmark driver: build the anchors, start every server on the same GGUF files, run the workloads
interleaved round by round, then print the table, update RESULTS.md and draw the chart."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib.util
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import anchors as anc
from bench import quiet, report, workloads
from bench.results import Results
from bench.targets import Corral, LlamaCppPython, LlamaServer, Target

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
MODELS = ("smollm2:135m", "gemma3:270m")
REQUIRED_MODULES = ("matplotlib", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def ensure_requirements() -> None:
    if all(importlib.util.find_spec(m) is not None for m in REQUIRED_MODULES):
        return
    log("installing bench/requirements.txt into the venv")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(BENCH / "requirements.txt")], check=True)


def machine() -> dict[str, str]:
    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cores": str(os.cpu_count()), "kernel": platform.release()}


def corral_commit() -> str:
    repo = anc.REPO
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "corral"], cwd=repo,
                           capture_output=True, text=True).stdout.strip()
    return head + (" (with uncommitted changes under corral/)" if dirty else "")


class Timer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.t0:6.0f} s"


def start_python_peer(model_path: Path, cfg: workloads.Config, res: Results, model: str) -> anc.Server | None:
    """llama-cpp-python's server as shipped; if it dies on the first decode (AMX), again with the shim."""
    if not anc.ensure_python_server_extras():
        res.note("llama-cpp-python server: its [server] extras could not be installed; not run")
        return None
    for shim in (False, True):
        server = anc.llama_cpp_python_server(model_path, threads=cfg.threads, ctx=cfg.ctx_per_slot, log_dir=OUT,
                                             tag=model.replace(":", "-") + ("-shim" if shim else ""))
        if shim:
            server.argv = [sys.executable, str(BENCH / "lcp_shim.py"), *server.argv[3:]]
        try:
            server.start()
            LlamaCppPython(server.base).decode("Hello there", 8)
            if shim:
                res.note(f"llama-cpp-python server ({model}): run with bench/lcp_shim.py, which sets "
                         "use_extra_bufts=false (Llama() has no option for it)")
            return server
        except Exception as exc:
            code = None
            if server.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = server.proc.wait(3)
            server.stop()
            why = f"exit code {code}" if code is not None else f"{type(exc).__name__}: {exc}"
            res.note(f"llama-cpp-python server ({model}) {'with' if shim else 'without'} the no-extra-bufts shim "
                     f"failed: {why}" + (" (SIGSEGV: the AMX path)" if code == -11 else ""))
    return None


@dataclass
class Systems:
    """Everything one model's rounds run against."""

    model: str
    model_path: Path
    corral: Corral
    server: LlamaServer
    peer: LlamaCppPython | None


def run_round(res: Results, cfg: workloads.Config, anchors: anc.Anchors, sy: Systems, rnd: int, clock: Timer,
              ) -> None:
    """One interleaved round: every workload once on every system, A, B, A, B, ..."""
    model, corral, server = sy.model, sy.corral, sy.server
    systems: list[Target] = [corral, server]
    if sy.peer is not None:
        systems.append(sy.peer)
    steps: list[tuple[str, Callable[[], None]]] = []
    for n in cfg.decode_lengths:
        steps.append((f"decode {n}", functools.partial(workloads.decode, res, model, rnd, systems, n,
                                                       cfg.decode_samples)))
    steps.append(("llama.cpp decode", functools.partial(workloads.engine_decode, res, model, anchors, sy.model_path,
                                                        cfg)))
    for c in cfg.concurrency:
        # llama-cpp-python serves one request at a time: the first round, up to 4 streams, shows that.
        peers: list[Target] = systems if rnd == 0 and c <= 4 else [corral, server]
        steps.append((f"aggregate {c}", functools.partial(workloads.aggregate, res, model, rnd, peers, c,
                                                          cfg.agg_tokens, cfg.agg_samples)))
    steps += [
        ("llama.cpp aggregate", functools.partial(workloads.engine_aggregate, res, model, anchors, sy.model_path, cfg)),
        ("first token", functools.partial(workloads.first_token, res, model, corral, server, cfg)),
        ("/v1 translation", functools.partial(workloads.translation, res, model, corral, cfg)),
        ("prefix reuse", functools.partial(workloads.prefix, res, model, corral, server, cfg)),
        ("endpoints", functools.partial(workloads.endpoints, res, model, corral, server, cfg)),
    ]
    run_steps(res, steps, model, rnd, cfg.rounds, clock)


def run_steps(res: Results, steps: Sequence[tuple[str, Callable[[], None]]], name: str, rnd: int, rounds: int,
              clock: Timer) -> None:
    """One round's steps in order; a step that fails is noted and the round goes on."""
    for label, step in steps:
        log(f"{clock} {name}: round {rnd + 1}/{rounds}: {label}")
        try:
            step()
        except Exception as exc:
            res.note(f"{name}, round {rnd + 1}, {label}: failed: {type(exc).__name__}: {exc}")


def interleave(res: Results, name: str, rounds: int, one_round: Callable[[Results, int], None], *,
               max_foreign_share: float, max_redo: int, quiet_wait: float = 300.0) -> None:
    """``rounds`` rounds, each after waiting (up to ``quiet_wait`` seconds) for a quiet machine; a round that
    other processes disturbed (more than ``max_foreign_share`` of the machine) is discarded and run again, up
    to ``max_redo`` times."""
    rnd = redone = 0
    while rnd < rounds:
        waited = quiet.wait_for_quiet(max_wait=quiet_wait)
        if waited > 5:
            log(f"waited {waited:.0f} s for other processes to quieten down")
        round_res = Results()
        watch = quiet.CpuWatch()
        one_round(round_res, rnd)
        cpu_s, share = watch.foreign()
        if share > max_foreign_share and redone < max_redo:
            redone += 1
            res.note(f"{name}, round {rnd + 1}: other processes used {cpu_s:.0f} CPU-seconds "
                     f"({100 * share:.0f}% of the machine); round discarded and run again")
            continue
        if share > max_foreign_share:
            res.note(f"{name}, round {rnd + 1}: other processes used {100 * share:.0f}% of the machine; "
                     "kept (no redo left)")
        res.merge(round_res)
        rnd += 1


def bench_model(res: Results, cfg: workloads.Config, anchors: anc.Anchors, store_root: Path,
                corral_srv: anc.Server, model: str, *, with_python_peer: bool, clock: Timer) -> None:
    from corral.store.models import Store

    local = Store(store_root).resolve(model)
    assert local is not None and local.model_path is not None, model
    model_path = Path(local.model_path)
    res.meta.setdefault("gguf", {})[model] = str(model_path)

    corral = Corral(corral_srv.base, model, threads=cfg.threads, ctx_per_slot=cfg.ctx_per_slot)
    srv = anc.llama_server(anchors, model_path, threads=cfg.threads, slots=cfg.slots, ctx_per_slot=cfg.ctx_per_slot,
                           log_dir=OUT, tag=model.replace(":", "-"))
    t0 = time.perf_counter()
    srv.start()
    res.add(model, "load_cold", "llama-server", (time.perf_counter() - t0) * 1e3)
    peer = start_python_peer(model_path, cfg, res, model) if with_python_peer else None
    sy = Systems(model, model_path, corral, LlamaServer(srv.base), LlamaCppPython(peer.base) if peer else None)
    try:
        # Warm-up: load corral's runner, touch every path once.
        corral.decode("Hello there", 8)
        corral.first_token_chat("Hello", 2)
        sy.server.decode("Hello there", 8)
        interleave(res, model, cfg.rounds, lambda r, rnd: run_round(r, cfg, anchors, sy, rnd, clock),
                   max_foreign_share=cfg.max_foreign_share, max_redo=cfg.max_redo)
        assert corral_srv.proc is not None and srv.proc is not None
        for pid in workloads.children(corral_srv.proc.pid):
            if str(model_path) in workloads.cmdline(pid):
                _add_rss(res, model, "corral", workloads.rss_mb(pid))
        _add_rss(res, model, "llama-server", workloads.rss_mb(srv.proc.pid))
        if peer is not None and peer.proc is not None:
            _add_rss(res, model, "llama-cpp-python", workloads.rss_mb(peer.proc.pid))
            peer.stop()
        log(f"{clock} {model}: load times")
        for _ in range(cfg.rounds):
            workloads.load(res, model, corral)
            srv.stop()
            t0 = time.perf_counter()
            srv.start()
            res.add(model, "load_cold", "llama-server", (time.perf_counter() - t0) * 1e3)
    finally:
        srv.stop()
        if peer is not None:
            peer.stop()
    corral.unload()


def _add_rss(res: Results, model: str, system: str, rss: dict[str, float]) -> None:
    res.add(model, "rss_model", system, rss["VmRSS"])
    res.add(model, "rss_model_anon", system, rss["RssAnon"])
    res.add(model, "rss_model_file", system, rss["RssFile"])


def begin_meta(res: Results, anchors: anc.Anchors, make_target: str) -> None:
    """What the header line says about the run, known at its start (``make_target``: the command if run by
    make)."""
    res.meta.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                    corral_commit=corral_commit(), llama_cpp_commit=anchors.commit,
                    command=" ".join([f"make {make_target}"] if os.environ.get("MAKELEVEL") else
                                     [".venv/bin/python", "bench/run.py", *map(shlex.quote, sys.argv[1:])]),
                    load_before=" ".join(f"{x:.2f}" for x in os.getloadavg()))


def end_meta(res: Results, clock: Timer, watch: quiet.CpuWatch) -> None:
    res.meta["wall_s"] = time.monotonic() - clock.t0
    res.meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    others, share = watch.foreign()
    res.meta["others_cpu"] = f"{others:.0f} CPU-seconds ({100 * share:.0f}% of the machine)"


def header(meta: dict[str, Any], llama_cpp_note: str) -> list[str]:
    """The run's first lines: machine, load, commits (``llama_cpp_note``: how the anchors ran), command."""
    return [
        f"Run {meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores, kernel "
        f"{meta['machine']['kernel']}); load average before / after: {meta['load_before']} / {meta['load_after']}; "
        f"processes outside the benchmark used about {meta['others_cpu']} during the run.",
        "",
        f"- corral commit: `{meta['corral_commit']}`",
        f"- llama.cpp commit: `{meta['llama_cpp_commit']}` ({llama_cpp_note})",
        f"- command: `{meta['command']}` ({meta['wall_s']:.0f} s)",
    ]


def render(res: Results, cfg: workloads.Config, models: Sequence[str]) -> str:
    rows = report.rows(cfg.decode_lengths, cfg.concurrency)
    meta = res.meta
    parts = [
        *header(meta, "vendored in llama-cpp-python 0.3.36; anchors built Release from it; extra buffer types off "
                "everywhere: `--no-repack`, llama-bench `--repack 0`, llama-cpp-python through `bench/lcp_shim.py`"),
        f"- settings: {cfg.threads} threads, {cfg.slots} slots, {cfg.ctx_per_slot} context tokens per slot "
        f"(llama-server `-c {cfg.ctx_per_slot * cfg.slots} -np {cfg.slots} -b 512 -ub 512 --cache-ram 0`), "
        "temperature 0, "
        f"{cfg.rounds} interleaved rounds, medians shown",
        "",
        report.main_table(res, models, rows),
        "",
        "![aggregate throughput against concurrency](throughput.png)",
        "",
        "Details (medians):",
        "",
        report.details_table(res, models),
    ]
    missed = report.misses(res, models, rows)
    parts += ["", "Targets missed in this run:" if missed else "All targets met in this run."]
    parts += [f"- {m}" for m in missed]
    if res.notes:
        parts += ["", "Notes from the run:"] + [f"- {n}" for n in res.notes]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--no-python-peer", action="store_true", help="skip llama-cpp-python's server")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md and the chart alone")
    p.add_argument("--report-only", action="store_true",
                   help="no measuring: render the tables again from bench/out/results.json")
    p.add_argument("--suite", choices=("default", "spec", "ray"), default="default",
                   help="spec: speculative decoding and caching against llama-server (bench/spec_main.py); "
                        "ray: 8 streams over two Ray nodes against one local runner (bench/ray_main.py), "
                        "which the default suite also runs last")
    p.add_argument("--quick", action="store_true",
                   help="spec suite: a smoke run with few tokens and short prompts (implies nothing about --rounds)")
    args = p.parse_args(argv)
    if args.suite == "spec":
        from bench import spec_main

        return spec_main.main(args)
    if args.suite == "ray":
        from bench import ray_main

        return ray_main.main(args)
    cfg = workloads.Config(rounds=args.rounds)
    if args.report_only:
        res = Results.load(OUT / "results.json")
        models = list(dict.fromkeys(m for m, _, _ in res.samples))
        text = render(res, cfg, models)
        print(text)
        if not args.no_write:
            report.write_results_md(BENCH / "RESULTS.md", text)
            report.chart(res, models, cfg.concurrency, BENCH / "throughput.png")
        return 0
    clock = Timer()
    watch = quiet.CpuWatch()

    ensure_requirements()
    OUT.mkdir(parents=True, exist_ok=True)
    anchors = anc.build_anchors()
    res = Results()
    begin_meta(res, anchors, "bench")

    from corral.store.testing import make_temp_store

    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        store = make_temp_store(tmp, names=args.models)
        corral_srv = anc.corral_server(store.root, threads=cfg.threads, slots=cfg.slots, log_dir=OUT)
        with corral_srv:
            time.sleep(1.0)
            assert corral_srv.proc is not None
            for model in args.models:
                res.add(model, "rss_server_idle", "corral", workloads.rss_mb(corral_srv.proc.pid)["VmRSS"])
            for model in args.models:
                bench_model(res, cfg, anchors, store.root, corral_srv, model,
                            with_python_peer=not args.no_python_peer, clock=clock)
            after = workloads.rss_mb(corral_srv.proc.pid)["VmRSS"]
            for model in args.models:
                res.add(model, "rss_server_after", "corral", after)

    end_meta(res, clock, watch)
    res.dump(OUT / "results.json")
    text = render(res, cfg, args.models)
    print(text)
    if not args.no_write:
        report.write_results_md(BENCH / "RESULTS.md", text)
        report.chart(res, args.models, cfg.concurrency, BENCH / "throughput.png")
    log(f"done in {clock}")
    if not args.models or MODELS[0] in args.models:
        from bench import ray_main

        log("the Ray row")
        ray_main.main(args)
    return 0
