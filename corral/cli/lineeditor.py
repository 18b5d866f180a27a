"""The REPL's line editor: Ollama's ``readline`` package on prompt_toolkit.

What it keeps from Ollama:

- ``>>> `` and, inside a ``\"\"\"`` block, ``... ``; the grey placeholder ``Send a message (/? for help)``
  (``Press Enter to send`` inside a block), gone once the line is sent;
- Emacs keys (Ctrl+A/E/B/F/K/U/W/L, Alt+B/F, Alt+Backspace), arrows and Ctrl+P/N through the history,
  Ctrl+D on an empty line ends, Ctrl+C raises ``KeyboardInterrupt``, Ctrl+Z suspends, Tab is 8 spaces,
  Ctrl+G opens ``$OLLAMA_EDITOR``/``$VISUAL``/``$EDITOR`` (raised as :class:`EditPrompt`);
- bracketed paste: a pasted block arrives as one text, newlines included (the caller treats every line but
  the last as pasted);
- Ctrl+J starts a new line, unless it came with other keys in one read: that is typeahead from while the
  model was answering (cooked mode sends Enter as ``\\n``), and it submits;
- the history file ``~/.ollama/history``, shared with Ollama: one line per entry, the last 100 entries,
  rewritten after every entry while history is enabled (``OLLAMA_NOHISTORY``, ``/set nohistory`` stop the
  writing, not the Up arrow).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import History
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.styles import Style

__all__ = ["ALT_PROMPT", "PROMPT", "EditPrompt", "LineEditor", "OllamaHistory", "history_path"]

PROMPT = ">>> "
ALT_PROMPT = "... "
PLACEHOLDER = "Send a message (/? for help)"
ALT_PLACEHOLDER = "Press Enter to send"
HISTORY_LIMIT = 100

# Ollama's ColorGrey (256-colour 245) for the placeholder; no dimming of a line left by Ctrl+C or Ctrl+D.
_STYLE = Style.from_dict({"placeholder": "fg:#8a8a8a", "aborting": "fg:ansidefault", "exiting": "fg:ansidefault"})


class EditPrompt(Exception):
    """Ctrl+G: the caller opens an editor on ``text`` and offers the result as the next line's start."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def history_path() -> Path:
    return Path.home() / ".ollama" / "history"


class OllamaHistory(History):
    """Ollama's history file: read at start (blank lines skipped, the last 100 kept), saved whole after each
    entry through a temporary file, only while enabled."""

    def __init__(self, path: Path | None, enabled: bool = True) -> None:
        super().__init__()
        self.path = path
        self.enabled = enabled
        self.entries: list[str] = []
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            except OSError:
                text = ""
            self.entries = [line.strip() for line in text.splitlines() if line.strip()][-HISTORY_LIMIT:]

    def load_history_strings(self) -> Iterable[str]:
        return list(reversed(self.entries))  # prompt_toolkit wants the newest first

    def append_string(self, string: str) -> None:
        super().append_string(string)
        del self._loaded_strings[HISTORY_LIMIT:]

    def store_string(self, string: str) -> None:
        self.entries.append(string)
        del self.entries[:-HISTORY_LIMIT]
        if not self.enabled or self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                f.writelines(entry + "\n" for entry in self.entries)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home must not end the chat


class LineEditor:
    """Reads one line at a time from the terminal; ``alt`` switches to the continuation prompt."""

    def __init__(self, history_enabled: bool = True) -> None:
        self.history = OllamaHistory(history_path(), history_enabled)
        self.alt = False
        self.prefill = ""
        self._batch = 0
        output = Vt100_Output.from_pty(sys.stdout)
        # Ollama asks the terminal nothing; a cursor position request that goes unanswered (a plain pty,
        # some multiplexers) would make prompt_toolkit wait and then print a warning.
        output.enable_cpr = False
        self.session: PromptSession[str] = PromptSession(
            history=self.history, key_bindings=self._bindings(), style=_STYLE, output=output,
            enable_suspend=True, enable_history_search=False, prompt_continuation=ALT_PROMPT,
            placeholder=self._placeholder,
        )
        self._count_batches()
        # Ollama keeps every line sent, repeats included; prompt_toolkit would skip a repeat.  read() adds.
        setattr(self.session.default_buffer, "append_to_history", lambda: None)  # noqa: B010

    @property
    def history_enabled(self) -> bool:
        return self.history.enabled

    @history_enabled.setter
    def history_enabled(self, value: bool) -> None:
        self.history.enabled = value

    def _placeholder(self) -> FormattedText:
        if get_app().is_done:  # Ollama clears the placeholder once a key is read
            return FormattedText([])
        return FormattedText([("class:placeholder", ALT_PLACEHOLDER if self.alt else PLACEHOLDER)])

    def _count_batches(self) -> None:
        """Remember how many keys came in the read being processed (see Ctrl+J)."""
        processor = self.session.app.key_processor
        feed = processor.feed_multiple

        def feed_multiple(key_presses: list[Any], first: bool = False) -> None:
            self._batch = len(key_presses)
            feed(key_presses, first)

        setattr(processor, "feed_multiple", feed_multiple)  # noqa: B010 - an instance's method, replaced

    def _bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("c-j")
        def _newline(event: KeyPressEvent) -> None:
            if self._batch > 1:
                event.current_buffer.validate_and_handle()
            else:
                event.current_buffer.insert_text("\n")

        @kb.add("tab")
        def _tab(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text(" " * 8)

        @kb.add("c-g")
        def _editor(event: KeyPressEvent) -> None:
            event.app.exit(exception=EditPrompt(event.current_buffer.text))

        return kb

    def read(self) -> str:
        """One line (or pasted block).  Raises KeyboardInterrupt, EOFError or EditPrompt."""
        default, self.prefill = self.prefill, ""
        text = self.session.prompt(ALT_PROMPT if self.alt else PROMPT, default=default)
        if text:
            self.history.append_string(text)
        return text
