"""Argument parsing and dispatch for ``corral``; the commands live in sibling modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

ENV_HELP = """Environment variables:
  OLLAMA_HOST               IP address and port of the server (default 127.0.0.1:11434)
  OLLAMA_MODELS             the model store (default ~/.ollama/models)
  OLLAMA_KEEP_ALIVE         how long models stay loaded (default "5m")
  OLLAMA_CONTEXT_LENGTH     default context length (default 4096)
  OLLAMA_NUM_PARALLEL       parallel requests per model (default 1)
  OLLAMA_MAX_LOADED_MODELS  models loaded at once (default 0 = 3 on CPU)
  OLLAMA_MAX_QUEUE          requests that may wait (default 512)
  OLLAMA_LOAD_TIMEOUT       how long a load may stall (default "5m")
  OLLAMA_ORIGINS            extra allowed CORS origins, comma-separated
  OLLAMA_NOPRUNE            do not prune unused blobs at start-up
  OLLAMA_DEBUG              verbose logging
  CORRAL_MAX_MEMORY         cap on the memory the scheduler may fill (e.g. "2GB")
  CORRAL_REGISTRY           serve registry.ollama.ai names from this registry (e.g. "http://mirror:5000")
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corral", description="Large language model runner (Ollama, in Python)")
    p.add_argument("-v", "--version", action="store_true", help="show version information")
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("serve", aliases=["start"], help="start the server", epilog=ENV_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.set_defaults(func=_lazy("corral.cli.serve", "cmd_serve"))

    r = sub.add_parser("run", help="run a model")
    r.add_argument("model")
    r.add_argument("prompt", nargs="*")
    r.add_argument("--keepalive", default=None, help="how long the model stays loaded (e.g. 5m)")
    r.add_argument("--verbose", action="store_true", help="show timings for the response")
    r.add_argument("--format", default=None, help='response format (e.g. "json")')
    r.add_argument("--nowordwrap", action="store_true", help="accepted for Ollama compatibility")
    r.add_argument("--insecure", action="store_true", help="use an insecure registry")
    r.add_argument("--truncate", nargs="?", const=True, default=None, type=_go_bool, metavar="true|false",
                   help="for embedding models: truncate inputs exceeding context length (default: true); "
                        "--truncate=false errors instead")
    r.add_argument("--dimensions", type=int, default=0,
                   help="truncate output embeddings to this dimension (embedding models only)")
    r.set_defaults(func=_lazy("corral.cli.run", "cmd_run"))

    for command, what in (("pull", "pull a model from a registry"), ("push", "push a model to a registry")):
        t = sub.add_parser(command, help=what)
        t.add_argument("model")
        t.add_argument("--insecure", action="store_true", help="use an insecure registry")
        t.set_defaults(func=_lazy("corral.cli.transfer", f"cmd_{command}"))

    ls = sub.add_parser("list", aliases=["ls"], help="list models")
    ls.set_defaults(func=_lazy("corral.cli.models", "cmd_list"))

    c = sub.add_parser("create", help="create a model from a Modelfile")
    c.add_argument("model")
    c.add_argument("-f", "--file", default=None, help='name of the Modelfile (default "Modelfile")')
    c.add_argument("-q", "--quantize", default=None, help="quantize the model to this level (e.g. q4_K_M)")
    c.set_defaults(func=_lazy("corral.cli.manage", "cmd_create"))

    sh = sub.add_parser("show", help="show information for a model")
    sh.add_argument("model")
    for flag, what in (("license", "license"), ("modelfile", "Modelfile"), ("parameters", "parameters"),
                       ("template", "template"), ("system", "system message")):
        sh.add_argument(f"--{flag}", action="store_true", help=f"show the model's {what}")
    sh.add_argument("-v", "--verbose", action="store_true", help="show detailed model information")
    sh.set_defaults(func=_lazy("corral.cli.manage", "cmd_show"))

    cp = sub.add_parser("cp", help="copy a model")
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.set_defaults(func=_lazy("corral.cli.manage", "cmd_cp"))

    rm = sub.add_parser("rm", help="remove a model")
    rm.add_argument("models", nargs="+")
    rm.set_defaults(func=_lazy("corral.cli.manage", "cmd_rm"))

    ps = sub.add_parser("ps", help="list running models")
    ps.set_defaults(func=_lazy("corral.cli.models", "cmd_ps"))

    st = sub.add_parser("stop", help="stop a running model")
    st.add_argument("model")
    st.set_defaults(func=_lazy("corral.cli.models", "cmd_stop"))
    return p


def _go_bool(text: str) -> bool:
    """A boolean flag's ``=value`` as Go's ``strconv.ParseBool`` reads it (``--truncate=false``)."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """Import a command's module only when it runs, so `corral list` never loads the engine."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        func: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return func(args)

    return run


def _join_flag_values(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """``--keepalive -1m`` as ``--keepalive=-1m``: Ollama's flag parser takes the next word as the value
    whatever it starts with; argparse would read a leading dash as another option."""
    out: list[str] = []
    it = iter(argv)
    for word in it:
        if word in flags:
            value = next(it, None)
            out.append(word if value is None else f"{word}={value}")
        else:
            out.append(word)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(_join_flag_values(sys.argv[1:] if argv is None else argv,
                                                            ("--keepalive", "--format")))
    if extra:
        # Ollama takes flags anywhere: `run MODEL --verbose Why?` has its prompt after a flag, which
        # argparse leaves over once the prompt's own place has passed.
        if isinstance(getattr(args, "prompt", None), list) and not any(w.startswith("-") for w in extra):
            args.prompt += extra
        else:
            parser.error("unrecognized arguments: " + " ".join(extra))
    if args.version:
        from corral.version import OLLAMA_VERSION, __version__

        print(f"corral version is {__version__} (Ollama API {OLLAMA_VERSION})")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ConnectionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
