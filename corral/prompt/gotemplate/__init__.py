"""Go text/template interpreter for Ollama TEMPLATE layers.

    >>> from corral.prompt.gotemplate import parse
    >>> parse("{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}{{ end }}").execute(
    ...     {"Messages": [{"Role": "user", "Content": "hi"}]})
    '<|user|>hi'

`parse` gives a `Template` whose `root` is an inspectable node tree (`nodes`); `Template.execute` renders with
Go's semantics (``missingkey=zero``, Go's fmt printing, Ollama's ``json``/``currentDate``/``yesterdayDate``/
``toTypeScriptType``). Errors are `TemplateError`s worded like Go's. `chat_values` builds the typed data Ollama
passes to chat templates (its String()/JSON behaviour included); `ensure_response` applies Ollama's
``{{ .Response }}`` touch-up.
"""

from __future__ import annotations

from corral.prompt.gotemplate.errors import TemplateError, TemplateExecError, TemplateSyntaxError
from corral.prompt.gotemplate.gojson import marshal as go_json
from corral.prompt.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    CommentNode,
    ContinueNode,
    DotNode,
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
from corral.prompt.gotemplate.ollama import (
    chat_values,
    message_value,
    messages_value,
    to_typescript_type,
    tools_value,
)
from corral.prompt.gotemplate.template import Template, ensure_response, needs_response, parse
from corral.prompt.gotemplate.values import Field, GoList, GoMap, GoStruct

__all__ = [
    "ActionNode",
    "BoolNode",
    "BranchNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "CommentNode",
    "ContinueNode",
    "DotNode",
    "Field",
    "FieldNode",
    "GoList",
    "GoMap",
    "GoStruct",
    "IdentifierNode",
    "IfNode",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "RangeNode",
    "StringNode",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateNode",
    "TemplateSyntaxError",
    "TextNode",
    "VariableNode",
    "WithNode",
    "chat_values",
    "ensure_response",
    "go_json",
    "message_value",
    "messages_value",
    "needs_response",
    "parse",
    "to_typescript_type",
    "tools_value",
]
