"""The spec suite's tables (printed, and between the spec markers of RESULTS.md), from the medians in
``Results`` as bench/spec.py records them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench import main as bm
from bench.report import _fmt
from bench.results import Results
from bench.spec import SpecConfig

BEGIN, END = "<!-- spec results start -->", "<!-- spec results end -->"
COLUMNS = ("corral", "llama-server", "corral-plain", "llama-server-plain")
RATIOS = (("corral", "llama-server"), ("corral", "corral-plain"), ("llama-server", "llama-server-plain"))


@dataclass(frozen=True)
class SpecRow:
    label: str
    group: str
    workload: str
    digits: int = 1
    scale: float = 1.0


def rows(cfg: SpecConfig) -> list[SpecRow]:
    last = f"2–{cfg.clients}"
    out = [
        SpecRow(f"draft-model decode: smollm2 F16 + smollm2:135m Q4_1 draft, {cfg.draft_predict} tokens (tok/s)",
                "draft", "rate"),
        SpecRow("… draft tokens accepted (%)", "draft", "acceptance", 1, 100.0),
        SpecRow(f"copy-heavy decode: n-gram drafts, smollm2:135m Q4_1, {cfg.copy_predict} tokens (tok/s)",
                "copy", "rate"),
        SpecRow("… drafted tokens accepted (%)", "copy", "acceptance", 1, 100.0),
        SpecRow(f"shared prefix: clients {last} prompt eval / client 1's (%)", "shared", "rest_pct"),
        SpecRow("shared prefix: client 1's prompt eval (ms)", "shared", "first_prefill_ms", 0),
        SpecRow("shared prefix: first token, client 1 alone (ms)", "shared", "first_ttfb_ms", 0),
        SpecRow(f"shared prefix: first token, clients {last} together (ms)", "shared", "rest_ttfb_ms", 0),
    ]
    out += [SpecRow(f"KV cache per slot, {cfg.kv_ctx} tokens, {kv} (MB)", "kv", f"slot_{kv}") for kv in cfg.kv_types]
    out += [SpecRow(f"KV cache per slot, {kv} / f16 (%)", "kv", f"ratio_{kv}", 1, 100.0)
            for kv in cfg.kv_types if kv != "f16"]
    return out


def details(cfg: SpecConfig) -> list[SpecRow]:
    lo, hi = cfg.kv_slots
    out = [SpecRow(f"{what}: {label}", group, workload, 0)
           for group, what in (("draft", "draft-model decode"), ("copy", "copy-heavy decode"))
           for label, workload in (("tokens generated", "tokens"), ("tokens drafted per request", "drafted"),
                                   ("drafted tokens accepted per request", "accepted"))]
    out += [SpecRow("shared prefix: prompt tokens (client 1)", "shared", "prompt_tokens", 0),
            SpecRow(f"shared prefix: prompt eval, clients 2–{cfg.clients} (ms)", "shared", "rest_prefill_ms", 1)]
    out += [SpecRow(f"RSS of the cache's process, {kv}, {n} slot{'s' if n > 1 else ''} (MB)", "kv", f"rss{n}_{kv}")
            for kv in cfg.kv_types for n in (lo, hi)]
    return out


def _value(res: Results, row: SpecRow, system: str) -> float | None:
    v = res.median(row.group, row.workload, system)
    return None if v is None else v * row.scale


def table(res: Results, table_rows: Sequence[SpecRow], *, ratios: bool) -> str:
    head = ["workload", "corral", "llama-server", "corral, no speculation", "llama-server, no speculation"]
    if ratios:
        head += ["corral / llama-server", "corral / corral without", "llama-server / llama-server without"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table_rows:
        vals = [_value(res, row, s) for s in COLUMNS]
        if all(v is None for v in vals):
            continue
        cells = [row.label, *(_fmt(v, row.digits) for v in vals)]
        if ratios:
            for a, b in RATIOS:
                r = res.ratio(row.group, row.workload, a, b)
                cells.append("–" if r is None else f"{r:.3f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(res: Results, cfg: SpecConfig) -> str:
    meta = res.meta
    parts = [
        *bm.header(meta, "vendored in llama-cpp-python 0.3.36; llama-server and llama-quantize built Release from "
                   "it, `--no-repack`"),
        f"- settings: {cfg.threads} threads, temperature 0, {cfg.rounds} interleaved rounds, medians shown"
        + (" (**quick smoke run**: short prompts and few tokens)" if meta.get("quick") else ""),
        "",
        table(res, rows(cfg), ratios=True),
        "",
        "Details (medians):",
        "",
        table(res, details(cfg), ratios=False),
    ]
    if res.notes:
        parts += ["", "Notes from the run:"] + [f"- {n}" for n in res.notes]
    return "\n".join(parts)
