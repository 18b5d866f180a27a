"""Go's ``time.Time`` text as its JSON marshaller writes it (RFC 3339 with nanoseconds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["format_time"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def format_time(value: datetime | int) -> str:
    """RFC 3339 with nanoseconds, as Go's ``time.Time`` marshals (``2024-05-01T12:34:56.123456789Z``).

    ``value`` is an aware ``datetime`` (its offset is kept, ``Z`` for UTC, as Go keeps the
    ``time.Location``), a naive ``datetime`` (taken as UTC), or integer nanoseconds since the Unix
    epoch (UTC; ``time.time_ns()``), the only way to carry Go's nanosecond precision. Trailing
    zeros of the fraction are dropped, and a whole second has no fraction at all, as in Go.
    """
    if isinstance(value, int):
        seconds, nanos = divmod(value, 1_000_000_000)
        moment = _EPOCH + timedelta(seconds=seconds)
    else:
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        nanos = moment.microsecond * 1000
        moment = moment.replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"
