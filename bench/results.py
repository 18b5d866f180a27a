"""Where measurements go: samples keyed by (model, workload, system), plus free-form notes."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Results:
    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, model: str, workload: str, system: str, value: float) -> None:
        self.samples[(model, workload, system)].append(float(value))

    def median(self, model: str, workload: str, system: str) -> float | None:
        values = self.samples.get((model, workload, system))
        return statistics.median(values) if values else None

    def ratio(self, model: str, workload: str, a: str, b: str) -> float | None:
        """``a`` over ``b``: the median of the paired ratios when both were sampled alternately the same number
        of times (each pair ran back to back, so a drift of the machine cancels), else the ratio of medians."""
        xs, ys = self.samples.get((model, workload, a)), self.samples.get((model, workload, b))
        if not xs or not ys:
            return None
        if len(xs) == len(ys) and all(ys):
            return statistics.median(x / y for x, y in zip(xs, ys, strict=True))
        mb = statistics.median(ys)
        return statistics.median(xs) / mb if mb else None

    def count(self, model: str, workload: str, system: str) -> int:
        return len(self.samples.get((model, workload, system), []))

    def merge(self, other: Results) -> None:
        for key, values in other.samples.items():
            self.samples[key].extend(values)
        for text in other.notes:
            self.notes.append(text)

    def note(self, text: str) -> None:
        print(f"[bench] note: {text}", flush=True)
        self.notes.append(text)

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        res = cls(meta=data["meta"], notes=list(data["notes"]))
        for row in data["samples"]:
            res.samples[(row["model"], row["workload"], row["system"])] = [float(v) for v in row["values"]]
        return res

    def dump(self, path: Path) -> None:
        rows = [{"model": m, "workload": w, "system": s, "values": v} for (m, w, s), v in self.samples.items()]
        path.write_text(json.dumps({"meta": self.meta, "notes": self.notes, "samples": rows}, indent=1))
