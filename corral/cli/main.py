"""The ``corral`` command line: Ollama's commands, flags and help, parsed by cobra's rules (corral.cli.cobra).

The commands live in sibling modules and are imported only when they run, so ``corral list`` never loads
the engine.  Every error is printed as ``Error: …`` and exits 1, as cobra.CheckErr does for Ollama.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from corral.cli.cobra import (
    Command,
    Flag,
    UsageError,
    exact_args,
    find,
    go_backquote_list,
    go_quote,
    help_text,
    minimum_args,
    parse_flags,
    usage_text,
)

_HOST = ("OLLAMA_HOST", "IP Address for the corral server (default 127.0.0.1:11434)")
RUN_ENV = (_HOST, ("OLLAMA_NOHISTORY", "Do not preserve readline history"))
SERVE_ENV = (
    ("OLLAMA_DEBUG", "Show additional debug information (e.g. OLLAMA_DEBUG=1)"),
    _HOST,
    ("OLLAMA_CONTEXT_LENGTH", "Context length to use unless otherwise specified (default 4096)"),
    ("OLLAMA_KEEP_ALIVE", 'The duration that models stay loaded in memory (default "5m")'),
    ("OLLAMA_MAX_LOADED_MODELS", "Maximum number of loaded models (default 0 = 3 on CPU)"),
    ("OLLAMA_MAX_QUEUE", "Maximum number of queued requests"),
    ("OLLAMA_MODELS", "The path to the models directory"),
    ("OLLAMA_NUM_PARALLEL", "Maximum number of parallel requests"),
    ("OLLAMA_NOPRUNE", "Do not prune model blobs on startup"),
    ("OLLAMA_ORIGINS", "A comma separated list of allowed origins"),
    ("OLLAMA_LOAD_TIMEOUT", 'How long to allow model loads to stall before giving up (default "5m")'),
    ("CORRAL_MAX_MEMORY", 'Cap on the memory loaded models may fill (e.g. "2GB")'),
    ("CORRAL_REGISTRY", 'Serve registry.ollama.ai names from this registry (e.g. "http://mirror:5000")'),
    ("CORRAL_RAY_ADDRESS", "Run models on this Ray cluster, as --cluster does"),
    ("CORRAL_REPLICAS", 'Runners of a busy model on a cluster (e.g. "2", or "smollm2:135m=3,2")'),
)

THINK_LEVELS = ("high", "medium", "low", "max")

Handler = Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Handler:
    """Import a command's module only when it runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        func: Handler = getattr(importlib.import_module(module), name)
        return func(args)

    return run


_INSECURE = Flag("insecure", "Use an insecure registry")

ROOT = Command("corral", "Large language model runner", [
    Flag("version", "Show version information", short="v"),
    Flag("verbose", "Show timings for response"),
    Flag("nowordwrap", "Don't wrap words to the next line automatically"),
])

# In Ollama's order (cobra's command sorting is off); help comes last, as cobra appends it.
COMMANDS = [
    Command("serve", "Start corral", [
        Flag("cluster", 'Run models on this Ray cluster (e.g. "10.0.0.1:6379"; or CORRAL_RAY_ADDRESS)', "string"),
    ], args=exact_args(0), aliases=("start",), env=SERVE_ENV),
    Command("create MODEL", "Create a model", [
        Flag("file", 'Name of the Modelfile (default "Modelfile")', "string", short="f"),
        Flag("quantize", "Quantize model to this level (e.g. q4_K_M)", "string", short="q"),
    ], args=exact_args(1), env=(_HOST,)),
    Command("show MODEL", "Show information for a model", [
        Flag("license", "Show license of a model"),
        Flag("modelfile", "Show Modelfile of a model"),
        Flag("parameters", "Show parameters of a model"),
        Flag("template", "Show template of a model"),
        Flag("system", "Show system message of a model"),
        Flag("verbose", "Show detailed model information", short="v"),
    ], args=exact_args(1), env=(_HOST,)),
    Command("run MODEL [PROMPT]", "Run a model", [
        Flag("keepalive", "Duration to keep a model loaded (e.g. 5m)", "string"),
        Flag("verbose", "Show timings for response"),
        _INSECURE,
        Flag("nowordwrap", "Don't wrap words to the next line automatically"),
        Flag("format", "Response format (e.g. json)", "string"),
        Flag("think", "Enable thinking mode: true/false or high/medium/low for supported models", "string",
             no_opt="true"),
        Flag("hidethinking", "Hide thinking output (if provided)"),
        Flag("truncate", "For embedding models: truncate inputs exceeding context length (default: true). "
                         "Set --truncate=false to error instead"),
        Flag("dimensions", "Truncate output embeddings to specified dimension (embedding models only)", "int"),
    ], args=minimum_args(1), env=RUN_ENV),
    Command("stop MODEL", "Stop a running model", args=exact_args(1), env=(_HOST,)),
    Command("pull MODEL", "Pull a model from a registry", [_INSECURE], args=exact_args(1), env=(_HOST,)),
    Command("push MODEL", "Push a model to a registry", [_INSECURE], args=exact_args(1), env=(_HOST,)),
    Command("list", "List models", aliases=("ls",), env=(_HOST,)),
    Command("ps", "List running models", env=(_HOST,)),
    Command("cp SOURCE DESTINATION", "Copy a model", args=exact_args(2), env=(_HOST,)),
    Command("rm MODEL [MODEL...]", "Remove a model", args=minimum_args(1), env=(_HOST,)),
    Command("help [command]", "Help about any command",
            long="Help provides help for any command in the application.\n"
                 "Simply type corral help [path to command] for full details."),
]

HANDLERS: dict[str, Handler] = {
    "serve": _lazy("corral.cli.serve", "cmd_serve"),
    "create": _lazy("corral.cli.manage", "cmd_create"),
    "show": _lazy("corral.cli.manage", "cmd_show"),
    "run": _lazy("corral.cli.run", "cmd_run"),
    "stop": _lazy("corral.cli.models", "cmd_stop"),
    "pull": _lazy("corral.cli.transfer", "cmd_pull"),
    "push": _lazy("corral.cli.transfer", "cmd_push"),
    "list": _lazy("corral.cli.models", "cmd_list"),
    "ps": _lazy("corral.cli.models", "cmd_ps"),
    "cp": _lazy("corral.cli.manage", "cmd_cp"),
    "rm": _lazy("corral.cli.manage", "cmd_rm"),
}


def think_value(text: str) -> bool | str:
    """``--think`` / ``--think=VALUE`` as Ollama's run reads it: True, False, or a level."""
    if text in ("", "true"):
        return True
    if text == "false":
        return False
    if text in THINK_LEVELS:
        return text
    raise UsageError(f"invalid value for --think: {go_quote(text)} (must be true, false, high, medium, low, or max)")


def _namespace(name: str, values: dict[str, object], changed: set[str], args: list[str]) -> argparse.Namespace:
    """The attributes each command's handler reads: its flags, and its arguments by name."""
    ns = argparse.Namespace(**values, args=args, command=name)
    del ns.help
    if name == "run":
        ns.model, ns.prompt = args[0], args[1:]
        # Unset and set-to-the-default differ for these: the request leaves them out when unset.
        ns.think = think_value(str(values["think"])) if "think" in changed else None
        ns.truncate = values["truncate"] if "truncate" in changed else None
    elif name in ("create", "show", "stop", "pull", "push"):
        ns.model = args[0]
    elif name == "cp":
        ns.source, ns.destination = args
    elif name == "rm":
        ns.models = args
    elif name in ("list", "ps"):
        ns.prefix = args[0] if args else None  # Ollama reads the first word and ignores any others
    return ns


def _version() -> int:
    """Ollama's ``-v``: the server's version, and a warning when this client's differs or none answers."""
    import httpx

    from corral.client import Client
    from corral.version import OLLAMA_VERSION

    server = ""
    try:
        response = Client()._client.get("/api/version", timeout=10)
        response.raise_for_status()
        server = str(response.json().get("version") or "")
    except (httpx.HTTPError, ValueError, AttributeError):
        print("Warning: could not connect to a running corral instance")
    if server:
        print(f"corral version is {server}")
    if server != OLLAMA_VERSION:
        print(f"Warning: client version is {OLLAMA_VERSION}")
    return 0


def _help(words: list[str]) -> int:
    """cobra's help command: the named command's help, or an unknown topic and the root's usage on stderr."""
    try:
        target, _ = find(ROOT, COMMANDS, words)
    except UsageError:
        sys.stderr.write(f"Unknown help topic {go_backquote_list(words)}\n")
        sys.stderr.write(usage_text(ROOT, ROOT, COMMANDS))
        return 0
    sys.stdout.write(help_text(target, ROOT, COMMANDS))
    return 0


def _execute(argv: list[str]) -> int:
    cmd, rest = find(ROOT, COMMANDS, argv)
    parsed = parse_flags(cmd, rest)
    if parsed.help:
        sys.stdout.write(help_text(cmd, ROOT, COMMANDS))
        return 0
    if cmd is ROOT:
        if parsed.values["version"]:
            return _version()
        sys.stdout.write(help_text(ROOT, ROOT, COMMANDS))  # Ollama opens its launcher here; corral has none
        return 0
    if cmd.name == "help":
        return _help(parsed.args)
    problem = cmd.args(parsed.args) if cmd.args else None
    if problem:
        raise UsageError(problem)
    ns = _namespace(cmd.name, parsed.values, parsed.changed, parsed.args)
    if cmd.name == "run":
        _interruptible()
    return int(HANDLERS[cmd.name](ns) or 0)


def _interruptible() -> None:
    """Ctrl+C stops a reply even when the parent started this process with SIGINT ignored or blocked (a
    background job of a script, some test and CI harnesses): Python then installs no handler of its own, and
    ^C did nothing. Ollama's CLI asks for the signal explicitly (Go's signal.Notify) and so does this."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def main(argv: list[str] | None = None) -> int:
    try:
        return _execute(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except ConnectionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
