"""``make bench-spec`` (``bench/run.py --suite spec``): speculative decoding and caching, corral against
llama-server on the same GGUF files (issue 20). Builds llama-server and llama-quantize, makes an F16 copy of
smollm2:135m, creates corral's models through its API, starts every server, runs the rows of bench/spec.py
interleaved round by round, then prints the table and rewrites the spec block of RESULTS.md."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from bench import anchors as anc
from bench import main as bm
from bench import quiet, report, spec, spec_report, workloads
from bench.prompts import copy_task, story
from bench.results import Results
from bench.targets import TIMEOUT, Corral, LlamaServer

MODEL = "smollm2:135m"
DRAFT_MODEL, F16_MODEL = "smollm2-f16-draft", "smollm2-f16"
RESULTS_JSON = bm.OUT / "spec-results.json"
T = TypeVar("T")
NOPRUNE_ENV = {"OLLAMA_NOPRUNE": "1"}  # servers come and go on one store: none may prune another's fresh blobs


def make_f16(anchors: anc.Anchors, q4: Path, threads: int) -> Path:
    """smollm2 at F16, dequantized from the bundled Q4_1 file by llama-quantize (kept under .cache/spec/)."""
    out = anc.CACHE / "spec" / f"smollm2-135m-f16-from-{q4.name[:20]}.gguf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_suffix(".part")
        bm.log(f"making {out.name} with llama-quantize")
        subprocess.run([str(anchors.tool("llama-quantize")), "--allow-requantize", str(q4), str(part), "F16",
                        str(threads)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        part.rename(out)
    return out


def upload(client: httpx.Client, base: str, path: Path) -> str:
    """The file as a blob of corral's store (POST /api/blobs, skipped when HEAD finds it); its digest."""
    with open(path, "rb") as f:
        digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
    if client.head(f"{base}/api/blobs/{digest}").status_code != 200:
        with open(path, "rb") as f:
            client.post(f"{base}/api/blobs/{digest}", content=f).raise_for_status()
    return digest


def create_models(base: str, f16: Path, q4: Path, res: Results) -> bool:
    """smollm2-f16 (files only) and smollm2-f16-draft (with the Q4_1 file as its draft) through /api/create;
    False (and a note) when corral refuses the draft model."""
    with httpx.Client(timeout=TIMEOUT) as client:
        files = {"model.gguf": upload(client, base, f16)}
        drafts = {"draft.gguf": upload(client, base, q4)}
        for name, extra in ((F16_MODEL, {}), (DRAFT_MODEL, {"draft_files": drafts})):
            r = client.post(base + "/api/create", json={"model": name, "files": files, "stream": False, **extra})
            if r.status_code != 200:
                res.note(f"corral refused /api/create of {name}: {r.status_code} {r.text[:300]}")
                if name == F16_MODEL:
                    r.raise_for_status()
                return False
    return True


@dataclass
class Peers:
    """Every long-lived server of the decode and shared-prefix rows, as the clients the workloads call."""

    decode_rows: dict[str, list[tuple[str, spec.Decoder]]]
    shared: list[tuple[str, spec.Asker]]


def corral_rss(store_root: Path, cfg: spec.SpecConfig, kv: str, slots: int) -> float:
    """VmRSS of corral's runner for smollm2:135m at ``slots`` slots of cfg.kv_ctx tokens, after one request."""
    env = {**NOPRUNE_ENV, "OLLAMA_KV_CACHE_TYPE": kv, "OLLAMA_FLASH_ATTENTION": "1"}
    srv = anc.corral_server(store_root, threads=cfg.threads, slots=slots, log_dir=bm.OUT, env=env, tag="spec-kv")
    with srv:
        assert srv.proc is not None
        Corral(srv.base, MODEL, threads=cfg.threads, ctx_per_slot=cfg.kv_ctx).decode("Hello there", 4)
        runners = [p for p in workloads.children(srv.proc.pid) if "corral.runner" in workloads.cmdline(p)]
        if len(runners) != 1:
            raise RuntimeError(f"expected one corral runner, found {len(runners)}")
        return workloads.rss_mb(runners[0])["VmRSS"]


def llama_server_rss(anchors: anc.Anchors, q4: Path, cfg: spec.SpecConfig, kv: str, slots: int) -> float:
    srv = anc.llama_server(anchors, q4, threads=cfg.threads, slots=slots, ctx_per_slot=cfg.kv_ctx, log_dir=bm.OUT,
                           tag="spec-kv", extra=["-ctk", kv, "-ctv", kv, "-fa", "on"])
    with srv:
        assert srv.proc is not None
        LlamaServer(srv.base).decode("Hello there", 4)
        return workloads.rss_mb(srv.proc.pid)["VmRSS"]


@contextlib.contextmanager
def peers(cfg: spec.SpecConfig, anchors: anc.Anchors, store_root: Path, q4: Path, f16: Path,
          res: Results) -> Iterator[Peers]:
    threads, ctx = cfg.threads, cfg.ctx_per_slot
    draft = ["--spec-type", "draft-simple", "-md", str(q4), "--spec-draft-n-max", str(cfg.draft_max),
             "--spec-draft-p-min", str(cfg.draft_p_min), "-td", str(threads), "-tbd", str(threads)]
    ngram = ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", str(cfg.ngram_match),
             "--spec-ngram-simple-size-m", str(cfg.ngram_max)]
    one = functools.partial(anc.llama_server, anchors, threads=threads, slots=1, ctx_per_slot=ctx, log_dir=bm.OUT)
    servers = {
        "ls-draft": one(f16, tag="spec-draft", extra=draft), "ls-f16": one(f16, tag="spec-f16"),
        "ls-ngram": one(q4, tag="spec-ngram", extra=ngram), "ls-q4": one(q4, tag="spec-q4"),
        "ls-shared": anc.llama_server(anchors, q4, threads=threads, slots=cfg.clients, ctx_per_slot=ctx,
                                      log_dir=bm.OUT, tag="spec-shared", cache_ram=cfg.prompt_cache_mb),
        "corral": anc.corral_server(store_root, threads=threads, slots=1, log_dir=bm.OUT, env=NOPRUNE_ENV, tag="spec"),
        "corral-shared": anc.corral_server(store_root, threads=threads, slots=cfg.clients, log_dir=bm.OUT,
                                           env={**NOPRUNE_ENV, "CORRAL_PROMPT_CACHE_MB": str(cfg.prompt_cache_mb)},
                                           tag="spec-shared"),
    }
    with contextlib.ExitStack() as stack:
        for srv in servers.values():
            stack.enter_context(srv)
        base = servers["corral"].base
        with_draft = create_models(base, f16, q4, res)
        corral = functools.partial(Corral, base, threads=threads, ctx_per_slot=ctx)
        ls = {k: LlamaServer(s.base) for k, s in servers.items() if k.startswith("ls-")}
        q4_corral = corral(MODEL)
        draft_rows: list[tuple[str, spec.Decoder]] = []
        if with_draft:
            draft_rows.append(("corral", corral(DRAFT_MODEL, load={"draft_num_predict": cfg.draft_max}).decode))
        draft_rows += [("llama-server", ls["ls-draft"].decode), ("corral-plain", corral(F16_MODEL).decode),
                       ("llama-server-plain", ls["ls-f16"].decode)]
        copy_rows: list[tuple[str, spec.Decoder]] = [
            ("corral", functools.partial(q4_corral.decode, ngram_draft=cfg.ngram_max)),
            ("llama-server", ls["ls-ngram"].decode),
            ("corral-plain", functools.partial(q4_corral.decode, ngram_draft=0)),
            ("llama-server-plain", ls["ls-q4"].decode),
        ]
        shared_corral = Corral(servers["corral-shared"].base, MODEL, threads=threads, ctx_per_slot=ctx)
        p = Peers({"draft": draft_rows, "copy": copy_rows},
                  [("corral", shared_corral.first_token_chat), ("llama-server", ls["ls-shared"].first_token_chat)])
        # warm-up: load every runner, touch every path once; a system that fails here is left out of its row
        for group, rows in p.decode_rows.items():
            p.decode_rows[group] = warm(res, group, rows, lambda decode: decode("Hello there", 8))
        p.shared = warm(res, "shared", p.shared, lambda ask: ask("Hello", 2, "You are brief."))
        yield p


def warm(res: Results, group: str, rows: list[tuple[str, T]], call: Callable[[T], object]) -> list[tuple[str, T]]:
    kept = []
    for name, fn in rows:
        try:
            call(fn)
            kept.append((name, fn))
        except Exception as exc:
            res.note(f"{group}: {name} failed its warm-up request ({type(exc).__name__}: {exc}); left out")
    return kept


def one_round(cfg: spec.SpecConfig, p: Peers, probes: dict[str, spec.RssProbe], clock: bm.Timer,
              ) -> Callable[[Results, int], None]:
    def run(res: Results, rnd: int) -> None:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("draft-model decode", functools.partial(spec.spec_decode, res, "draft", p.decode_rows["draft"],
                                                     story(rnd), cfg.draft_predict, cfg.decode_samples)),
            ("copy-heavy decode", functools.partial(spec.spec_decode, res, "copy", p.decode_rows["copy"],
                                                    copy_task(), cfg.copy_predict, cfg.decode_samples)),
            ("shared prefix", functools.partial(spec.shared_prefix, res, p.shared, cfg, rnd)),
            ("KV memory", functools.partial(spec.kv_memory, res, probes, cfg)),
        ]
        bm.run_steps(res, steps, "spec", rnd, cfg.rounds, clock)
    return run


def main(args: argparse.Namespace) -> int:
    cfg = spec.SpecConfig(rounds=args.rounds)
    cfg = cfg.quick() if args.quick else cfg
    if args.report_only:
        res = Results.load(RESULTS_JSON)
        return _output(res, spec.SpecConfig.from_meta(res.meta.get("config")) or cfg,
                       write=not args.no_write and not res.meta.get("quick"))
    clock, watch = bm.Timer(), quiet.CpuWatch()
    bm.OUT.mkdir(parents=True, exist_ok=True)
    anchors = anc.build_anchors(tools=anc.SPEC_TOOLS)
    res = Results()
    bm.begin_meta(res, anchors, "bench-spec")
    res.meta.update(quick=bool(args.quick), config=dataclasses.asdict(cfg))

    from corral.store.models import Store
    from corral.store.testing import make_temp_store

    with tempfile.TemporaryDirectory(prefix="corral-bench-spec-") as tmp:
        store = make_temp_store(tmp, names=[MODEL])
        local = Store(store.root).resolve(MODEL)
        assert local is not None and local.model_path is not None
        q4 = Path(local.model_path)
        f16 = make_f16(anchors, q4, cfg.threads)
        res.meta["gguf"] = {"q4_1": str(q4), "f16": str(f16)}
        probes: dict[str, spec.RssProbe] = {
            "corral": functools.partial(corral_rss, store.root, cfg),
            "llama-server": functools.partial(llama_server_rss, anchors, q4, cfg),
        }
        with peers(cfg, anchors, store.root, q4, f16, res) as p:
            bm.interleave(res, "spec", cfg.rounds, one_round(cfg, p, probes, clock),
                          max_foreign_share=cfg.max_foreign_share, max_redo=cfg.max_redo, quiet_wait=cfg.quiet_wait)
    missing_counts(res)
    bm.end_meta(res, clock, watch)
    res.dump(RESULTS_JSON)
    rc = _output(res, cfg, write=not args.no_write and not args.quick)
    bm.log(f"done in {clock}")
    return rc


def missing_counts(res: Results) -> None:
    """Say so where a speculating system's replies carried no draft counts (corral leaves them out of a
    final chunk when nothing was drafted, and a build without the feature has no such fields)."""
    for group, what in (("draft", "draft-model decode"), ("copy", "copy-heavy decode")):
        for system in ("corral", "llama-server"):
            if res.count(group, "rate", system) and not res.count(group, "drafted", system):
                res.note(f"{what}: {system} reported no draft counts in any reply (nothing drafted, or no "
                         "such fields); its acceptance is not known")


def _output(res: Results, cfg: spec.SpecConfig, *, write: bool) -> int:
    text = spec_report.render(res, cfg)
    print(text)
    if write:
        report.write_results_md(bm.BENCH / "RESULTS.md", text, spec_report.BEGIN, spec_report.END)
    return 0
