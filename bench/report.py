"""Tables (printed and in RESULTS.md) and the throughput chart, from the medians in ``Results``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.results import Results

SYSTEMS = ("corral", "llama-server", "llama-cpp-python", "batched-bench", "llama-bench")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

Check = Callable[[Results, str], "tuple[str, bool | None]"]


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _at_least(workload: str, against: str, factor: float) -> Check:
    def check(res: Results, model: str) -> tuple[str, bool | None]:
        r = res.ratio(model, workload, "corral", against)
        return f"≥ {factor:g}× {against}", None if r is None else r >= factor
    return check


def _both(*checks: Check) -> Check:
    def check(res: Results, model: str) -> tuple[str, bool | None]:
        parts = [c(res, model) for c in checks]
        oks = [ok for _, ok in parts]
        ok = None if any(o is None for o in oks) else all(oks)
        return ", ".join(text for text, _ in parts), ok
    return check


def _at_most(workload: str, limit: float, unit: str, system: str = "corral") -> Check:
    def check(res: Results, model: str) -> tuple[str, bool | None]:
        a = res.median(model, workload, system)
        return f"≤ {limit:g} {unit}", None if a is None else a <= limit
    return check


@dataclass(frozen=True)
class Row:
    label: str
    workload: str
    digits: int = 1
    check: Check | None = None
    corral_as: str = "corral"  # which system's samples fill the corral column
    scale: float = 1.0


def rows(decode_lengths: Sequence[int], concurrency: Sequence[int]) -> list[Row]:
    out = [Row(f"decode, 1 stream, {n} tokens (tok/s)", f"decode{n}",
               check=_both(_at_least(f"decode{n}", "batched-bench", 0.9), _at_least(f"decode{n}", "llama-server", 1.0)))
           for n in decode_lengths]
    out += [Row(f"aggregate, {c} streams (tok/s)", f"agg{c}",
                check=_at_least(f"agg{c}", "llama-server", 1.0) if c >= 4 else None) for c in concurrency]
    out += [
        Row("first-token overhead, short prompt (ms)", "ftt_short", 2, _at_most("ftt_short", 5, "ms")),
        Row("… same via /api/chat (ms)", "ftt_short", 2, _at_most("ftt_short", 5, "ms", "corral-chat"),
            corral_as="corral-chat"),
        Row("first token via /v1/chat/completions minus via /api/chat (ms)", "v1_extra", 2,
            _at_most("v1_extra", 1, "ms")),
        Row("first-token overhead, ~1k-token prompt (ms)", "ftt_long", 2, _at_most("ftt_long", 5, "ms")),
        Row("prefix reuse: 2nd-turn / 1st-turn prompt eval (%)", "prefix", 1, _at_most("prefix", 0.2, "(20 %)"),
            scale=100.0),
        Row("model load, cold (ms; llama-server: start to healthy)", "load_cold", 0),
        Row("model load, warm (ms)", "load_warm", 1),
        Row("/api/tags req/s (llama-server: /v1/models)", "tags_rps", 0),
        Row("/api/show req/s (llama-server: /props)", "show_rps", 0),
        Row("RSS, server with no model loaded (MB)", "rss_server_idle", 1, _at_most("rss_server_idle", 100, "MB")),
        Row("RSS, server after the run, models unloaded (MB)", "rss_server_after", 1),
        Row("RSS, model process (corral: runner) (MB)", "rss_model", 1),
    ]
    return out


def main_table(res: Results, models: Sequence[str], table_rows: Sequence[Row]) -> str:
    head = ("| model | workload | corral | llama-server | llama-cpp-python | batched-bench | llama-bench "
            "| corral / llama-server | corral / engine | target | met |")
    lines = [head, "|" + "---|" * 11]
    for model in models:
        for row in table_rows:
            vals: dict[str, float | None] = {}
            for s in SYSTEMS:
                v = res.median(model, row.workload, row.corral_as if s == "corral" else s)
                vals[s] = None if v is None else v * row.scale
            if all(v is None for v in vals.values()):
                continue
            target, ok = row.check(res, model) if row.check else ("", None)
            if row.corral_as != "corral":
                vals = {s: (v if s == "corral" else None) for s, v in vals.items()}
            met = "" if row.check is None else {True: "yes", False: "**no**", None: "n/a"}[ok]
            ratios = [None if vals["corral"] is None or vals[s] is None
                      else res.ratio(model, row.workload, row.corral_as, s) for s in ("llama-server", "batched-bench")]
            cells = [model, row.label, *(_fmt(vals[s], row.digits) for s in SYSTEMS),
                     *(_fmt(r, 3) + "×" if r is not None else "–" for r in ratios), target, met]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DETAILS = (
    ("tokens generated, decode 128", "decode128_tokens", 0),
    ("tokens generated, decode 512", "decode512_tokens", 0),
    ("tokens generated, 8 streams (sum)", "agg8_tokens", 0),
    ("prompt tokens, short / long", "prompt_tokens_short", 0),
    ("prompt tokens, long", "prompt_tokens_long", 0),
    ("time to first line, short (ms)", "ttfb_short", 1),
    ("server prefill, short (ms)", "prefill_short", 1),
    ("time to first line, long (ms)", "ttfb_long", 1),
    ("server prefill, long (ms)", "prefill_long", 1),
    ("chat turn 1: prompt tokens", "prefix_first_tokens", 0),
    ("chat turn 1: prompt eval (ms)", "prefix_first_ms", 1),
    ("chat turn 2: prompt tokens", "prefix_second_tokens", 0),
    ("chat turn 2: prompt eval (ms)", "prefix_second_ms", 1),
    ("RSS anon, model process (MB)", "rss_model_anon", 1),
    ("RSS file-backed, model process (MB)", "rss_model_file", 1),
)


def details_table(res: Results, models: Sequence[str]) -> str:
    systems = ("corral", "corral-chat", "llama-server", "llama-cpp-python")
    lines = ["| model | measure | " + " | ".join(systems) + " |", "|" + "---|" * (2 + len(systems))]
    for model in models:
        for label, workload, digits in DETAILS:
            vals = [res.median(model, workload, s) for s in systems]
            if all(v is None for v in vals):
                continue
            lines.append(f"| {model} | {label} | " + " | ".join(_fmt(v, digits) for v in vals) + " |")
    return "\n".join(lines)


def misses(res: Results, models: Sequence[str], table_rows: Sequence[Row]) -> list[str]:
    out = []
    for model in models:
        for row in table_rows:
            if row.check is None:
                continue
            target, ok = row.check(res, model)
            if ok is False:
                out.append(f"{model}: {row.label}: target {target} missed")
    return out


def chart(res: Results, models: Sequence[str], concurrency: Sequence[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for system, style in (("corral", "o-"), ("llama-server", "s-"), ("llama-cpp-python", "^-"),
                              ("batched-bench", "x--")):
            xs, ys = [], []
            for c in concurrency:
                v = res.median(model, f"agg{c}", system)
                if v is not None:
                    xs.append(c)
                    ys.append(v)
                for sample in res.samples.get((model, f"agg{c}", system), []):
                    ax.plot(c, sample, style[0], alpha=0.25, color=f"C{SYSTEMS.index(system)}")
            if xs:
                label = "llama-batched-bench S_TG (no HTTP)" if system == "batched-bench" else system
                ax.plot(xs, ys, style, label=label, color=f"C{SYSTEMS.index(system)}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(concurrency), [str(c) for c in concurrency])
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("generated tokens per wall second")
        ax.set_title(model)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Aggregate decode throughput (median of interleaved rounds; faint: each round)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results_md(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the generated section of RESULTS.md between ``begin`` and ``end``, keeping the hand-written
    text around it (a file without the markers gets the section at its end)."""
    block = f"{begin}\n{section.strip()}\n{end}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if begin in text and end in text:
            text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
        else:
            text = text.rstrip("\n") + f"\n\n{block}\n"
        path.write_text(text, encoding="utf-8")
        return
    path.write_text(f"# corral benchmarks\n\n{block}\n", encoding="utf-8")
