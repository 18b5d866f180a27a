"""The public Template object: parse once, inspect the tree, execute on data."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from corral.prompt.gotemplate.builtins import BUILTINS, Func
from corral.prompt.gotemplate.executor import execute
from corral.prompt.gotemplate.nodes import (
    ActionNode,
    BranchNode,
    CommandNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    RangeNode,
    TemplateNode,
    TextNode,
    VariableNode,
)
from corral.prompt.gotemplate.ollama import OLLAMA_FUNCS
from corral.prompt.gotemplate.parser import parse_trees

FUNCS: dict[str, Func] = {**BUILTINS, **OLLAMA_FUNCS}


class Template:
    """A parsed Go template (Ollama's function set, ``missingkey=zero``).

    `root` is the main tree; `trees` holds it under "" plus every ``define``/``block`` by name.
    """

    def __init__(self, text: str, trees: dict[str, ListNode], name: str = "") -> None:
        self.text = text
        self.trees = trees
        self.name = name

    @property
    def root(self) -> ListNode:
        return self.trees[self.name]

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Template({self.text[:40]!r}{'...' if len(self.text) > 40 else ''})"

    def execute(self, data: Any) -> str:
        """Render on `data` (dicts, lists, scalars, or the typed values of `ollama`); raises TemplateError."""
        return execute(self.text, self.trees, FUNCS, data, self.name)

    # --- inspection ---------------------------------------------------------------------------------
    def nodes(self) -> Iterator[Node]:
        """Every node of every tree, depth first."""
        for tree in self.trees.values():
            yield from tree.walk()

    def identifiers(self) -> list[str]:
        """Field and variable names mentioned in any tree (Ollama's Identifiers, in source order).

        Like Ollama it looks at pipeline commands and parenthesised pipelines, not inside chains such as
        ``(index .Messages 0).Content`` nor at declared variable names.
        """
        names: list[str] = []
        for tree in self.trees.values():
            _identifiers(tree, names)
        return names

    def vars(self) -> list[str]:
        """Ollama's Template.Vars(): the lower-cased identifiers, sorted and unique."""
        return sorted({name.lower() for name in self.identifiers()})

    def uses(self, name: str) -> bool:
        """Does any field chain or variable chain mention `name` (case-insensitive, like Ollama's Vars)?

        ``uses("Tools")`` decides the tools capability, ``uses("Suffix")`` the insert capability,
        ``uses("Messages")`` whether the chat (messages) rendering path applies.
        """
        return name.lstrip(".").lower() in self.vars()

    def find(self, predicate: Callable[[Node], bool]) -> Node | None:
        """The first node (depth first, main tree) for which `predicate(node)` is true."""
        for node in self.root.walk():
            if predicate(node):
                return node
        return None

    def tool_calls_node(self) -> IfNode | None:
        """The ``{{ if .ToolCalls }}`` block (any if whose pipeline mentions a ToolCalls field).

        This is Ollama's findToolCallNode: it descends into if/range/with bodies, depth first.
        """
        return _find_tool_call_if(self.root.nodes)

    def tool_calls_range(self) -> RangeNode | None:
        """The first ``{{ range ... .ToolCalls }}`` block, for templates without an if around it."""
        for node in self.root.walk():
            if isinstance(node, RangeNode) and _mentions_tool_calls(node.pipe):
                return node
        return None

    def tool_calls_prefix(self) -> str:
        """The tool-call tag the model emits, as Ollama's parseTag derives it (``<tool_call>``, ...).

        The first non-blank text inside the ``{{ if .ToolCalls }}`` block, cut at ``{`` and trimmed;
        ``{`` when there is none (then any JSON object is tried as a tool call).
        """
        block = self.tool_calls_node()
        if block is None:
            return "{"
        text = _first_text(block.list.nodes)
        if text is None:
            return "{"
        tag = text.text.replace("\r\n", "\n").split("{", 1)[0].strip()
        return tag or "{"


def _identifiers(node: Node, out: list[str]) -> None:
    if isinstance(node, ListNode):
        for child in node.nodes:
            _identifiers(child, out)
    elif isinstance(node, (ActionNode, TemplateNode)):
        if node.pipe is not None:
            _identifiers(node.pipe, out)
    elif isinstance(node, BranchNode):
        _identifiers(node.pipe, out)
        _identifiers(node.list, out)
        if node.else_list is not None:
            _identifiers(node.else_list, out)
    elif isinstance(node, PipeNode):
        for cmd in node.cmds:
            for arg in cmd.args:
                _identifiers(arg, out)
    elif isinstance(node, (FieldNode, VariableNode)):
        out.extend(node.ident)


def _mentions_tool_calls(pipe: PipeNode) -> bool:
    return any(isinstance(arg, FieldNode) and "ToolCalls" in arg.ident for cmd in pipe.cmds for arg in cmd.args)


def _find_tool_call_if(nodes: list[Node]) -> IfNode | None:
    for node in nodes:
        if isinstance(node, IfNode) and _mentions_tool_calls(node.pipe):
            return node
        if isinstance(node, ListNode):
            found = _find_tool_call_if(node.nodes)
        elif isinstance(node, BranchNode):
            found = _find_tool_call_if(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _find_tool_call_if(node.else_list.nodes)
        else:
            found = None
        if found is not None:
            return found
    return None


def _first_text(nodes: list[Node]) -> TextNode | None:
    """Ollama's findTextNode: first non-blank text, not looking past an action or a nested block."""
    for node in nodes:
        if isinstance(node, TextNode):
            if node.text.strip():
                return node
        elif isinstance(node, ListNode):
            found = _first_text(node.nodes)
            if found is not None:
                return found
        elif isinstance(node, BranchNode):
            found = _first_text(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _first_text(node.else_list.nodes)
            return found
        elif isinstance(node, ActionNode):
            return None
    return None


def parse(text: str, *, name: str = "") -> Template:
    """Parse Go template `text` with Ollama's functions; raises TemplateSyntaxError like Go's Parse.

    Parsed once per text: a request renders its model's template, reads its thinking tags and its tool-call
    prefix, and every request of a model uses the same one. A Template is never changed after parsing
    (``ensure_response`` builds a new one), so the cached object can be shared."""
    return _parse_cached(text, name)


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, name: str) -> Template:
    return Template(text, parse_trees(text, FUNCS, name), name)


def needs_response(template: Template) -> bool:
    """True when the template mentions neither ``.Messages`` nor ``.Response`` (Ollama then appends one)."""
    names = template.vars()
    return "messages" not in names and "response" not in names


def ensure_response(template: Template) -> Template:
    """Ollama's Parse touch-up: append ``{{ .Response }}`` to a template that mentions neither
    ``.Messages`` nor ``.Response``; otherwise return the template unchanged."""
    if not needs_response(template):
        return template
    trees = dict(template.trees)
    root = template.root
    pos = len(template.text)
    field = FieldNode(pos, ["Response"])
    action = ActionNode(pos, 0, PipeNode(pos, 0, cmds=[CommandNode(pos, [field])]))
    trees[template.name] = ListNode(root.pos, [*root.nodes, action])
    # The appended action has no source text; its position points past the end, as in Ollama.
    return Template(template.text, trees, template.name)
