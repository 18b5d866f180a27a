"""Parser for Go text/template, producing the node tree of `nodes`.

The control flow follows Go's text/template/parse/parse.go closely (including its three-token look-ahead
buffer), because Go's error messages report the line of the most recently read token and templates that
parse in Go must parse here, and vice versa.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection

from corral.gocodec import quote as go_quote
from corral.prompt.gotemplate.errors import TemplateSyntaxError
from corral.prompt.gotemplate.lexer import T, Token, tokenize
from corral.prompt.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    CommentNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
)


class _TokenSource:
    """The shared token stream: defined templates are parsed by nested parsers reading the same stream."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def next_item(self) -> Token:
        if self.i < len(self.tokens):
            tok = self.tokens[self.i]
            self.i += 1
            return tok
        last = self.tokens[-1]
        return Token(T.EOF, last.pos, "", last.line)


class _TreeParser:
    """Parses one tree (the main template, or one ``define``/``block`` body)."""

    def __init__(self, name: str, src: _TokenSource, trees: dict[str, ListNode], funcs: Collection[str]) -> None:
        self.name = name
        self.src = src
        self.trees = trees
        self.funcs = funcs
        self.token: list[Token] = [Token(T.EOF, 0, "", 0)] * 3
        self.peek_count = 0
        self.vars: list[str] = ["$"]
        self.action_line = 0
        self.range_depth = 0

    # --- token buffer (Go's next/backup/peek) --------------------------------------------------------
    def next(self) -> Token:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = self.src.next_item()
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: Token) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: Token, t1: Token) -> None:
        self.token[1] = t1
        self.token[2] = t2
        self.peek_count = 3

    def peek(self) -> Token:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = self.src.next_item()
        return self.token[0]

    def next_non_space(self) -> Token:
        while True:
            tok = self.next()
            if tok.typ != T.SPACE:
                return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    # --- errors ----------------------------------------------------------------------------------------
    def errorf(self, msg: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.name}:{self.token[0].line}: {msg}")

    def expect(self, expected: T, context: str) -> Token:
        tok = self.next_non_space()
        if tok.typ != expected:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: Token, context: str) -> TemplateSyntaxError:
        if tok.typ == T.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != tok.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{tok}{extra}")
        return self.errorf(f"unexpected {tok} in {context}")

    # --- structure -------------------------------------------------------------------------------------
    def parse_main(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().typ != T.EOF:
            if self.peek().typ == T.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ == T.DEFINE:
                    self.nested("definition").parse_definition()
                    continue
                self.backup2(delim)
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                raise self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def nested(self, name: str) -> _TreeParser:
        return _TreeParser(self.name, self.src, self.trees, self.funcs)

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(tok, context)
        name = self.unquote(tok.val)
        self.expect(T.RIGHT_DELIM, context)
        body, end = self.item_list()
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(name, body)

    def add(self, name: str, body: ListNode) -> None:
        existing = self.trees.get(name)
        if existing is None or is_empty_tree(existing):
            self.trees[name] = body
        elif not is_empty_tree(body):
            raise self.errorf(f"template: multiple definition of template {_go_q(name)}")

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != T.EOF:
            node = self.text_or_action()
            if isinstance(node, (EndNode, ElseNode)):
                return lst, node
            lst.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == T.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.typ == T.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if tok.typ == T.COMMENT:
            return CommentNode(tok.pos, tok.val)
        raise self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == T.BLOCK:
            return self.block_control()
        if tok.typ in (T.BREAK, T.CONTINUE):
            return self.break_or_continue(tok)
        if tok.typ == T.ELSE:
            return self.else_control()
        if tok.typ == T.END:
            return EndNode(self.expect(T.RIGHT_DELIM, "end").pos)
        if tok.typ == T.IF:
            return IfNode(*self.parse_control("if"))
        if tok.typ == T.RANGE:
            return RangeNode(*self.parse_control("range"))
        if tok.typ == T.TEMPLATE:
            return self.template_control()
        if tok.typ == T.WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", T.RIGHT_DELIM))

    def break_or_continue(self, keyword: Token) -> Node:
        word = "break" if keyword.typ == T.BREAK else "continue"
        tok = self.next_non_space()
        if tok.typ != T.RIGHT_DELIM:
            raise self.unexpected(tok, "{{" + word + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + word + "}} outside {{range}}")
        if keyword.typ == T.BREAK:
            return BreakNode(keyword.pos, keyword.line)
        return ContinueNode(keyword.pos, keyword.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        # "{{else if" and "{{else with" leave the keyword pending for parse_control to chain on.
        if peek.typ in (T.IF, T.WITH):
            return ElseNode(peek.pos, peek.line)
        tok = self.expect(T.RIGHT_DELIM, "else")
        return ElseNode(tok.pos, tok.line)

    def parse_control(self, context: str) -> tuple[int, int, PipeNode, ListNode, ListNode | None]:
        depth = len(self.vars)
        try:
            pipe = self.pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list: ListNode | None = None
            if isinstance(nxt, ElseNode):
                if context == "if" and self.peek().typ == T.IF:
                    self.next()
                    else_list = ListNode(nxt.pos, [IfNode(*self.parse_control("if"))])
                elif context == "with" and self.peek().typ == T.WITH:
                    self.next()
                    else_list = ListNode(nxt.pos, [WithNode(*self.parse_control("with"))])
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, EndNode):
                        raise self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe.line, pipe, body, else_list
        finally:
            del self.vars[depth:]

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        inner = self.nested(name)
        body, end = inner.item_list()
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        inner.add(name, body)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe: PipeNode | None = None
        if self.next_non_space().typ != T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_name(self, tok: Token, context: str) -> str:
        if tok.typ in (T.STRING, T.RAW_STRING):
            return self.unquote(tok.val)
        raise self.unexpected(tok, context)

    # --- pipelines -------------------------------------------------------------------------------------
    def pipeline(self, context: str, end: T) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        while True:  # declarations: "$x :=", "$x =", "$i, $v :=" (range only)
            v = self.peek_non_space()
            if v.typ != T.VARIABLE:
                break
            self.next()
            after_var = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
            elif nxt.typ == T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, v.val.split(".")))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            elif after_var.typ == T.SPACE:
                self.backup3(v, after_var)
            else:
                self.backup2(v)
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == T.SPACE:
                continue
            if tok.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif tok.typ != T.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T.FIELD:
            chain = ChainNode(self.peek().pos, node, [])
            while self.peek().typ == T.FIELD:
                chain.field.append(self.next().val[1:])
            # Like Go, field chains on fields and variables stay Field/Variable nodes.
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, str(chain)[1:].split("."))
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, str(chain).split("."))
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self.errorf(f"unexpected . after term {_go_q(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == T.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self.errorf(f"function {_go_q(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if typ == T.DOT:
            return DotNode(tok.pos)
        if typ == T.NIL:
            return NilNode(tok.pos)
        if typ == T.VARIABLE:
            var = VariableNode(tok.pos, tok.val.split("."))
            if var.ident[0] not in self.vars:
                raise self.errorf(f"undefined variable {_go_q(var.ident[0])}")
            return var
        if typ == T.FIELD:
            return FieldNode(tok.pos, tok.val[1:].split("."))
        if typ == T.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ in (T.CHAR_CONSTANT, T.NUMBER):
            return self.number(tok)
        if typ == T.COMPLEX:
            raise self.errorf(f"complex constants are not supported: {_go_q(tok.val)}")
        if typ == T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ in (T.STRING, T.RAW_STRING):
            return StringNode(tok.pos, tok.val, self.unquote(tok.val))
        self.backup()
        return None

    def number(self, tok: Token) -> NumberNode:
        node = NumberNode(tok.pos, tok.val)
        text = tok.val
        if tok.typ == T.CHAR_CONSTANT:
            try:
                value, rest = _unquote_char(text[1:], "'")
            except ValueError:
                raise self.errorf("invalid syntax") from None
            if value < 0:  # \x and octal escapes give the byte value as the rune
                value = -1 - value
            if rest != "'":
                raise self.errorf(f"malformed character constant: {text}")
            node.is_int = node.is_uint = node.is_float = True
            node.int_value, node.float_value = value, float(value)
            return node
        as_int = _parse_go_int(text)
        if as_int is not None:
            if 0 <= as_int < 1 << 64:
                node.is_uint = True
            if -(1 << 63) <= as_int < 1 << 63:
                node.is_int = True
            if node.is_int or node.is_uint:
                node.int_value, node.is_float, node.float_value = as_int, True, float(as_int)
        if not (node.is_int or node.is_uint):
            f = _parse_go_float(text)
            if f is not None:
                if not any(c in text for c in ".eEpP"):
                    raise self.errorf(f"integer overflow: {_go_q(text)}")
                node.is_float, node.float_value = True, f
                if math.isfinite(f) and f == int(f):
                    iv = int(f)
                    node.is_int = -(1 << 63) <= iv < 1 << 63
                    node.is_uint = 0 <= iv < 1 << 64
                    node.int_value = iv
        if not (node.is_int or node.is_uint or node.is_float):
            raise self.errorf(f"illegal number syntax: {_go_q(text)}")
        return node

    def unquote(self, quoted: str) -> str:
        try:
            return go_unquote(quoted)
        except ValueError:
            raise self.errorf("invalid syntax") from None


_OPERAND_START = frozenset(
    {
        T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER, T.NIL,
        T.RAW_STRING, T.STRING, T.VARIABLE, T.LEFT_PAREN,
    }
)  # fmt: skip


def _go_q(s: str) -> str:
    return go_quote(s)


def is_empty_tree(node: Node) -> bool:
    """Go's parse.IsEmptyTree: only whitespace text and comments."""
    if isinstance(node, ListNode):
        return all(is_empty_tree(n) for n in node.nodes)
    if isinstance(node, TextNode):
        return node.text.strip(" \t\r\n\v\f\x85\xa0") == ""
    return isinstance(node, CommentNode)


_INT_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)")


def _parse_go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, ...) without the range check."""
    if not _INT_RE.fullmatch(text):
        return None
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if "__" in body or body.endswith("_"):
        return None
    try:
        if len(body) > 1 and body[0] == "0" and body[1] not in "xXoObB":
            return sign * int(body[1:].lstrip("_") or "0", 8)
        return sign * int(body, 0)
    except ValueError:
        return None


def _parse_go_float(text: str) -> float | None:
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        if body[:2] in ("0x", "0X"):
            if "p" not in body.lower():  # Go: a hexadecimal mantissa requires a 'p' exponent
                return None
            return sign * float.fromhex(body.replace("_", ""))
        if body.lower() in ("inf", "infinity", "nan"):
            return None  # not reachable from the lexer, and not a template number
        return sign * float(body)
    except (ValueError, IndexError):
        return None


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}


def _unquote_char(s: str, quote: str) -> tuple[int, str]:
    """strconv.UnquoteChar: the first (possibly escaped) character of `s` and the rest.

    A \\x or octal escape yields a byte value, which the caller assembles into UTF-8.
    """
    if not s:
        raise ValueError("empty")
    ch = s[0]
    if ch == quote and quote in "'\"":
        raise ValueError("unescaped quote")
    if ch != "\\":
        return ord(ch), s[1:]
    if len(s) < 2:
        raise ValueError("bad escape")
    c = s[1]
    rest = s[2:]
    if c in _SIMPLE_ESCAPES:
        if c in "'\"" and c != quote:
            raise ValueError("bad quote escape")
        return _SIMPLE_ESCAPES[c], rest
    if c in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[c]
        digits = rest[:n]
        if len(digits) < n or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("bad hex escape")
        value = int(digits, 16)
        if c != "x" and (value > 0x10FFFF or 0xD800 <= value <= 0xDFFF):
            raise ValueError("bad code point")
        return (-1 - value if c == "x" else value), rest[n:]
    if c in "01234567":
        digits = s[1:4]
        if len(digits) < 3 or not all(d in "01234567" for d in digits):
            raise ValueError("bad octal escape")
        value = int(digits, 8)
        if value > 255:
            raise ValueError("bad octal escape")
        return -1 - value, s[4:]
    raise ValueError("bad escape")


def go_unquote(quoted: str) -> str:
    """strconv.Unquote for "..." and `...` literals; raises ValueError on invalid syntax."""
    if len(quoted) < 2 or quoted[0] != quoted[-1]:
        raise ValueError("invalid syntax")
    quote, body = quoted[0], quoted[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if quote != '"' or "\n" in body:
        raise ValueError("invalid syntax")
    out = bytearray()
    while body:
        value, body = _unquote_char(body, quote)
        if value < 0:  # a raw byte from \x or octal
            out.append(-1 - value)
        else:
            out.extend(chr(value).encode("utf-8", "surrogatepass"))
    return out.decode("utf-8", "replace")


def parse_trees(text: str, funcs: Collection[str], name: str = "") -> dict[str, ListNode]:
    """Parse `text`; returns the trees by template name, the main one under `name`."""
    src = _TokenSource(tokenize(text))
    trees: dict[str, ListNode] = {}
    main = _TreeParser(name, src, trees, funcs)
    root = main.parse_main()
    main.add(name, root)
    return trees
