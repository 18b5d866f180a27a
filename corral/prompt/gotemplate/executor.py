"""Executes a parsed template on Python data with the semantics of Go's text/template/exec.go.

Ollama executes with ``missingkey=zero``: a missing map key yields a nil interface, which prints as
``<no value>``, is false in conditions, and fails only when something is looked up inside it. Values flow
through the executor in the shapes described in `values` (raw Python, `Boxed`, `INVALID`) so that the
places where Go distinguishes an interface from its content (nil checks, type names in errors) behave alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.prompt.gotemplate.builtins import Func, FuncError
from corral.prompt.gotemplate.errors import TemplateExecError
from corral.prompt.gotemplate.gofmt import format_value
from corral.prompt.gotemplate.lexer import go_quote
from corral.prompt.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
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
from corral.prompt.gotemplate.values import (
    INVALID,
    Boxed,
    GoMap,
    GoStruct,
    go_type_name,
    is_true,
    sorted_keys,
    unbox,
)
from corral.prompt.limits import Budget, current_budget, within_budget

# Go allows 100000 nested {{template}} calls; Python's stack does not, so runaway recursion stops earlier.
MAX_EXEC_DEPTH = 100


class _Missing:
    """Go's missingVal: no final (piped-in) argument."""


_MISSING = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _elem(container: Any, item: Any) -> Any:
    """A container element as Go reads it: boxed when the element type is an interface."""
    return Boxed(item) if getattr(container, "elem_iface", True) else item


class _State:
    """Execution state of one template invocation (Go's `state`)."""

    def __init__(
        self,
        text: str,
        trees: Mapping[str, ListNode],
        funcs: Mapping[str, Func],
        name: str,
        out: list[str],
        dot: Any,
        depth: int = 0,
        parse_name: str = "",
        budget: Budget | None = None,
    ) -> None:
        self.budget = budget if budget is not None else current_budget()
        self.text = text
        self.trees = trees
        self.funcs = funcs
        self.name = name
        self.parse_name = parse_name
        self.out = out
        self.vars: list[list[Any]] = [["$", dot]]
        self.depth = depth
        self.node: Node | None = None

    # --- errors ----------------------------------------------------------------------------------------
    def at(self, node: Node) -> None:
        self.node = node

    def errorf(self, msg: str) -> TemplateExecError:
        if self.node is None:
            return TemplateExecError(f"template: {self.name}: {msg}")
        prefix = self.text[: self.node.pos]
        line = prefix.count("\n") + 1
        col = len(prefix[prefix.rfind("\n") + 1 :].encode("utf-8", "surrogatepass"))
        location = f"{self.parse_name}:{line}:{col}"
        return TemplateExecError(f"template: {location}: executing {go_quote(self.name)} at <{self.node}>: {msg}")

    # --- variables ------------------------------------------------------------------------------------
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        raise self.errorf(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[len(self.vars) - n][1] = value

    def var_value(self, name: str) -> Any:
        for var in reversed(self.vars):
            if var[0] == name:
                return var[1]
        raise self.errorf(f"undefined variable: {name}")

    # --- walking --------------------------------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        self.budget.step()
        if isinstance(node, TextNode):
            self.budget.wrote(len(node.text))
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(isinstance(node, WithNode), dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        elif not isinstance(node, CommentNode):
            raise self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, is_with: bool, dot: Any, node: IfNode | WithNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if is_true(val):
                self.walk(val if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.at(node)
        outer = len(self.vars)
        decl = node.pipe.decl
        try:
            val = self.eval_pipeline(dot, node.pipe)
            mark = len(self.vars)

            def one_iteration(index: Any, elem: Any) -> None:
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if node.pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.set_top_var(2, index)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            ran = False
            if isinstance(val, (list, tuple)):
                for i, item in enumerate(val):
                    ran = True
                    one_iteration(i, _elem(val, item))
            elif isinstance(val, dict):
                for key in sorted_keys(val):
                    ran = True
                    one_iteration(key, _elem(val, val[key]))
            elif isinstance(val, int) and not isinstance(val, bool):
                # Go 1.24 ranges over integers: 0..n-1, one variable only.
                if len(decl) > 1:
                    raise self.errorf(f"can't use {val} to iterate over more than one variable")
                for i in range(val):
                    ran = True
                    one_iteration(i, i)
            elif val is not INVALID:
                raise self.errorf(f"range can't iterate over {format_value(val)}")
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list)
        except _Break:
            pass
        finally:
            self.pop(outer)

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.errorf(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_EXEC_DEPTH:
            raise self.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        dot = self.eval_pipeline(dot, node.pipe)
        child = _State(self.text, self.trees, self.funcs, node.name, self.out, dot, self.depth + 1, self.parse_name,
                       self.budget)
        child.walk(dot, tree)

    def print_value(self, node: Node, val: Any) -> None:
        self.at(node)
        if val is INVALID:
            self.budget.wrote(10)
            self.out.append("<no value>")
            return
        val = unbox(val)
        if callable(val) and not isinstance(val, (GoStruct, dict, list)):
            raise self.errorf(f"can't print {node} of type {go_type_name(val)}")
        text = format_value(val)
        self.budget.wrote(len(text))
        self.out.append(text)

    # --- evaluation -----------------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return INVALID
        self.at(pipe)
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if isinstance(value, Boxed):  # Go digs into interface{} results
                value = INVALID if value.value is None else value.value
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: Any, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise self.errorf(f"can't evaluate command {go_quote(str(first))}")

    def ideal_constant(self, const: NumberNode) -> Any:
        self.at(const)
        text = const.text
        is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")
        is_rune = text.startswith("'")
        if const.is_float and not is_hex_int and not is_rune and any(c in text for c in ".eEpP"):
            return const.float_value
        if const.is_int:
            return const.int_value
        if const.is_uint:
            raise self.errorf(f"{text} overflows int")
        return INVALID

    def eval_field_node(self, dot: Any, field: FieldNode, args: list[Node] | None, final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_variable_node(self, dot: Any, var: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args or [var], final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, ident: list[str], args: list[Node] | None, final: Any
    ) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(name, None, _MISSING, receiver)
        return self.eval_field(ident[-1], args, final, receiver)

    def eval_field(self, name: str, args: list[Node] | None, final: Any, receiver: Any) -> Any:
        if receiver is INVALID:
            return INVALID  # missingkey=zero: looking into nothing gives nothing
        typ = go_type_name(receiver)
        if isinstance(receiver, Boxed):
            if receiver.value is None:
                raise self.errorf(f"nil pointer evaluating {typ}.{name}")
            receiver = receiver.value
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(receiver, GoStruct):
            field = receiver.field(name)
            if field is not None:
                if has_args:
                    raise self.errorf(f"{name} has arguments but cannot be invoked as function")
                value = receiver.values.get(field.name)
                return Boxed(value) if field.iface else value
        elif isinstance(receiver, dict):
            if has_args:
                raise self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return _elem(receiver, receiver[name])
            if isinstance(receiver, GoMap) and not receiver.elem_iface:
                return None
            return Boxed(None)
        raise self.errorf(f"can't evaluate field {name} in type {typ}")

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node] | None, final: Any) -> Any:
        self.at(node)
        fn = self.funcs.get(node.ident)
        if fn is None:
            raise self.errorf(f"{go_quote(node.ident)} is not a defined function")
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_call(self, dot: Any, fn: Func, node: Node, name: str, args: list[Node] | None, final: Any) -> Any:
        call_args = args[1:] if args else []
        has_final = final is not _MISSING
        num_in = len(call_args) + (1 if has_final else 0)
        nparams = len(fn.params)
        if fn.variadic:
            num_fixed = nparams - 1
            if num_in < num_fixed:
                raise self.errorf(f"wrong number of args for {name}: want at least {num_fixed} got {len(call_args)}")
        else:
            num_fixed = len(call_args)
            if num_in != nparams:
                raise self.errorf(f"wrong number of args for {name}: want {nparams} got {num_in}")

        if name in ("and", "or") and fn.returns_value:
            v: Any = INVALID
            for arg in call_args:
                v = self.eval_arg(dot, "value", arg)
                if is_true(v) == (name == "or"):
                    return v
            if has_final:
                v = self.validate_type(final, "value")
            return v

        argv: list[Any] = []
        kinds: list[str] = []
        for i, arg in enumerate(call_args):
            kind = fn.params[i] if i < num_fixed else fn.params[-1]
            argv.append(self.eval_arg(dot, kind, arg))
            kinds.append(kind)
        if has_final:
            # The piped value fills the next parameter: a fixed one, or the variadic tail.
            kind = fn.params[-1] if fn.variadic and num_in - 1 >= num_fixed else fn.params[num_in - 1]
            argv.append(self.validate_type(final, kind))
            kinds.append(kind)
        passed = [a if k == "value" else unbox(a) for a, k in zip(argv, kinds, strict=True)]
        if name == "call" and fn.returns_value:
            passed.insert(0, str(call_args[0]) if call_args else "")
        try:
            result = fn.impl(*passed)
        except FuncError as exc:
            self.at(node)
            raise self.errorf(f"error calling {name}: {exc}") from None
        if fn.returns_value:
            return result
        return Boxed(None) if result is None else result

    def eval_arg(self, dot: Any, kind: str | None, n: Node) -> Any:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, kind)
        if isinstance(n, NilNode):
            if kind == "any":
                return Boxed(None)
            if kind == "value":  # a zero reflect.Value, as Go passes it
                return INVALID
            raise self.errorf(f"cannot assign nil to {_KIND_NAMES.get(kind or '', kind)}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], _MISSING), kind)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, None, _MISSING), kind)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), kind)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, _MISSING), kind)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, None, _MISSING), kind)
        if kind == "string":
            if isinstance(n, StringNode):
                return n.text
            raise self.errorf(f"expected string; found {n}")
        # "any" and reflect.Value parameters take literals as they come (Go's evalEmptyInterface).
        if isinstance(n, BoolNode):
            return n.value
        if isinstance(n, NumberNode):
            return self.ideal_constant(n)
        if isinstance(n, StringNode):
            return n.text
        raise self.errorf(f"can't handle assignment of {n} to empty interface argument")

    def validate_type(self, value: Any, kind: str | None) -> Any:
        if value is INVALID:
            if kind is None or kind == "value":  # reflect.Value parameters accept the zero Value
                return INVALID
            if kind == "any":
                return Boxed(None)
            raise self.errorf(f"invalid value; expected {_KIND_NAMES[kind]}")
        if kind == "string" and not isinstance(value, str):
            if isinstance(value, Boxed) and value.value is not None:
                value = value.value
                if isinstance(value, str):
                    return value
            raise self.errorf(f"wrong type for value; expected string; got {go_type_name(value)}")
        return value


_KIND_NAMES = {"value": "reflect.Value", "any": "interface {}", "string": "string"}


def execute(
    text: str,
    trees: Mapping[str, ListNode],
    funcs: Mapping[str, Func],
    data: Any,
    name: str = "",
) -> str:
    """Run template `name` of `trees` (parsed from `text`) on `data`."""
    root = trees.get(name)
    out: list[str] = []
    dot = INVALID if data is None else data
    with within_budget() as spent:
        state = _State(text, trees, funcs, name, out, dot, budget=spent)
        if root is None:
            raise state.errorf(f"{go_quote(name)} is an incomplete or empty template")
        try:
            state.walk(dot, root)
        except RecursionError:
            raise state.errorf("exceeded maximum template depth (Python recursion limit)") from None
    return "".join(out)
