"""Go's quoted strings: ``strconv.Quote`` (the ``%q`` verb), ``QuoteToASCII`` (``%+q``), ``QuoteRune``.

A Python string holding a lone surrogate (from a ``"\\ud800"`` escape in a request) stands for the U+FFFD
that Go's JSON decoder would have put in its place, so it is quoted as that character.
"""

from __future__ import annotations

__all__ = ["quote", "quote_rune", "quote_time"]

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote_char(ch: str, quote_char: str, ascii_only: bool) -> str:
    code = ord(ch)
    if ch == quote_char or ch == "\\":
        return "\\" + ch
    if 0xD800 <= code <= 0xDFFF:
        ch, code = "\ufffd", 0xFFFD
    if ch.isprintable() and (not ascii_only or code < 0x80):
        return ch
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str, *, ascii_only: bool = False) -> str:
    """``strconv.Quote``, or ``strconv.QuoteToASCII`` with ``ascii_only`` (printable non-ASCII escaped)."""
    return '"' + "".join(_quote_char(ch, '"', ascii_only) for ch in text) + '"'


def quote_rune(code: int, *, ascii_only: bool = False) -> str:
    """``strconv.QuoteRune`` (the ``%q`` of an integer): invalid code points become U+FFFD."""
    if not 0 <= code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    return "'" + _quote_char(chr(code), "'", ascii_only) + "'"


def quote_time(text: str) -> str:
    """``time``'s private ``quote`` (its parse errors): like ``%q``, but every non-ASCII or control byte as
    ``\\xNN`` of its UTF-8 encoding."""
    parts = ['"']
    for ch in text:
        if ord(ch) >= 0x80 or ch < " ":
            parts.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            if ch in '"\\':
                parts.append("\\")
            parts.append(ch)
    parts.append('"')
    return "".join(parts)
