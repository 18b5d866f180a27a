"""Is anything else using the CPU? On a 2-core machine with llama.cpp's 2 compute threads, one busy process
elsewhere can halve a measurement (a preempted OpenMP thread stalls every barrier), so the driver waits for
a quiet machine before each round and redoes a round that other processes disturbed."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

_TCK = os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


def machine_busy_s() -> float:
    """CPU seconds the machine has been busy (user, nice, system, irq, softirq, steal), all cores."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TCK


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds of the process and of the children it has reaped)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / _TCK


def tree_cpu_s(root: int | None = None) -> float:
    """CPU seconds of this process and all its descendants, living or reaped."""
    root = os.getpid() if root is None else root
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(kids.get(pid, []))
    return total


@dataclass
class CpuWatch:
    """Share of the machine used by processes outside this benchmark since ``start``."""

    t0: float = field(default_factory=time.monotonic)
    busy0: float = field(default_factory=machine_busy_s)
    ours0: float = field(default_factory=tree_cpu_s)

    def foreign(self) -> tuple[float, float]:
        """(foreign CPU seconds, foreign share of the machine's capacity over the interval)."""
        wall = max(time.monotonic() - self.t0, 1e-6)
        other = max(0.0, (machine_busy_s() - self.busy0) - (tree_cpu_s() - self.ours0))
        return other, other / (wall * CPUS)


def wait_for_quiet(threshold: float = 0.1, window: float = 2.0, max_wait: float = 300.0) -> float:
    """Wait until other processes use less than ``threshold`` of the machine over ``window`` seconds;
    returns the seconds waited (gives up after ``max_wait``)."""
    t0 = time.monotonic()
    while True:
        watch = CpuWatch()
        time.sleep(window)
        if watch.foreign()[1] < threshold or time.monotonic() - t0 > max_wait:
            return time.monotonic() - t0
