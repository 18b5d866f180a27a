"""The ``--verbose`` block after an answer (Ollama's ``api.Metrics.Summary``), as a pure function.

Ollama prints each duration with Go's ``time.Duration.String`` (``1.930383291s``, ``63.125µs``, ``2m3.5s``)
and leaves out every line whose value is zero: a model that was already loaded has no ``load duration``, a
prompt served from the cache may have no prompt eval lines at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["go_duration", "summary"]

_SECOND = 1_000_000_000


def _trim(value: int, digits: int) -> str:
    """``value / 10**digits`` with Go's fraction: no trailing zeros, no point when there is none."""
    whole, frac = divmod(value, 10**digits)
    return f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` of integer nanoseconds (kept integral: floats would lose the last
    digits of ``1.930383291s``)."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_trim(u, 3)}µs"
    if u < _SECOND:
        return f"{sign}{_trim(u, 6)}ms"
    seconds, frac = divmod(u, _SECOND)
    text = _trim(seconds % 60 * _SECOND + frac, 9) + "s"
    minutes = seconds // 60
    if minutes:
        hours = minutes // 60
        text = (f"{hours}h" if hours else "") + f"{minutes % 60}m" + text
    return sign + text


def _get(metrics: Any, name: str) -> int:
    value = metrics.get(name) if isinstance(metrics, Mapping) else getattr(metrics, name, None)
    return int(value or 0)


def summary(metrics: Any) -> str:
    """The lines Ollama writes to stderr for a final response part (a mapping or an SDK response)."""
    total = _get(metrics, "total_duration")
    load = _get(metrics, "load_duration")
    prompt_count = _get(metrics, "prompt_eval_count")
    prompt_ns = _get(metrics, "prompt_eval_duration")
    count = _get(metrics, "eval_count")
    eval_ns = _get(metrics, "eval_duration")
    lines = []
    if total > 0:
        lines.append(f"total duration:       {go_duration(total)}")
    if load > 0:
        lines.append(f"load duration:        {go_duration(load)}")
    if prompt_count > 0:
        lines.append(f"prompt eval count:    {prompt_count} token(s)")
    if prompt_ns > 0:
        lines.append(f"prompt eval duration: {go_duration(prompt_ns)}")
        lines.append(f"prompt eval rate:     {prompt_count / (prompt_ns / _SECOND):.2f} tokens/s")
    if count > 0:
        lines.append(f"eval count:           {count} token(s)")
    if eval_ns > 0:
        lines.append(f"eval duration:        {go_duration(eval_ns)}")
        lines.append(f"eval rate:            {count / (eval_ns / _SECOND):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)
