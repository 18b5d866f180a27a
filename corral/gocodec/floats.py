"""Go's float text: ``strconv.FormatFloat`` and the ``encoding/json`` float encoder.

Python's ``repr`` gives the shortest digits that round-trip a float64, as Go's ``-1`` precision does; what
differs is the layout around them (``1e+06``, ``1`` for ``1.0``) and float32 values, whose shortest digits
are found at 32 bits (``0.1`` rather than ``0.10000000149011612``).
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal

__all__ = ["Float32", "Float32Array", "UnsupportedValueError", "format_float", "format_json_float", "to_float32"]


class Float32(float):
    """A float that Go holds as ``float32``: written with 32-bit shortest round-trip digits."""

    __slots__ = ()


class Float32Array(list[float]):
    """A list whose items are Go ``float32`` values (an embedding vector)."""

    __slots__ = ()


class UnsupportedValueError(ValueError):
    """``json: unsupported value: NaN``: Go's encoder refuses NaN and the infinities."""


_F32 = struct.Struct("<f")


def to_float32(value: float) -> float:
    """Round a double to the nearest float32 (the value Go would hold)."""
    return float(_F32.unpack(_F32.pack(value))[0])


_F32_1E_6 = to_float32(1e-6)
_F32_1E21 = to_float32(1e21)


def _shortest_f32_text(value: float) -> str:
    """Shortest decimal (as ``%e`` text) that reads back as the same float32."""
    # Go finds this with Ryu; searching 1..9 significant digits gives the same digits because a
    # float32 never needs more than 9. Most values need 8 or 9, so start at 7 and go up; only
    # when 7 already works is a shorter form possible.
    text = f"{value:.6e}"
    if to_float32(float(text)) == value:
        for precision in range(5, -1, -1):
            candidate = f"{value:.{precision}e}"
            if to_float32(float(candidate)) != value:
                break
            text = candidate
        return text
    text = f"{value:.7e}"
    if to_float32(float(text)) == value:
        return text
    return f"{value:.8e}"


def _shortest_digits(f: float, bits: int) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and the decimal point position (value = 0.DIGITS * 10**dp)."""
    if f == 0:
        return "0", 1
    text = _shortest_f32_text(abs(f)) if bits == 32 else repr(abs(f))
    _, digits, exp = Decimal(text).normalize().as_tuple()
    ds = "".join(map(str, digits))
    assert isinstance(exp, int)
    return ds, len(ds) + exp


def _rounded_digits(f: float, n: int) -> tuple[str, int]:
    """|f| correctly rounded to n significant digits, trailing zeros trimmed (Go's decimal.Round + trim)."""
    if f == 0:
        return "0", 1
    mant, _, exp = f"{abs(f):.{n - 1}e}".partition("e")
    ds = mant.replace(".", "").rstrip("0") or "0"
    return ds, int(exp) + 1


def _fmt_e(digits: str, dp: int, prec: int, upper: bool) -> str:
    first = digits[0]
    rest = digits[1:]
    frac = (rest + "0" * prec)[:prec] if prec > 0 else ""
    exp = dp - 1 if digits != "0" else 0
    out = first + ("." + frac if prec > 0 else "")
    sign = "-" if exp < 0 else "+"
    e = "E" if upper else "e"
    return f"{out}{e}{sign}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    intpart = "0"
    if dp > 0 and digits != "0":
        intpart = (digits + "0" * dp)[:dp]
    frac = ""
    if prec > 0:
        for i in range(prec):
            j = dp + i
            frac += digits[j] if 0 <= j < len(digits) and digits != "0" else "0"
    return intpart + ("." + frac if prec > 0 else "")


def format_float(f: float, verb: str = "g", prec: int = -1, bits: int = 64) -> str:
    """``strconv.FormatFloat(f, verb, prec, bits)`` for verbs e E f F g G (prec -1 = shortest)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if bits == 32:
        f = to_float32(f)  # a float32 widens to float64 exactly, so fixed precisions below need no care
    neg = math.copysign(1.0, f) < 0
    sign = "-" if neg else ""
    lower = verb.lower()
    if lower in ("e", "f") and prec >= 0:
        out = f"{abs(f):.{prec}{lower}}"
        return sign + (out.upper() if verb == "E" else out)
    shortest = prec < 0
    if shortest:
        digits, dp = _shortest_digits(f, bits)
    else:
        digits, dp = _rounded_digits(f, max(prec, 1) if lower == "g" else prec)
    nd = len(digits.rstrip("0")) or 1
    if lower == "e":
        return sign + _fmt_e(digits, dp, nd - 1, verb == "E")
    if lower == "f":
        return sign + _fmt_f(digits, dp, max(nd - dp, 0))
    # %g: Go's formatDigits
    p = nd if shortest else max(prec, 1)
    eprec = p
    if eprec > nd and nd >= dp:
        eprec = nd
    if shortest:
        eprec = 6
    exp = dp - 1
    if exp < -4 or exp >= eprec:
        return sign + _fmt_e(digits, dp, min(p, nd) - 1, verb == "G")
    if p > dp:
        p = nd
    return sign + _fmt_f(digits, dp, max(p - dp, 0))


def format_json_float(value: float, bits: int = 64) -> str:
    """A float as ``encoding/json`` writes a ``float64`` (or a ``float32`` with ``bits=32``).

    Go's floatEncoder: strconv's shortest ``'f'`` form, or ``'e'`` below 1e-6 and from 1e21 up (compared at
    the value's own width), with the exponent's leading zero dropped (``1e-7``, not ``1e-07``).
    """
    if math.isnan(value) or math.isinf(value):
        raise UnsupportedValueError(f"json: unsupported value: {format_float(value, 'g', -1, bits)}")
    if bits == 32:
        # Embedding vectors are thousands of these, so the digits are laid out here rather than through
        # format_float's general path (the same text, about twice as fast).
        value = to_float32(value)
        mantissa, _, exp_text = _shortest_f32_text(abs(value)).partition("e")
        digits = mantissa.replace(".", "").rstrip("0") or "0"
        exp10 = int(exp_text) if digits != "0" else 0
        sign = "-" if math.copysign(1.0, value) < 0 else ""
        magnitude = abs(value)
        if magnitude and (magnitude < _F32_1E_6 or magnitude >= _F32_1E21):  # compared in float32, as Go does
            head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            exponent = f"-{-exp10}" if exp10 < 0 else f"+{exp10:02d}"  # e+38; e-07 is trimmed to e-7
            return f"{sign}{head}e{exponent}"
        if exp10 >= len(digits) - 1:
            return sign + digits + "0" * (exp10 - len(digits) + 1)
        if exp10 >= 0:
            return sign + digits[: exp10 + 1] + "." + digits[exp10 + 1 :]
        return sign + "0." + "0" * (-exp10 - 1) + digits
    # The hot path (every response's numbers): between 1e-4 and 1e16 repr already is Go's text, but for the
    # ".0" of whole numbers.
    text = repr(value)
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = format_float(value, "e", -1)
        if text[-4:-1] == "e-0":
            text = text[:-2] + text[-1]
        return text
    return format_float(value, "f", -1)
