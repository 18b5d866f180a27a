"""Go's fmt package, as far as templates reach it: Sprint, Sprintln, Sprintf and the %v rules.

Template output is produced by ``fmt.Fprint``, so every printed value goes through here; exactness matters
(``1e+06`` not ``1000000.0``, ``map[a:1 b:2]``, ``[x <nil>]``, ``%!d(string=x)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from corral.gocodec import format_float, quote_rune
from corral.gocodec import quote as go_quote
from corral.prompt.gotemplate.values import Byte, GoStruct, go_type_name, sorted_keys, stringer_of

# --- printf machinery -------------------------------------------------------------------------------------


@dataclass
class _Flags:
    plus: bool = False
    minus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    prec: int | None = None
    plus_v: bool = False
    sharp_v: bool = False


def _pad(s: str, fl: _Flags, zero_ok: bool = True) -> str:
    if fl.width is None or len(s) >= fl.width:
        return s
    fill = fl.width - len(s)
    if fl.minus:
        return s + " " * fill
    if fl.zero and zero_ok:
        # Zero padding goes after a sign.
        if s[:1] in "+- " and s[:1] != "":
            return s[0] + "0" * fill + s[1:]
        return "0" * fill + s
    return " " * fill + s


def _bad_verb(verb: str, arg: Any, fl: _Flags | None = None) -> str:
    """``%!d(string=x)``; Go formats the operand with %v but keeps the verb's width/precision flags."""
    if arg is None:
        return f"%!{verb}(<nil>)"
    inner = replace(fl, sharp_v=False, plus_v=False) if fl is not None else _Flags()
    return f"%!{verb}({go_type_name(arg)}={format_value(arg, 'v', inner)})"


def _fmt_bool(b: bool, verb: str, fl: _Flags) -> str:
    if verb in "tv":
        return _pad("true" if b else "false", fl, zero_ok=False)
    return _bad_verb(verb, b, fl)


def _fmt_int(n: int, verb: str, fl: _Flags) -> str:
    if verb in "vd":
        body = str(abs(n))
    elif verb == "b":
        body = format(abs(n), "b")
    elif verb in "oO":
        body = format(abs(n), "o")
    elif verb == "x":
        body = format(abs(n), "x")
    elif verb == "X":
        body = format(abs(n), "X")
    elif verb == "c":
        return _pad(_rune(n), fl)
    elif verb == "q":
        return _pad(quote_rune(n, ascii_only=fl.plus), fl)
    elif verb == "U":
        out = f"U+{n % (1 << 64):04X}"
        if fl.sharp and 0 <= n <= 0x10FFFF and chr(n).isprintable():
            out += f" '{chr(n)}'"
        return _pad(out, fl)
    else:
        return _bad_verb(verb, n, fl)
    if fl.prec is not None:
        body = body.rjust(fl.prec, "0") if fl.prec > 0 or n != 0 else ""
    prefix = ""
    if fl.sharp or verb == "O":
        prefix = {"b": "0b", "o": "0", "O": "0o", "x": "0x", "X": "0X"}.get(verb, "")
        if verb == "o" and body.startswith("0"):
            prefix = ""
    sign = "-" if n < 0 else ("+" if fl.plus else (" " if fl.space else ""))
    if fl.zero and fl.width is not None and not fl.minus and fl.prec is None:
        body = body.rjust(fl.width - len(sign), "0")  # Go leaves the 0x prefix out of the count
    return _pad(sign + prefix + body, fl, zero_ok=False)


def _rune(n: int) -> str:
    if 0 <= n <= 0x10FFFF and not 0xD800 <= n <= 0xDFFF:
        return chr(n)
    return "\ufffd"


def _fmt_float(f: float, verb: str, fl: _Flags) -> str:
    if verb == "v":
        verb = "g"
    if verb in "xX":
        out = _hex_float(f, verb == "X", fl)
        if fl.sharp and math.isfinite(f):
            out = _sharp_float(out, verb, -1 if fl.prec is None else fl.prec)
        return _pad(out, fl)
    if verb not in "eEfFgG":
        return _bad_verb(verb, f, fl)
    prec = -1 if fl.prec is None else fl.prec
    if verb in "eEfF" and prec < 0:
        prec = 6
    out = format_float(f, "f" if verb == "F" else verb, prec)
    if fl.sharp and math.isfinite(f):
        out = _sharp_float(out, verb, prec)
    if fl.plus and not out.startswith(("-", "+")):
        out = "+" + out
    elif fl.space and not out.startswith(("-", "+")):
        out = " " + out
    elif out.startswith("+") and not fl.plus:  # +Inf keeps its sign only when asked
        out = (" " if fl.space else "") + out[1:]
    if math.isinf(f) or math.isnan(f):
        return _pad(out, fl, zero_ok=False)
    return _pad(out, fl)


def _sharp_float(num: str, verb: str, prec: int) -> str:
    """The # flag on floats: always a decimal point, and %g/%x keep trailing zeros (Go's fmtFloat)."""
    digits = (6 if prec == -1 else prec) if verb in "gGx" else 0
    sign = num[0] if num[:1] in "+-" else ""
    body = num[len(sign) :]
    tail = ""
    has_point = False
    seen_nonzero = False
    kept = []
    for i, ch in enumerate(body):
        if ch == ".":
            has_point = True
        elif ch in "pP" or (ch in "eE" and verb not in "xX"):
            tail = body[i:]
            break
        else:
            if ch != "0":
                seen_nonzero = True
            if seen_nonzero:
                digits -= 1
        kept.append(ch)
    out = "".join(kept)
    if not has_point:
        if out == "0":
            digits -= 1
        out += "."
    return sign + out + "0" * max(digits, 0) + tail


def _hex_float(f: float, upper: bool, fl: _Flags) -> str:
    """strconv's 'x' format, shortest: 0x1.cp+01."""
    if math.isnan(f) or math.isinf(f):
        return format_float(f)
    sign = "-" if math.copysign(1.0, f) < 0 else ("+" if fl.plus else "")
    if f == 0:
        out = "0x0p+00"
    else:
        mant, _, exp = abs(f).hex().partition("p")
        head, _, frac = mant.partition(".")
        frac = frac.rstrip("0")
        e = int(exp)
        out = f"{head}{'.' + frac if frac else ''}p{'-' if e < 0 else '+'}{abs(e):02d}"
    return sign + (out.upper() if upper else out)


def _fmt_str(s: str, verb: str, fl: _Flags) -> str:
    if fl.prec is not None and verb in "svqxX":
        s = s[: fl.prec]
    if verb in "vs":
        if fl.sharp_v:
            return _pad(go_quote(s), fl)
        return _pad(s, fl)
    if verb == "q":
        if fl.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", fl)
        return _pad(go_quote(s, ascii_only=fl.plus), fl)
    if verb in "xX":
        data = s.encode("utf-8", "surrogatepass")
        if not data:
            return _pad("", fl)
        sep = " " if fl.space else ""
        pre = ("0x" if verb == "x" else "0X") if fl.sharp else ""
        parts = [pre + format(b, "02x" if verb == "x" else "02X") for b in data]
        if not fl.space and pre:
            return _pad(pre + "".join(p[2:] for p in parts), fl)
        return _pad(sep.join(parts), fl)
    return _bad_verb(verb, s, fl)


def format_value(v: Any, verb: str = "v", fl: _Flags | None = None, depth: int = 0) -> str:
    """fmt's printArg/printValue for one operand."""
    fl = fl or _Flags()
    if v is None:
        if depth > 0:
            return "<nil>"
        if verb in "Tv":
            return _pad("<nil>", fl)
        return _bad_verb(verb, None)
    if verb == "T":
        return _pad(go_type_name(v), fl)
    if fl.sharp_v:
        return _pad(_go_syntax(v, depth), fl)
    stringer = stringer_of(v)
    if stringer is not None and verb in "vsxXq" and not fl.sharp_v:
        return _fmt_str(stringer(v), verb, fl)
    if isinstance(v, bool):
        return _fmt_bool(v, verb, fl)
    if isinstance(v, int):
        return _fmt_int(v, verb, fl)
    if isinstance(v, float):
        return _fmt_float(v, verb, fl)
    if isinstance(v, str):
        return _fmt_str(v, verb, fl)
    if isinstance(v, (list, tuple)):
        inner = " ".join(format_value(e, verb, fl, depth + 1) for e in v)
        return "[" + inner + "]"
    if isinstance(v, dict):
        items = [
            format_value(k, verb, fl, depth + 1) + ":" + format_value(v[k], verb, fl, depth + 1) for k in sorted_keys(v)
        ]
        return "map[" + " ".join(items) + "]"
    if isinstance(v, GoStruct):
        parts = []
        for f in v.fields:
            val = v.values.get(f.name)
            text = format_value(val, verb, fl, depth + 1)
            parts.append(f"{f.name}:{text}" if fl.plus_v else text)
        return "{" + " ".join(parts) + "}"
    if callable(v):
        return _bad_verb(verb, v) if verb != "v" else "0x0"
    return _pad(str(v), fl)


def _go_syntax(v: Any, depth: int) -> str:
    """%#v: a Go-syntax representation (composite literals for slices, maps and structs)."""
    if v is None:
        return "interface {}(nil)" if depth > 0 else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Byte):
        return f"0x{v:x}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, str):
        return go_quote(v)
    typ = go_type_name(v)
    if isinstance(v, (list, tuple)):
        return typ + "{" + ", ".join(_go_syntax(e, depth + 1) for e in v) + "}"
    if isinstance(v, dict):
        items = (f"{_go_syntax(k, depth + 1)}:{_go_syntax(v[k], depth + 1)}" for k in sorted_keys(v))
        return typ + "{" + ", ".join(items) + "}"
    if isinstance(v, GoStruct):
        fields = ", ".join(f"{f.name}:{_go_syntax(v.values.get(f.name), depth + 1)}" for f in v.fields)
        return ("&" + typ[1:] if typ.startswith("*") else typ) + "{" + fields + "}"
    return format_value(v)


def sprint(*args: Any) -> str:
    """fmt.Sprint: operands separated by a space when neither neighbour is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: operands always separated by spaces, newline appended."""
    return " ".join(format_value(a) for a in args) + "\n"


def _parse_num(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit() and fmt[i] in "0123456789":
        i += 1
        if i - start > 6:  # Go refuses absurd widths
            return None, i
    if i == start:
        return None, i
    return int(fmt[start:i]), i


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf with Go's verbs, flags, width/precision (incl. ``*``), ``[n]`` indexes and error forms."""
    out: list[str] = []
    argn = 0
    reordered = False
    good_argnum = True
    i = 0
    end = len(fmt)

    def arg_number(i: int) -> tuple[int, bool]:
        nonlocal argn, reordered, good_argnum
        if i >= end or fmt[i] != "[":
            return i, False
        reordered = True
        close = fmt.find("]", i + 1)
        if close < 0:
            good_argnum = False
            return i + 1, False
        num = fmt[i + 1 : close]
        if not num.isdigit() or not 0 < int(num) <= len(args):
            good_argnum = False
            return close + 1, True
        argn = int(num) - 1
        return close + 1, True

    while i < end:
        start = i
        while i < end and fmt[i] != "%":
            i += 1
        out.append(fmt[start:i])
        if i >= end:
            break
        i += 1
        fl = _Flags()
        while i < end and fmt[i] in "#0+- ":
            c = fmt[i]
            if c == "#":
                fl.sharp = True
            elif c == "0":
                fl.zero = not fl.minus
            elif c == "+":
                fl.plus = True
            elif c == "-":
                fl.minus, fl.zero = True, False
            else:
                fl.space = True
            i += 1
        good_argnum = True
        i, after_index = arg_number(i)
        if i < end and fmt[i] == "*":
            i += 1
            if argn < len(args) and isinstance(args[argn], int) and not isinstance(args[argn], bool):
                fl.width = args[argn]
                if fl.width < 0:
                    fl.minus, fl.zero, fl.width = True, False, -fl.width
            else:
                out.append("%!(BADWIDTH)")
            argn += 1
            after_index = False
        else:
            fl.width, i = _parse_num(fmt, i)
            if after_index and fl.width is not None:
                good_argnum = False
        if i + 1 <= end and i < end and fmt[i] == ".":
            i += 1
            if after_index:
                good_argnum = False
            i, after_index = arg_number(i)
            if i < end and fmt[i] == "*":
                i += 1
                if argn < len(args) and isinstance(args[argn], int) and not isinstance(args[argn], bool):
                    fl.prec = args[argn]
                    if fl.prec < 0:
                        fl.prec = None
                else:
                    out.append("%!(BADPREC)")
                argn += 1
                after_index = False
            else:
                prec, i = _parse_num(fmt, i)
                fl.prec = prec if prec is not None else 0
        if not after_index:
            i, after_index = arg_number(i)
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good_argnum:
            out.append(f"%!{verb}(BADINDEX)")
        elif argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                fl.sharp_v, fl.plus_v = fl.sharp, fl.plus
                if fl.sharp_v:
                    fl.sharp = False
                if fl.plus_v:
                    fl.plus = False
            out.append(format_value(args[argn], verb, fl))
            argn += 1
    if not reordered and argn < len(args):
        extra = []
        for a in args[argn:]:
            extra.append("<nil>" if a is None else f"{go_type_name(a)}={format_value(a)}")
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)
