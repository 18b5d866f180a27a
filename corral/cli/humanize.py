"""Sizes and relative times as Ollama's ``format`` package writes them (``HumanBytes``, ``HumanTime``).

Pure functions over integers and datetimes, so the CLI's tables can be tested with fixed clocks.  Go's
arithmetic is reproduced where it decides the text: durations are whole nanoseconds, ``int()`` and integer
division truncate toward zero, ``math.Round`` rounds halves away from zero, and sizes of ten units or more
are truncated (98.6 MB is ``98 MB``) while smaller ones keep one decimal unless whole (``1 GB``, ``1.5 GB``).
"""

from __future__ import annotations

import datetime
import math

__all__ = ["go_round", "human_bytes", "human_bytes2", "human_duration", "human_time", "human_time_lower", "nanoseconds",
           "parse_time"]

_SECOND = 10**9
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE

_DECIMAL = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))
_ZERO_TIME = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone.utc)  # Go's time.Time{}


def _div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def go_round(x: float) -> int:
    """Go's ``math.Round``: halves away from zero (Python's ``round`` goes to even)."""
    t = math.trunc(x)
    if abs(x - t) >= 0.5:
        t += 1 if x > 0 else -1
    return t


def _as_float(ns: int, unit: int) -> float:
    """Go's ``Duration.Seconds/Minutes/Hours``: whole units plus the remainder as a fraction."""
    whole = _div(ns, unit)
    return whole + (ns - whole * unit) / unit


def human_bytes(b: int) -> str:
    """``format.HumanBytes``: decimal units; ``1.5 KB``, ``1 MB``, ``98 MB``, ``2.0 TB``."""
    unit = next(((size, name) for size, name in _DECIMAL if b >= size), None)
    if unit is None:
        return f"{b} B"
    value = b / unit[0]
    if value >= 10 or value == math.trunc(value):
        return f"{int(value)} {unit[1]}"
    return f"{value:.1f} {unit[1]}"


def human_bytes2(b: int) -> str:
    """``format.HumanBytes2``: binary units with one decimal (``1.0 GiB``)."""
    for size, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


def nanoseconds(delta: datetime.timedelta) -> int:
    """A timedelta as whole nanoseconds, exactly (no float on the way)."""
    return ((delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds) * 1000


def human_duration(ns: int) -> str:
    """Ollama's ``humanDuration`` of a non-negative duration in nanoseconds (``About a minute``, ``3 days``)."""
    seconds = math.trunc(_as_float(ns, _SECOND))
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = math.trunc(_as_float(ns, _MINUTE))
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # From here on hours are rounded, so 90 minutes is already "2 hours"; days, weeks and months are
    # whole divisions of the rounded hours (47.5 hours is "2 days", 13.9 days is still "13 days").
    hours = go_round(_as_float(ns, _HOUR))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{_div(hours, 24)} days"
    if hours < 24 * 30 * 2:
        return f"{_div(_div(hours, 24), 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{_div(_div(hours, 24), 30)} months"
    return f"{_div(_div(math.trunc(_as_float(ns, _HOUR)), 24), 365)} years"


def human_time(when: datetime.datetime | None, zero_value: str, now: datetime.datetime | None = None) -> str:
    """``format.HumanTime``: ``2 days ago``, ``4 minutes from now``, ``Forever`` (over 20 years ahead), or
    ``zero_value`` for a missing time (Go's zero ``time.Time``)."""
    if when is None or _aware(when) == _ZERO_TIME:
        return zero_value
    delta = nanoseconds(_aware(now or datetime.datetime.now(datetime.timezone.utc)) - _aware(when))
    if _div(_div(math.trunc(_as_float(delta, _HOUR)), 24), 365) < -20:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def human_time_lower(when: datetime.datetime | None, zero_value: str, now: datetime.datetime | None = None) -> str:
    return human_time(when, zero_value, now).lower()


def _aware(t: datetime.datetime) -> datetime.datetime:
    # A naive time from a server that omits the zone is read as UTC, as Go's JSON decoding would not
    # accept it at all; better a plausible age than a crash.
    return t if t.tzinfo is not None else t.replace(tzinfo=datetime.timezone.utc)


def parse_time(text: object) -> datetime.datetime | None:
    """An RFC 3339 time from the wire (Go writes up to nine fractional digits); None when absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return _aware(datetime.datetime.fromisoformat(text))
    except ValueError:
        return None
