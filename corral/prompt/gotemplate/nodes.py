"""Syntax tree of a Go template, mirroring the node types of Go's text/template/parse.

Every node keeps `pos` (offset of its first token in the source) because Go's execution errors name the
line and column of the node being evaluated; `str(node)` reproduces Go's Node.String(), which those errors
quote (``executing "" at <.Foo>``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from corral.gocodec import quote as go_quote


class Node:
    """Base class of all syntax-tree nodes."""

    pos: int

    def children(self) -> Iterator[Node]:
        """Direct sub-nodes, in source order (pipelines included)."""
        return iter(())

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, depth first, in source order."""
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(eq=False)
class TextNode(Node):
    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class CommentNode(Node):
    pos: int
    text: str

    def __str__(self) -> str:
        return "{{" + self.text + "}}"


@dataclass(eq=False)
class ListNode(Node):
    pos: int
    nodes: list[Node] = field(default_factory=list)

    def children(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(eq=False)
class IdentifierNode(Node):
    """A function name."""

    pos: int
    ident: str

    def __str__(self) -> str:
        return self.ident


@dataclass(eq=False)
class VariableNode(Node):
    """``$x`` or ``$x.Field.Chain``; ``ident[0]`` is the variable name including ``$``."""

    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass(eq=False)
class DotNode(Node):
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(eq=False)
class NilNode(Node):
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(eq=False)
class FieldNode(Node):
    """``.A.B``: field names without dots."""

    pos: int
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + name for name in self.ident)


@dataclass(eq=False)
class ChainNode(Node):
    """``(pipeline).A.B`` or ``func.A``: fields applied to a non-field term."""

    pos: int
    node: Node
    field: list[str]

    def children(self) -> Iterator[Node]:
        yield self.node

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return head + "".join("." + name for name in self.field)


@dataclass(eq=False)
class BoolNode(Node):
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(eq=False)
class NumberNode(Node):
    """A numeric constant; like Go it records every interpretation that fits (int, float)."""

    pos: int
    text: str
    is_int: bool = False
    is_uint: bool = False
    is_float: bool = False
    int_value: int = 0
    float_value: float = 0.0

    def __str__(self) -> str:
        return self.text


@dataclass(eq=False)
class StringNode(Node):
    pos: int
    quoted: str  # the literal as written, quotes included
    text: str  # its value

    def __str__(self) -> str:
        return self.quoted


@dataclass(eq=False)
class CommandNode(Node):
    pos: int
    args: list[Node] = field(default_factory=list)

    def children(self) -> Iterator[Node]:
        return iter(self.args)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(eq=False)
class PipeNode(Node):
    pos: int
    line: int
    decl: list[VariableNode] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)

    def children(self) -> Iterator[Node]:
        yield from self.decl
        yield from self.cmds

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass(eq=False)
class ActionNode(Node):
    """``{{ pipeline }}``: prints the value unless the pipeline declares variables."""

    pos: int
    line: int
    pipe: PipeNode

    def children(self) -> Iterator[Node]:
        yield self.pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(eq=False)
class BranchNode(Node):
    """Common shape of if / range / with."""

    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None = None

    keyword = ""

    def children(self) -> Iterator[Node]:
        yield self.pipe
        yield self.list
        if self.else_list is not None:
            yield self.else_list

    def __str__(self) -> str:
        out = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            out += "{{else}}" + str(self.else_list)
        return out + "{{end}}"


class IfNode(BranchNode):
    keyword = "if"


class RangeNode(BranchNode):
    keyword = "range"


class WithNode(BranchNode):
    keyword = "with"


@dataclass(eq=False)
class TemplateNode(Node):
    """``{{template "name" pipeline}}`` (also emitted for ``{{block}}``)."""

    pos: int
    line: int
    name: str
    pipe: PipeNode | None = None

    def children(self) -> Iterator[Node]:
        if self.pipe is not None:
            yield self.pipe

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass(eq=False)
class BreakNode(Node):
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(eq=False)
class ContinueNode(Node):
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(eq=False)
class ElseNode(Node):
    """Parser-internal marker for ``{{else}}``; never part of a finished tree."""

    pos: int
    line: int

    def __str__(self) -> str:
        return "{{else}}"


@dataclass(eq=False)
class EndNode(Node):
    """Parser-internal marker for ``{{end}}``; never part of a finished tree."""

    pos: int

    def __str__(self) -> str:
        return "{{end}}"
