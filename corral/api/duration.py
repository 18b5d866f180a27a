"""``keep_alive`` and Go durations, in seconds.

corral keeps durations as float seconds: ``None`` means "absent" (use the runner's sticky value
or ``OLLAMA_KEEP_ALIVE``), ``0.0`` means "unload after this request", ``math.inf`` means
"forever". Ollama's rules (``api.Duration.UnmarshalJSON``, ``envconfig.KeepAlive``):

=====================  ===================================================================
request value          result
=====================  ===================================================================
absent / ``null``      ``None``
number ``n``           ``n`` seconds; any negative number is forever
``"10m"``, ``"1h30m"``  Go ``time.ParseDuration``; a negative duration (``"-1m"``) is forever
``"0"``                 ``0.0`` (Go's one unit-less special case)
``"-1"``, ``"5"``       400 ``time: missing unit in duration "-1"``
``true``, ``[]``, ``{}``  400 ``Unsupported type: 'bool'`` (Go's text, with Go's type name)
=====================  ===================================================================

``OLLAMA_KEEP_ALIVE`` differs: a plain integer is seconds (so ``-1`` means forever) and an
unparsable value silently falls back to the default of five minutes.
"""

from __future__ import annotations

import math
from typing import Any

from corral.api.errors import BadRequest
from corral.gocodec import quote_time

__all__ = [
    "DEFAULT_KEEP_ALIVE",
    "format_go_duration",
    "format_keep_alive",
    "parse_env_duration",
    "parse_go_duration",
    "parse_keep_alive",
    "parse_keep_alive_env",
]

DEFAULT_KEEP_ALIVE = 300.0
"""Five minutes, Ollama's default when neither the request nor the environment says."""

_MAX_INT64 = (1 << 63) - 1
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}


def _invalid(orig: str) -> ValueError:
    return ValueError("time: invalid duration " + quote_time(orig))


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` to integer nanoseconds.

    Raises ``ValueError`` carrying Go's exact message (``time: missing unit in duration "-1"``).
    """
    orig = text
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise _invalid(orig)
    total = 0
    while s:
        if not (s[0] == "." or (s[0].isascii() and s[0].isdigit())):
            raise _invalid(orig)
        # integer part
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        pre = i > 0
        whole = int(s[:i]) if pre else 0
        if whole > 1 << 63:
            raise _invalid(orig)
        s = s[i:]
        # fraction part; Go keeps at most the digits that fit in 63 bits, the rest only count as consumed
        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    candidate = frac * 10 + int(s[i])
                    if frac > _MAX_INT64 // 10 or candidate > 1 << 63:
                        overflow = True
                    else:
                        frac, scale = candidate, scale * 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise _invalid(orig)
        # unit: everything up to the next digit or dot
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + quote_time(orig))
        unit_text, s = s[:i], s[i:]
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ValueError(
                "time: unknown unit " + quote_time(unit_text) + " in duration " + quote_time(orig)
            )
        if whole > (1 << 63) // unit:
            raise _invalid(orig)
        value = whole * unit
        if frac > 0:
            # Go computes the fraction in float64, which keeps it nanosecond-accurate up to hours
            value += int(float(frac) * (float(unit) / scale))
            if value > 1 << 63:
                raise _invalid(orig)
        total += value
        if total > 1 << 63:
            raise _invalid(orig)
    if neg:
        return -total
    if total > _MAX_INT64:
        raise _invalid(orig)
    return total


def _go_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def parse_keep_alive(value: Any) -> float | None:
    """Decode a request's ``keep_alive`` JSON value to seconds (see the module table).

    Returns ``None`` when absent, ``math.inf`` for "forever". Raises :class:`BadRequest` with
    Ollama's text for a malformed value.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"Unsupported type: '{_go_type_name(value)}'")
    if isinstance(value, str):
        try:
            nanos = parse_go_duration(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return math.inf if nanos < 0 else nanos / 1e9
    seconds = float(value)
    if math.isnan(seconds):
        raise BadRequest(f"Unsupported type: '{_go_type_name(value)}'")
    # Go converts through int64 nanoseconds; past that range it overflows, and "forever" is the
    # only sane reading of such a number.
    if seconds < 0 or seconds * 1e9 >= _MAX_INT64:
        return math.inf
    return seconds


def parse_env_duration(text: str | None, default: float) -> float:
    """A duration setting (``OLLAMA_KEEP_ALIVE``, ``OLLAMA_LOAD_TIMEOUT``): a Go duration or integer seconds;
    negative is forever.

    Like Ollama's ``envconfig.Var`` the value is trimmed of spaces and quotes first, and a value
    that parses neither way is ignored (the default applies).
    """
    if text is None:
        return default
    text = text.strip().strip("\"'")
    if not text:
        return default
    try:
        nanos = parse_go_duration(text)
    except ValueError:
        try:
            nanos = _parse_go_int(text) * 1_000_000_000
        except ValueError:
            return default
    if nanos < 0 or nanos >= _MAX_INT64:
        return math.inf
    return nanos / 1e9


def parse_keep_alive_env(text: str | None) -> float:
    """``OLLAMA_KEEP_ALIVE``; default 5m."""
    return parse_env_duration(text, DEFAULT_KEEP_ALIVE)


def _parse_go_int(text: str) -> int:
    """``strconv.ParseInt(s, 10, 64)``: optional sign, ASCII digits only."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or not all("0" <= c <= "9" for c in body):
        raise ValueError(text)
    return int(text)


def format_go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``5m0s``, ``1h0m0s``, ``1.5s``, ``300ms``, ``0s``.

    ``math.inf`` is Go's ``MaxInt64`` duration, ``2562047h47m16.854775807s``.
    """
    nanos = _MAX_INT64 if math.isinf(seconds) and seconds > 0 else round(seconds * 1e9)
    nanos = max(min(nanos, _MAX_INT64), -_MAX_INT64 - 1)
    neg = nanos < 0
    u = -nanos if neg else nanos
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            text = f"{u}ns"
        elif u < 1_000_000:
            text = _frac(u, 3) + "µs"
        else:
            text = _frac(u, 6) + "ms"
    else:
        whole_seconds, frac_ns = divmod(u, 1_000_000_000)
        sec_text = str(whole_seconds % 60)
        if frac_ns:
            sec_text += "." + f"{frac_ns:09d}".rstrip("0")
        text = sec_text + "s"
        minutes = whole_seconds // 60
        if minutes:
            text = f"{minutes % 60}m" + text
            hours = minutes // 60
            if hours:
                text = f"{hours}h" + text
    return "-" + text if neg else text


def _frac(value: int, prec: int) -> str:
    whole, frac = divmod(value, 10**prec)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{prec}d}".rstrip("0")


def format_keep_alive(seconds: float | None) -> str | int | None:
    """The JSON value Ollama's ``api.Duration.MarshalJSON`` writes: ``-1`` when negative or
    forever, else the Go duration string (``"5m0s"``); ``None`` stays ``None`` (omitted).
    """
    if seconds is None:
        return None
    if seconds < 0 or math.isinf(seconds):
        # Go only writes -1 for a negative Duration; its "forever" is MaxInt64, but every
        # reader (Ollama included) maps -1 back to forever, and it is what users type.
        return -1
    return format_go_duration(seconds)
