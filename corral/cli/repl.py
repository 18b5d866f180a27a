"""The interactive chat of ``corral run MODEL`` (Ollama's ``generateInteractive``), its state in :class:`Repl`.

Lines come from :class:`corral.cli.lineeditor.LineEditor`; each one goes through :meth:`Repl.handle`, which
follows Ollama's order of cases: an open ``\"\"\"`` block, a line opening one, a pasted line, then the slash
commands (matched by prefix, as Ollama matches them), then a message.  A message is sent with the whole
conversation through ``/api/chat``; the answer joins the conversation unless Ctrl+C cut it.

Texts are Ollama's; usage texts go to stderr, everything else to stdout.
"""

from __future__ import annotations

import enum
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from corral.cli.run import RunOptions, chat, infer_think, load_model, show, streamed_error
from corral.client import Client, ResponseError

__all__ = ["Repl", "format_parameters", "go_v"]

USAGE = """Available Commands:
  /set            Set session variables
  /show           Show model information
  /load <model>   Load a session or model
  /save <model>   Save your current session
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command
  /? shortcuts    Help for keyboard shortcuts

Use \"\"\" to begin a multi-line message.
"""
USAGE_MULTIMODAL = "Use /path/to/file to include .jpg, .png, .webp images, or .wav audio files.\n"

USAGE_SET = """Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set system message
  /set history           Enable history
  /set nohistory         Disable history
  /set wordwrap          Enable wordwrap
  /set nowordwrap        Disable wordwrap
  /set format json       Enable JSON mode
  /set noformat          Disable formatting
  /set verbose           Show LLM stats
  /set quiet             Disable LLM stats
  /set think             Enable thinking
  /set nothink           Disable thinking

"""

USAGE_SHORTCUTS = """Available keyboard shortcuts:
  Ctrl + a            Move to the beginning of the line (Home)
  Ctrl + e            Move to the end of the line (End)
   Alt + b            Move back (left) one word
   Alt + f            Move forward (right) one word
  Ctrl + k            Delete the sentence after the cursor
  Ctrl + u            Delete the sentence before the cursor
  Ctrl + w            Delete the word before the cursor

  Ctrl + l            Clear the screen
  Ctrl + g            Open default editor to compose a prompt
  Ctrl + c            Stop the model from responding
  Ctrl + d            Exit corral (/bye)

"""

USAGE_SHOW = """Available Commands:
  /show info         Show details for this model
  /show license      Show model license
  /show modelfile    Show Modelfile for this model
  /show parameters   Show parameters for this model
  /show system       Show system message
  /show template     Show prompt template

"""

USAGE_PARAMETERS = """Available Parameters:
  /set parameter seed <int>             Random number seed
  /set parameter num_predict <int>      Max number of tokens to predict
  /set parameter top_k <int>            Pick from top k num of tokens
  /set parameter top_p <float>          Pick token based on sum of probabilities
  /set parameter min_p <float>          Pick token based on top token probability * min_p
  /set parameter num_ctx <int>          Set the context size
  /set parameter temperature <float>    Set creativity level
  /set parameter repeat_penalty <float> How strongly to penalize repetitions
  /set parameter repeat_last_n <int>    Set how far back to look for repetitions
  /set parameter num_gpu <int>          The number of layers to send to the GPU
  /set parameter stop <string> <string> ...   Set the stop parameters

"""

QUOTES = '"""'


class Multiline(enum.Enum):
    NONE = 0
    PROMPT = 1
    SYSTEM = 2


# --- /set parameter (Ollama's api.FormatParams) -----------------------------------------------------------------

def _go_list(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"


def _parse_int(text: str) -> int:
    """strconv.ParseInt(s, 10, 64)."""
    body = text[1:] if text[:1] in "+-" else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(text)
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def _parse_float32(text: str) -> float:
    """strconv.ParseFloat(s, 32), near enough: decimal and exponent forms, inf and nan.  The value is kept as
    typed (JSON then carries ``0.7``, as Go's float32 marshals); the server narrows it."""
    from corral.gocodec import to_float32

    if not text or "_" in text or text.strip() != text:
        raise ValueError(text)
    value = float(text)
    try:
        to_float32(value)
    except OverflowError:
        raise ValueError(text) from None  # out of float32's range
    return value


def format_parameters(key: str, values: list[str]) -> Any:
    """A ``/set parameter`` value, typed as the option is.  Raises ValueError with Ollama's message."""
    from corral.api.options import OPTION_TYPES
    from corral.cli.cobra import go_parse_bool

    kind = OPTION_TYPES.get(key)
    if kind is None:
        raise ValueError(f"unknown parameter '{key}'")
    try:
        if kind == "int":
            return _parse_int(values[0])
        if kind == "float":
            return _parse_float32(values[0])
        if kind == "bool":
            return go_parse_bool(values[0])
    except ValueError:
        raise ValueError(f"invalid {kind} value {_go_list(values)}") from None
    return list(values)


def go_v(value: Any) -> str:
    """fmt's ``%v`` for the values format_parameters makes (float32s shortest, slices in brackets)."""
    from corral.gocodec import format_float

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format_float(value, "e", -1, 32)
        exponent = int(text.rsplit("e", 1)[1]) if "e" in text else 0
        return text if exponent < -4 or exponent >= 21 else format_float(value, "f", -1, 32)
    if isinstance(value, list):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    return str(value)


def env_bool(key: str) -> bool:
    """Ollama's envconfig.Bool: unset or empty is false, a Go boolean is itself, anything else is true."""
    from corral.cli.cobra import go_parse_bool

    text = os.environ.get(key, "").strip().strip("\"'")
    if not text:
        return False
    try:
        return go_parse_bool(text)
    except ValueError:
        return True


# --- Ctrl+G ------------------------------------------------------------------------------------------------------

def edit_in_external_editor(content: str) -> str:
    """Ollama's editInExternalEditor: $OLLAMA_EDITOR, $VISUAL, $EDITOR or vi on a temporary file."""
    editor = os.environ.get("OLLAMA_EDITOR") or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = shlex.split(editor)
    if not argv or shutil.which(argv[0]) is None:
        name = argv[0] if argv else editor
        raise OSError(f'editor "{name}" not found, set OLLAMA_EDITOR to the path of your preferred editor')
    fd, path = tempfile.mkstemp(prefix="corral-prompt-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        if subprocess.run([*argv, path]).returncode != 0:
            raise OSError("editor exited with error")
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().rstrip("\n")
    finally:
        os.unlink(path)


# --- the REPL --------------------------------------------------------------------------------------------------

class Repl:
    """The chat's state: the run options (model, messages, system, options, modes), the line being built
    (``buffer``) and whether a ``\"\"\"`` block is open."""

    def __init__(self, client: Client, opts: RunOptions, *, think_explicit: bool = False,
                 editor: Any = None) -> None:
        self.client = client
        self.opts = opts
        self.think_explicit = think_explicit
        self.buffer: list[str] = []
        self.multiline = Multiline.NONE
        if editor is None:
            from corral.cli.lineeditor import LineEditor

            editor = LineEditor(history_enabled=not env_bool("OLLAMA_NOHISTORY"))
        self.editor = editor

    # -- the loop --

    def run(self) -> int:
        from corral.cli.lineeditor import EditPrompt

        while True:
            try:
                text = self.editor.read()
            except EOFError:
                return 0  # the editor has ended the line already
            except KeyboardInterrupt:
                print("Use Ctrl + d or /bye to exit.")
                # Ollama leaves an open block open behind the main prompt; corral closes it with the line
                self._reset()
                continue
            except EditPrompt as edit:
                self._reset()
                try:
                    content = edit_in_external_editor(edit.text)
                except OSError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    continue
                if content.strip():
                    self.editor.prefill = content
                continue
            lines = text.split("\n")
            for i, line in enumerate(lines):
                if not self.handle(line, pasting=i < len(lines) - 1):
                    return 0

    def _reset(self) -> None:
        self.buffer.clear()
        self.multiline = Multiline.NONE
        self.editor.alt = False

    def _alt(self, on: bool) -> None:
        self.editor.alt = on

    def handle(self, line: str, pasting: bool = False) -> bool:
        """One line, as Ollama's loop takes it; False to leave the REPL."""
        if self.multiline is not Multiline.NONE:
            ok = line.endswith(QUOTES)
            self.buffer.append(line[:-3] if ok else line)
            if not ok:
                self.buffer.append("\n")
                self._alt(True)
                return True
            if self.multiline is Multiline.SYSTEM:
                self.opts.system = "".join(self.buffer)
                self.opts.messages.append({"role": "system", "content": self.opts.system})
                print("Set system message.")
                self.buffer.clear()
            self.multiline = Multiline.NONE
            self._alt(False)
        elif line.startswith(QUOTES):
            rest = line[3:]
            ok = rest.endswith(QUOTES)
            self.buffer.append(rest[:-3] if ok else rest)
            if not ok:
                self.buffer.append("\n")
                self.multiline = Multiline.PROMPT
                self._alt(True)
        elif pasting:
            self.buffer.append(line + "\n")
            return True
        elif line.startswith("/"):
            return self._command(line)
        else:
            self.buffer.append(line)
        return self._send_if_ready()

    def _send_if_ready(self) -> bool:
        text = "".join(self.buffer)
        if not text or self.multiline is not Multiline.NONE:
            return True
        message: dict[str, Any] = {"role": "user", "content": text}
        if self.opts.multimodal:
            from corral.cli.images import extract_file_data

            message["content"], images = extract_file_data(text)
            if images:
                message["images"] = images
        self.opts.messages.append(message)
        try:
            answer = chat(self.client, self.opts)
        except ResponseError as exc:
            if "does not support thinking" in exc.error or "invalid think value" in exc.error:
                print(f"error: {exc.error}")
                self.buffer.clear()
                return True
            raise
        if answer is None:
            print()  # Ctrl+C: the next prompt on a line of its own, after the terminal's ^C
        else:
            self.opts.messages.append(answer)
        self.buffer.clear()
        return True

    # -- slash commands --

    def _command(self, line: str) -> bool:
        """A slash command.  As in Ollama, /list, /set (but system), /show and /help then send what a paste
        left in the buffer; the others drop back to the prompt."""
        args = line.split()
        if line.startswith("/list"):
            self._list(args[1:])
        elif line.startswith("/load"):
            self._load(args)
            return True
        elif line.startswith("/save"):
            self._save(args)
            return True
        elif line.startswith("/clear"):
            self.opts.messages = []
            if self.opts.system:
                self.opts.messages.append({"role": "system", "content": self.opts.system})
            print("Cleared session context")
            return True
        elif line.startswith("/set"):
            if len(args) > 1:
                if not self._set(args):
                    return True
            else:
                sys.stderr.write(USAGE_SET)
        elif line.startswith("/show"):
            if len(args) > 1:
                self._show(args[1])
            else:
                sys.stderr.write(USAGE_SHOW)
        elif line.startswith(("/help", "/?")):
            self._help(args)
        elif line.startswith(("/exit", "/bye")):
            return False
        else:
            is_file = False
            if self.opts.multimodal and args:
                from corral.cli.images import extract_file_names

                is_file = any(name.startswith(args[0]) for name in extract_file_names(line))
            if not is_file:
                print(f"Unknown command '{args[0] if args else line}'. Type /? for help")
                return True
            self.buffer.append(line)
        return self._send_if_ready()

    def _help(self, args: list[str]) -> None:
        if len(args) > 1:
            if args[1] in ("set", "/set"):
                sys.stderr.write(USAGE_SET)
            elif args[1] in ("show", "/show"):
                sys.stderr.write(USAGE_SHOW)
            elif args[1] in ("shortcut", "shortcuts"):
                sys.stderr.write(USAGE_SHORTCUTS)
            return
        sys.stderr.write(USAGE + (USAGE_MULTIMODAL if self.opts.multimodal else "") + "\n")

    def _list(self, words: list[str]) -> None:
        import argparse

        from corral.cli.models import cmd_list

        cmd_list(argparse.Namespace(prefix=words[0] if words else None, args=words))

    def _load(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /load <modelname>")
            return
        original = self.opts.copy()
        self.opts.model = args[1]
        self.opts.messages = []
        self.opts.loaded_messages = []
        print(f"Loading model '{self.opts.model}'")
        try:
            info = show(self.client, self.opts.model)
        except ResponseError as exc:
            if "not found" in exc.error:
                print(f"Couldn't find model '{self.opts.model}'")
                self.opts = original
                return
            raise
        self.opts.apply_show(info)
        self.opts.think = infer_think([str(c) for c in info.get("capabilities") or []], self.opts,
                                      self.think_explicit)
        try:
            load_model(self.client, self.opts)
        except ResponseError as exc:
            if "not found" in exc.error:
                print(f"Couldn't find model '{self.opts.model}'")
                self.opts = original
                return
            if "does not support thinking" in exc.error:
                print(f"error: {exc.error}")
                return
            raise

    def _save(self, args: list[str]) -> None:
        if len(args) != 2:
            print("Usage:\n  /save <modelname>")
            return
        from corral.cli.run import _wire_message

        name = args[1]
        body: dict[str, Any] = {"model": name, "from": self.opts.parent_model or self.opts.model, "stream": False}
        if self.opts.system:
            body["system"] = self.opts.system
        if self.opts.options:
            body["parameters"] = self.opts.options
        messages = [*self.opts.loaded_messages, *self.opts.messages]
        if messages:
            body["messages"] = [_wire_message(m) for m in messages]
        try:
            self.client._request_raw("POST", "/api/create", json=body)
        except ResponseError as exc:
            if "invalid model name" in exc.error:
                print(f"error: The model name '{name}' is invalid")
                return
            raise streamed_error(exc) from None
        print(f"Created new model '{name}'")

    def _set(self, args: list[str]) -> bool:
        """``/set …``; False where Ollama goes straight back to the prompt (``continue``)."""
        what = args[1]
        if what == "history":
            self.editor.history_enabled = True
        elif what == "nohistory":
            self.editor.history_enabled = False
        elif what in ("wordwrap", "nowordwrap"):
            self.opts.wordwrap = what == "wordwrap"
            print(f"Set '{what}' mode.")
        elif what in ("verbose", "quiet"):
            self.opts.verbose = what == "verbose"
            print(f"Set '{what}' mode.")
        elif what == "think":
            level = args[2] if len(args) > 2 else ""
            self.opts.think = level or True  # the level is the server's to judge
            self.think_explicit = True
            self._warn_without_thinking()
            print(f"Set 'think' mode to '{level}'." if level else "Set 'think' mode.")
        elif what == "nothink":
            self.opts.think = False
            self.think_explicit = True
            self._warn_without_thinking()
            print("Set 'nothink' mode.")
        elif what == "format":
            if len(args) < 3 or args[2] != "json":
                print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                self.opts.format = "json"
                print("Set format to 'json' mode.")
        elif what == "noformat":
            self.opts.format = ""
            print("Disabled format.")
        elif what == "parameter":
            if len(args) < 4:
                sys.stderr.write(USAGE_PARAMETERS)
                return False
            key, values = args[2], args[3:]
            try:
                value = format_parameters(key, values)
            except ValueError as exc:
                print(f"Couldn't set parameter: {_go_quote(str(exc))}")
                return False
            print(f"Set parameter '{key}' to '{', '.join(values)}'")
            self.opts.options[key] = value
        elif what == "system":
            self._set_system(args)
            return False
        else:
            print(f"Unknown command '/set {what}'. Type /? for help")
        return True

    def _set_system(self, args: list[str]) -> None:
        if len(args) < 3:
            sys.stderr.write(USAGE_SET)
            return
        text = " ".join(args[2:])
        if text.startswith(QUOTES):
            text = text[3:]
            if text.endswith(QUOTES):
                text = text[:-3]
            else:
                # An open block: the lines that follow are the message.  (Ollama runs this first line into
                # the next one; corral keeps the line break the user typed.)
                self.multiline = Multiline.SYSTEM
                self.buffer.append(text + "\n" if text else "")
                self._alt(True)
                return
        self.opts.system = text
        message = {"role": "system", "content": text}
        if self.opts.messages and self.opts.messages[-1].get("role") == "system":
            self.opts.messages[-1] = message
        else:
            self.opts.messages.append(message)
        print("Set system message.")
        self.buffer.clear()

    def _warn_without_thinking(self) -> None:
        try:
            info = show(self.client, self.opts.model)
        except (ResponseError, ConnectionError):
            return
        if "thinking" not in (info.get("capabilities") or []):
            print(f'warning: model "{self.opts.model}" does not support thinking output', file=sys.stderr)

    def _show(self, what: str) -> None:
        try:
            info = show(self.client, self.opts.model)
        except ResponseError:
            print("error: couldn't get model")
            raise
        if what == "info":
            from corral.cli.manage import show_info

            sys.stderr.write(show_info(info))
        elif what == "license":
            print(info.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            print(info.get("modelfile") or "")
        elif what == "parameters":
            print("Model defined parameters:")
            parameters = str(info.get("parameters") or "")
            if not parameters:
                print("  No additional parameters were specified for this model.")
            else:
                for line in parameters.split("\n"):
                    print(f"  {line}")
            print()
            if self.opts.options:
                print("User defined parameters:")
                for key, value in self.opts.options.items():
                    print(f"  {key:<30} {go_v(value)}")
                print()
        elif what == "system":
            if self.opts.system:
                print(self.opts.system + "\n")
            elif info.get("system"):
                print(str(info["system"]) + "\n")
            else:
                print("No system message was specified for this model.")
        elif what == "template":
            print(info.get("template") or "No prompt template was specified for this model.")
        else:
            print(f"Unknown command '/show {what}'. Type /? for help")


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
