"""Command-line parsing with the rules of cobra and pflag, the Go libraries Ollama's CLI is built on.

argparse differs from them in ways a user meets: flags anywhere between the arguments, ``--keepalive -1m``
taking ``-1m`` as its value, ``--think`` with an optional ``=value``, a ``help`` command, and errors worded
``requires at least 1 arg(s), only received 0``.  This module reproduces that behaviour for one root
command with a flat list of subcommands, which is all ``corral`` needs; the commands themselves are
declared in :mod:`corral.cli.main`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Command", "Flag", "Parsed", "UsageError", "exact_args", "find", "go_backquote_list", "go_parse_bool",
           "go_quote", "help_text", "minimum_args", "parse_flags", "usage_text"]


class UsageError(Exception):
    """A command line that cobra would refuse; the message is what follows ``Error: ``."""


ArgsCheck = Callable[[list[str]], "str | None"]


def exact_args(n: int) -> ArgsCheck:
    def check(args: list[str]) -> str | None:
        return None if len(args) == n else f"accepts {n} arg(s), received {len(args)}"

    return check


def minimum_args(n: int) -> ArgsCheck:
    def check(args: list[str]) -> str | None:
        return None if len(args) >= n else f"requires at least {n} arg(s), only received {len(args)}"

    return check


@dataclass(frozen=True)
class Flag:
    """One pflag flag.  ``no_opt`` is pflag's NoOptDefVal: the value a bare ``--name`` gives a flag that
    otherwise takes one (``--think`` means ``--think=true``); bool flags have it implicitly."""

    name: str
    usage: str
    kind: str = "bool"  # "bool", "string" or "int"
    short: str = ""
    no_opt: str = ""
    default: Any = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def implicit(self) -> str:
        """The value of the bare flag, or "" when it must be given one."""
        return "true" if self.kind == "bool" else self.no_opt

    def initial(self) -> Any:
        if self.default is not None:
            return self.default
        return {"bool": False, "int": 0}.get(self.kind)


@dataclass
class Command:
    use: str  # cobra's Use line: the name, then how the arguments read ("run MODEL [PROMPT]")
    short: str
    flags: list[Flag] = field(default_factory=list)
    args: ArgsCheck | None = None  # None: any arguments (cobra's legacyArgs for a leaf command)
    aliases: tuple[str, ...] = ()
    long: str = ""
    env: Sequence[tuple[str, str]] = ()  # ("OLLAMA_HOST", "what it does"), appended to the usage
    hidden: bool = False
    runnable: bool = True

    @property
    def name(self) -> str:
        return self.use.split(" ", 1)[0]

    def all_flags(self) -> list[Flag]:
        """The local flags plus cobra's ``-h/--help``."""
        return [*self.flags, Flag("help", f"help for {self.name}", short="h")]


@dataclass
class Parsed:
    values: dict[str, Any]
    changed: set[str]
    args: list[str]

    @property
    def help(self) -> bool:
        return bool(self.values.get("help"))


# --- finding the subcommand (cobra's Command.Find) -----------------------------------------------------------


def _strip_flags(argv: list[str], flags: list[Flag]) -> list[tuple[int, str]]:
    """The words of ``argv`` that are not flags or flag values, with their positions (cobra's stripFlags).
    As in cobra, a ``--flag`` or ``-f`` without ``=`` that is not known to take no value is assumed to take
    the next word: ``corral --keepalive 5m run M`` finds ``run``."""
    no_value = {f"--{f.name}" for f in flags if f.implicit} | {f"-{f.short}" for f in flags
                                                               if f.short and f.implicit}
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            break
        if word not in no_value and "=" not in word and (word.startswith("--") or
                                                          (len(word) == 2 and word.startswith("-"))):
            i += 1
        elif word and not word.startswith("-"):
            out.append((i - 1, word))
    return out


def find(root: Command, commands: list[Command], argv: list[str]) -> tuple[Command, list[str]]:
    """The command ``argv`` names and the rest of the words; root when none is named.  An unknown first word
    is cobra's ``unknown command "x" for "corral"`` with its suggestions."""
    words = _strip_flags(argv, root.all_flags())
    if not words:
        return root, argv
    index, word = words[0]
    for cmd in commands:
        if word == cmd.name or word in cmd.aliases:
            return cmd, argv[:index] + argv[index + 1:]
    raise UsageError(f'unknown command "{word}" for "{root.name}"{_suggestions(word, commands)}')


def _suggestions(word: str, commands: list[Command]) -> str:
    names = [c.name for c in commands if not c.hidden and c.runnable and c.name != "help"
             and (_levenshtein(word.lower(), c.name.lower()) <= 2 or c.name.lower().startswith(word.lower()))]
    return "\n\nDid you mean this?\n" + "".join(f"\t{n}\n" for n in names) if names else ""


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


# --- flags (pflag's FlagSet.Parse, interspersed) ---------------------------------------------------------------


def parse_flags(cmd: Command, argv: list[str]) -> Parsed:
    flags = cmd.all_flags()
    by_name = {f.name: f for f in flags}
    by_short = {f.short: f for f in flags if f.short}
    values: dict[str, Any] = {f.dest: f.initial() for f in flags}
    changed: set[str] = set()
    args: list[str] = []

    def assign(flag: Flag, value: str) -> None:
        try:
            values[flag.dest] = _convert(flag.kind, value)
        except ValueError as exc:
            name = f"-{flag.short}, --{flag.name}" if flag.short else f"--{flag.name}"
            raise UsageError(f'invalid argument {go_quote(value)} for "{name}" flag: {exc}') from None
        changed.add(flag.dest)

    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if len(word) < 2 or not word.startswith("-"):
            args.append(word)
        elif word == "--":
            args += rest
            break
        elif word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if not name or name[0] in "-=":
                raise UsageError(f"bad flag syntax: {word}")
            flag = by_name.get(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            if eq:
                assign(flag, value)
            elif flag.implicit:
                assign(flag, flag.implicit)
            elif rest:
                assign(flag, rest.pop(0))  # whatever it looks like: `--keepalive -1m`
            else:
                raise UsageError(f"flag needs an argument: {word}")
        else:
            shorts = word[1:]
            while shorts:
                flag = by_short.get(shorts[0])
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{shorts[0]}' in -{shorts}")
                if len(shorts) > 2 and shorts[1] == "=":
                    assign(flag, shorts[2:])
                    shorts = ""
                elif flag.implicit:
                    assign(flag, flag.implicit)
                    shorts = shorts[1:]
                elif len(shorts) > 1:
                    assign(flag, shorts[1:])
                    shorts = ""
                elif rest:
                    assign(flag, rest.pop(0))
                    shorts = ""
                else:
                    raise UsageError(f"flag needs an argument: '{shorts[0]}' in -{shorts}")
    return Parsed(values, changed, args)


def _convert(kind: str, value: str) -> Any:
    if kind == "bool":
        return go_parse_bool(value)
    if kind == "int":
        return _go_parse_int(value)
    return value


def go_parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {go_quote(text)}: invalid syntax")


def _go_parse_int(text: str) -> int:
    """Go's ``strconv.ParseInt(s, 0, 64)``: decimal, 0x, 0o, 0b, or a leading 0 for octal."""
    body = text.lstrip("+-")
    try:
        if len(body) > 1 and body[0] == "0" and body[1] in "01234567_":
            value = int(text.replace("0", "0o", 1), 0)
        else:
            value = int(text, 0)
    except ValueError:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax") from None
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def go_quote(text: str) -> str:
    """Go's ``%q`` for the printable strings a command line holds."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_backquote_list(words: list[str]) -> str:
    """Go's ``%#q`` of a []string: ``[`a` `b`]`` (a word with a backquote is double-quoted instead)."""
    return "[" + " ".join(go_quote(w) if "`" in w or not w.isprintable() else f"`{w}`" for w in words) + "]"


# --- help and usage (cobra's templates) ------------------------------------------------------------------------


def _flag_usages(flags: list[Flag]) -> str:
    """pflag's FlagUsages: sorted by name, the usage column two spaces past the longest flag."""
    lines: list[tuple[str, str]] = []
    for f in sorted(flags, key=lambda f: f.name):
        left = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
        if f.kind != "bool":
            left += f" {f.kind}"
        if f.no_opt and f.kind == "string":
            left += f'[="{f.no_opt}"]'
        lines.append((left, f.usage))
    width = max(len(left) for left, _ in lines) + 1
    return "".join(f"{left}  {' ' * (width - len(left))}{usage}".rstrip() + "\n" for left, usage in lines)


def usage_text(cmd: Command, root: Command, commands: list[Command]) -> str:
    path = cmd.name if cmd is root else f"{root.name} {cmd.name}"
    is_root = cmd is root
    line = cmd.use if is_root else f"{root.name} {cmd.use}"
    out = "Usage:"
    if cmd.runnable:
        out += f"\n  {line} [flags]" if "[flags]" not in line else f"\n  {line}"
    if is_root:
        out += f"\n  {path} [command]"
    if cmd.aliases:
        out += "\n\nAliases:\n  " + ", ".join((cmd.name, *cmd.aliases))
    if is_root:
        pad = max(11, *(len(c.name) for c in commands))
        out += "\n\nAvailable Commands:"
        out += "".join(f"\n  {c.name.ljust(pad)} {c.short}" for c in commands if not c.hidden)
    out += "\n\nFlags:\n" + _flag_usages(cmd.all_flags()).rstrip()
    if is_root:
        out += f'\n\nUse "{path} [command] --help" for more information about a command.'
    out += "\n"
    if cmd.env:
        out += "\nEnvironment Variables:\n" + "".join(f"      {name:<27}   {what}\n" for name, what in cmd.env)
    return out


def help_text(cmd: Command, root: Command, commands: list[Command]) -> str:
    head = (cmd.long or cmd.short).rstrip()
    return (f"{head}\n\n" if head else "") + usage_text(cmd, root, commands)
