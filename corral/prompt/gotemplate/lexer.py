"""Tokenizer for Go text/template source, following the token rules of Go's text/template/parse/lex.go.

The whole text is tokenized up front; the token stream ends with an EOF token, or with an ERROR token at the
point where Go's lexer would have stopped (the parser reports it only when it gets there, as Go does).
Positions are offsets in the Python string (code points); error messages convert them to Go's byte columns.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

# strconv.Quote, as Go's parse errors quote tokens; re-exported for the executor, which imports it from here
from corral.gocodec import quote as go_quote

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
TRIM_MARKER = "-"
SPACE_CHARS = " \t\r\n"


class T(enum.IntEnum):
    """Token kinds; the values above KEYWORD are keywords, as in Go (the order matters for `is_keyword`)."""

    ERROR = 0
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    COMMENT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


KEYWORDS: dict[str, T] = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}


@dataclass(frozen=True)
class Token:
    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        # Mirrors Go's item.String(), which parse errors quote verbatim.
        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_rune_repr(ch: str) -> str:
    """fmt's %#U: ``U+0023 '#'`` (the quoted form only for printable runes)."""
    code = ord(ch)
    base = f"U+{code:04X}"
    return f"{base} '{ch}'" if ch.isprintable() else base


def is_space(ch: str) -> bool:
    return ch in SPACE_CHARS and ch != ""


def is_alnum(ch: str) -> bool:
    if ch == "":
        return False
    if ch == "_":
        return True
    cat = unicodedata.category(ch)
    # Go's unicode.IsLetter is category L*, unicode.IsDigit is Nd.
    return cat.startswith("L") or cat == "Nd"


class LexError(Exception):
    """Internal: stops the scan; the message becomes an ERROR token."""


class Lexer:
    """Scans template text into tokens; see `tokenize`.

    Line numbers are tracked the way Go's lexer tracks them, because parse errors report them.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.at_eof = False
        self.tokens: list[Token] = []
        self.paren_depth = 0

    # --- helpers (Go's next/backup/peek/emit/ignore) -----------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        if self.pos >= len(self.text):
            self.at_eof = True
            return ""
        ch = self.text[self.pos]
        self.pos += 1
        if ch == "\n":
            self.line += 1
        return ch

    def backup(self) -> None:
        if not self.at_eof and self.pos > 0:
            self.pos -= 1
            if self.text[self.pos] == "\n":
                self.line -= 1

    def this_item(self, typ: T) -> Token:
        tok = Token(typ, self.start, self.text[self.start : self.pos], self.start_line)
        self.start = self.pos
        self.start_line = self.line
        return tok

    def emit(self, typ: T) -> None:
        self.tokens.append(self.this_item(typ))

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def error(self, msg: str) -> LexError:
        self.tokens.append(Token(T.ERROR, self.start, msg, self.start_line))
        return LexError(msg)

    def accept(self, valid: str) -> bool:
        ch = self.next()
        if ch and ch in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def has_left_trim(self, at: int) -> bool:
        s = self.text
        return at + 1 < len(s) and s[at] == TRIM_MARKER and s[at + 1] in SPACE_CHARS

    def at_right_delim(self) -> tuple[bool, bool]:
        s, p = self.text, self.pos
        trimmed = p + 1 < len(s) and s[p] in SPACE_CHARS and s[p + 1] == TRIM_MARKER
        if trimmed and s.startswith(RIGHT_DELIM, p + 2):
            return True, True
        return s.startswith(RIGHT_DELIM, p), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        if ch == "" or ch in SPACE_CHARS or ch in ".,|:()":
            return True
        return self.text.startswith(RIGHT_DELIM, self.pos)

    def skip_leading_space(self, at: int) -> int:
        while at < len(self.text) and self.text[at] in SPACE_CHARS:
            at += 1
        return at

    # --- states --------------------------------------------------------------------------------------
    def run(self) -> list[Token]:
        try:
            inside = False
            while True:
                if inside:
                    inside = self.lex_inside_action()
                else:
                    if not self.lex_text():
                        break
                    inside = self.lex_left_delim()
        except LexError:
            pass
        return self.tokens

    def lex_text(self) -> bool:
        """Emit the text up to the next left delimiter; False at end of input (EOF emitted)."""
        x = self.text.find(LEFT_DELIM, self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.line += self.text.count("\n", self.start, self.pos)
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return False
        if x > self.pos:
            self.pos = x
            trim = 0
            if self.has_left_trim(x + len(LEFT_DELIM)):
                chunk = self.text[self.start : self.pos]
                trim = len(chunk) - len(chunk.rstrip(SPACE_CHARS))
            self.pos -= trim
            self.line += self.text.count("\n", self.start, self.pos)
            tok = self.this_item(T.TEXT)
            self.pos += trim
            self.ignore()
            if tok.val:
                self.tokens.append(tok)
        return True

    def lex_left_delim(self) -> bool:
        """Consume ``{{`` (and a trim marker); comments are skipped here. Returns whether inside an action."""
        self.pos += len(LEFT_DELIM)
        trim = self.has_left_trim(self.pos)
        after = 2 if trim else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self.ignore()
            self.lex_comment()
            return False
        self.tokens.append(self.this_item(T.LEFT_DELIM))
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return True

    def lex_comment(self) -> None:
        self.pos += len(LEFT_COMMENT)
        x = self.text.find(RIGHT_COMMENT, self.pos)
        if x < 0:
            raise self.error("unclosed comment")
        self.pos = x + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim()
        if not delim:
            raise self.error("comment ends before closing delimiter")
        # Go before 1.24 forgot the comment's newlines here, so later errors named too early a line.
        self.line += self.text.count("\n", self.start, self.pos)
        self.this_item(T.COMMENT)
        if trim:
            self.pos += 2
        self.pos += len(RIGHT_DELIM)
        if trim:
            self.pos = self.skip_leading_space(self.pos)
        self.ignore()

    def lex_right_delim(self, trim: bool) -> None:
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(RIGHT_DELIM)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos = self.skip_leading_space(self.pos)
            self.ignore()

    def lex_inside_action(self) -> bool:
        """Lex one token inside an action; returns False once the action is closed."""
        delim, trim = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                self.lex_right_delim(trim)
                return False
            raise self.error("unclosed left paren")
        ch = self.next()
        if ch == "":
            raise self.error("unclosed action")
        if ch in SPACE_CHARS:
            self.backup()
            self.lex_space()
        elif ch == "=":
            self.emit(T.ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                raise self.error("expected :=")
            self.emit(T.DECLARE)
        elif ch == "|":
            self.emit(T.PIPE)
        elif ch == '"':
            self.lex_quote()
        elif ch == "`":
            self.lex_raw_quote()
        elif ch == "$":
            self.lex_variable()
        elif ch == "'":
            self.lex_char()
        elif ch == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            self.lex_field_or_variable(T.FIELD)
        elif ch in "+-." or "0" <= ch <= "9":
            self.backup()
            self.lex_number()
        elif is_alnum(ch):
            self.backup()
            self.lex_identifier()
        elif ch == "(":
            self.paren_depth += 1
            self.emit(T.LEFT_PAREN)
        elif ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self.error("unexpected right paren")
            self.emit(T.RIGHT_PAREN)
        elif ord(ch) < 0x80 and ch.isprintable():
            self.emit(T.CHAR)
        else:
            raise self.error(f"unrecognized character in action: {go_rune_repr(ch)}")
        return True

    def lex_space(self) -> None:
        spaces = 0
        while self.peek() != "" and self.peek() in SPACE_CHARS:
            self.next()
            spaces += 1
        # A space followed by "-}}" belongs to the closing trim marker, not to the pipeline.
        p = self.pos - 1
        if self.text.startswith(TRIM_MARKER, p + 1) and self.text.startswith(RIGHT_DELIM, p + 2):
            self.backup()
            if spaces == 1:
                return
        self.emit(T.SPACE)

    def lex_identifier(self) -> None:
        while True:
            ch = self.next()
            if not is_alnum(ch):
                self.backup()
                break
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            raise self.error(f"bad character {go_rune_repr(ch)}")
        key = KEYWORDS.get(word)
        if key is not None and key > T.KEYWORD:
            self.emit(key)
        elif word[0] == ".":
            self.emit(T.FIELD)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)

    def lex_variable(self) -> None:
        if self.at_terminator():
            self.emit(T.VARIABLE)
            return
        self.lex_field_or_variable(T.VARIABLE)

    def lex_field_or_variable(self, typ: T) -> None:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ == T.VARIABLE else T.DOT)
            return
        while True:
            ch = self.next()
            if not is_alnum(ch):
                self.backup()
                break
        if not self.at_terminator():
            raise self.error(f"bad character {go_rune_repr(ch)}")
        self.emit(typ)

    def lex_char(self) -> None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
                raise self.error("unterminated character constant")
            if ch in ("", "\n"):
                raise self.error("unterminated character constant")
            if ch == "'":
                break
        self.emit(T.CHAR_CONSTANT)

    def lex_number(self) -> None:
        if not self.scan_number():
            raise self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
        if self.peek() in ("+", "-") and self.peek() != "":
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                raise self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            self.emit(T.COMPLEX)
            return
        self.emit(T.NUMBER)

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if is_alnum(self.peek()):
            self.next()
            return False
        return True

    def lex_quote(self) -> None:
        while True:
            ch = self.next()
            if ch == "\\":
                ch = self.next()
                if ch not in ("", "\n"):
                    continue
                raise self.error("unterminated quoted string")
            if ch in ("", "\n"):
                raise self.error("unterminated quoted string")
            if ch == '"':
                break
        self.emit(T.STRING)

    def lex_raw_quote(self) -> None:
        while True:
            ch = self.next()
            if ch == "":
                raise self.error("unterminated raw quoted string")
            if ch == "`":
                break
        self.emit(T.RAW_STRING)


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with EOF or ERROR."""
    return Lexer(text).run()
