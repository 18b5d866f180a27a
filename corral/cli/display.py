"""How ``corral run`` shows a streamed answer, as Ollama's CLI does (``displayResponse``, ``chat``, ``generate``
and ``progress.Spinner`` in ollama/cmd).

- Word wrap: characters are written as they come; when a line would pass ``width - 5`` columns, the word
  being written is taken back (cursor left, clear to the end of the line) and rewritten on the next line.
  A word longer than ``width - 10`` columns is left to break where it falls.
- Thinking: ``Thinking...`` in bold grey, the trace in grey, then ``...done thinking.`` and a blank line
  before the answer; plain text when the output is not a terminal; nothing with ``--hidethinking``.
- The spinner (``⠋``) on stderr while the model loads or the first token is awaited, erased when output
  starts.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

from wcwidth import wcwidth

__all__ = [
    "BOLD",
    "DEFAULT",
    "GREY",
    "ResponseView",
    "Spinner",
    "WordWrap",
    "render_tool_calls",
    "terminal_width",
    "thinking_closing",
    "thinking_opening",
]

GREY = "\x1b[38;5;245m"
DEFAULT = "\x1b[0m"
BOLD = "\x1b[1m"

_FRAMES = ("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏")
_TICK = 0.1  # seconds between frames, as Ollama's spinner


def _width(ch: str) -> int:
    """Columns a character takes (go-runewidth's RuneWidth: control characters take none)."""
    return max(wcwidth(ch), 0)


def _text_width(text: str) -> int:
    return sum(_width(ch) for ch in text)


def terminal_width(stream: TextIO | None = None) -> int:
    """The columns of the terminal behind ``stream`` (stdout), or 80 as Ollama assumes when it has none."""
    try:
        columns = os.get_terminal_size((stream or sys.stdout).fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80
    return columns or 80


class WordWrap:
    """One answer's wrapping state (Ollama's ``displayResponseState``): the current line's width and the
    word being written.  ``render`` returns what to write for the next piece of text."""

    def __init__(self) -> None:
        self.line_length = 0
        self.word = ""

    def render(self, content: str, wrap: bool, width: int) -> str:
        if not (wrap and width >= 10):
            text, self.word = self.word + content, ""
            return text
        out: list[str] = []
        for ch in content:
            if self.line_length + 1 > width - 5:
                back = _text_width(self.word)
                if back > width - 10:
                    # A word wider than the line breaks at the margin.  (Ollama writes the word out a
                    # second time here, which doubles long URLs; corral does not.)
                    out.append("\n")
                    self.word, self.line_length = "", 0
                else:
                    # take the word back and rewrite it on the next line
                    if back > 0:
                        out.append(f"\x1b[{back}D")
                    out.append("\x1b[K\n" + self.word)
                    self.line_length = back
            out.append(ch)
            w = _width(ch)
            self.line_length += w
            if w >= 2 or ch in " \t":  # a wide character (CJK) is a word of its own
                self.word = ""
            elif ch in "\n\r":
                self.line_length, self.word = 0, ""
            else:
                self.word += ch
        return "".join(out)


def thinking_opening(plain: bool) -> str:
    text = "Thinking...\n"
    return text if plain else GREY + BOLD + text + DEFAULT + GREY


def thinking_closing(plain: bool) -> str:
    text = "...done thinking.\n\n"
    return text if plain else GREY + BOLD + text + DEFAULT


def render_tool_calls(calls: Iterable[Any], plain: bool) -> str:
    """Ollama's note for a tool call the CLI cannot run (it offers the model no tools)."""
    from corral.gocodec import dumps_str

    explain, values = ("", "") if plain else (GREY + BOLD, DEFAULT)
    lines = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else getattr(call, "function", None)
        if isinstance(function, dict):
            name, arguments = function.get("name", ""), function.get("arguments") or {}
        else:
            name, arguments = getattr(function, "name", ""), getattr(function, "arguments", None) or {}
        lines.append(f"  Model called a non-existent function '{values}{name}{explain}()' with arguments: "
                     f"{values}{dumps_str(dict(arguments))}{explain}")
    if not lines:
        return ""
    return explain + "\n".join(lines) + ("" if plain else DEFAULT)


class Spinner:
    """Ollama's progress spinner with no message: a braille frame and a space on stderr, redrawn every 100 ms
    from the first tick on (a quick answer never shows it), erased by :meth:`stop`.  Nothing is drawn when
    stderr is not a terminal: escape codes in a log help nobody."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._drawn = False
        self._thread: threading.Thread | None = None
        if getattr(self.stream, "isatty", lambda: False)():
            self._thread = threading.Thread(target=self._run, name="spinner", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        # Ctrl+C must interrupt the main thread's read of the answer: a SIGINT the kernel hands to this thread
        # only sets Python's flag, and a stalled answer then keeps the main thread blocked in recv()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        frame = 0
        while not self._stopped.wait(_TICK):
            with self._lock:
                if self._stopped.is_set():
                    return
                # synchronized output, cursor hidden while drawing: no flicker
                self._write(f"\x1b[?2026h\x1b[?25l\x1b[1G{_FRAMES[frame]} \x1b[K\x1b[?25h\x1b[?2026l")
                self._drawn = True
            frame = (frame + 1) % len(_FRAMES)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Stop and erase the spinner (idempotent)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            if self._drawn:
                self._write("\x1b[?25l\x1b[2K\x1b[1G\x1b[?25h")


class ResponseView:
    """Writes one streamed answer: thinking (shown, dimmed, or hidden), the answer word-wrapped, tool calls.

    ``feed`` takes each part's thinking, content and tool calls; ``thinking`` and ``content`` hold what
    came.  ``chat`` follows the REPL's order (tool calls before the content of the same part, never plain)
    and ``generate`` the one-shot's (tool calls after, plain when stdout is not a terminal)."""

    def __init__(self, *, wrap: bool, hide_thinking: bool, plain: bool, chat: bool,
                 spinner: Spinner | None = None, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.wrap, self.hide_thinking, self.plain, self.chat = wrap, hide_thinking, plain, chat
        self.spinner = spinner
        self.state = WordWrap()
        self._thinking: list[str] = []
        self._content: list[str] = []
        self._open = False
        self._closed = False

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    @property
    def content(self) -> str:
        return "".join(self._content)

    def _show(self, text: str) -> str:
        return self.state.render(text, self.wrap, terminal_width(self.out))

    def feed(self, thinking: str, content: str, tool_calls: list[Any] | None) -> None:
        out: list[str] = []
        if (content or not self.hide_thinking) and self.spinner is not None:
            self.spinner.stop()
        if thinking and not self.hide_thinking:
            if not self._open:
                out.append(thinking_opening(self.plain))
                self._open, self._closed = True, False
            self._thinking.append(thinking)
            out.append(self._show(thinking))
        if self._open and not self._closed and (content or tool_calls):
            if not self.thinking.endswith("\n"):
                out.append("\n")
            out.append(thinking_closing(self.plain))
            self._open, self._closed = False, True
            self.state = WordWrap()
        self._content.append(content)
        if self.chat and tool_calls:
            out.append(render_tool_calls(tool_calls, self.plain))
        out.append(self._show(content))
        if not self.chat and tool_calls:
            out.append(render_tool_calls(tool_calls, self.plain))
        text = "".join(out)
        if text:
            self.out.write(text)
            self.out.flush()
