"""``corral run MODEL``'s REPL driven in a pseudo-terminal, as a person types: keys, pastes, Ctrl+C, Ctrl+D.

Most tests talk to a fake-engine server of this module's own (``fake``): its "model" answers with the text
after the last ``say:`` in the rendered prompt (up to a newline or ``<``), one token per byte, or ``ok``
without one; ``stall:`` answers the same way and then hangs (a reply to interrupt).  So the server is the
witness of what the REPL sent: a system message that reaches the prompt is echoed back, ``num_predict 3``
gives three bytes, a saved session's messages are in ``/api/show``.  A stalled runner is killed afterwards
(see :func:`unstick`).  The real engine (``server``) checks what only a real model shows: token counts
and a JSON grammar.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from corral.store.testing import make_temp_store
from tests.servers import REPO, CorralServer, free_port, wait_until

READY = "Send a message (/? for help)"  # the placeholder: drawn only when the prompt waits for input
# escape codes, carriage returns, and the spinner's frames (drawn on stderr if an answer is slow to start)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r|[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ")
THINK_TEMPLATE = ('{{- range .Messages }}{{ if eq .Role "assistant" }}{{ if .Thinking }}THINK:{{ .Thinking }}'
                  ':KNIHT{{ end }}{{ .Content }}{{ else }}{{ .Content }}\n{{ end }}{{ end }}')


def plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    store = make_temp_store(tmp_path_factory.mktemp("repl-store"))
    # a registry nobody listens on: pulling a missing model fails at once, with or without internet
    srv = CorralServer(models=store.root, env={"CORRAL_FAKE_RUNNER": "1",
                                               "CORRAL_REGISTRY": f"http://127.0.0.1:{free_port()}"}).start()
    # A thinking model: the template's tags around .Thinking are THINK: and :KNIHT (no "<", which would end
    # the fake's answer).
    create(srv, {"model": "thinker", "from": "smollm2:135m", "template": THINK_TEMPLATE})
    yield srv
    srv.stop()


def create(srv: CorralServer, body: dict[str, Any]) -> None:
    done = httpx.post(srv.url + "/api/create", json={**body, "stream": False}, timeout=60)
    assert done.status_code == 200, done.text


def shown(srv: CorralServer, model: str) -> dict[str, Any]:
    response = httpx.post(srv.url + "/api/show", json={"model": model}, timeout=30)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def user_messages(srv: CorralServer, model: str) -> list[str]:
    return [m["content"] for m in shown(srv, model).get("messages") or [] if m["role"] == "user"]


def unstick(srv: CorralServer) -> None:
    """Kill the runners a ``stall:`` answer left hanging (children of this module's server)."""
    for pid in srv.runners():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not srv.runners(), timeout=30, what="the stalled runner to go")


class Repl:
    """A ``corral run`` in a pseudo-terminal."""

    def __init__(self, srv: CorralServer, *args: str, home: Path, width: int = 100,
                 env: dict[str, str] | None = None) -> None:
        environ = {**os.environ, "OLLAMA_HOST": srv.host, "NO_PROXY": "127.0.0.1,localhost", "HOME": str(home),
                   "TERM": "xterm-256color", **(env or {})}
        for key in ("OLLAMA_NOHISTORY", "COLUMNS", "LINES"):
            if key not in (env or {}):
                environ.pop(key, None)
        self.child = pexpect.spawn(sys.executable, ["-m", "corral", "run", *args], cwd=str(REPO), env=environ,
                                   encoding="utf-8", dimensions=(24, width), timeout=60)
        self.transcript: list[str] = []

    def wait(self, pattern: str = READY) -> str:
        """Everything written up to ``pattern`` (escape codes included)."""
        self.child.expect_exact(pattern)
        text = str(self.child.before)
        self.transcript.append(text + pattern)
        return text

    def ask(self, line: str) -> str:
        """Type a line and Enter; what was written until the next prompt, without escape codes."""
        self.child.send(line + "\r")
        return plain(self.wait())

    def answer(self, line: str) -> str:
        """The raw output of a line: what is written between the editor's leaving the line (bracketed paste
        off) and its next prompt (bracketed paste on)."""
        self.child.send(line + "\r")
        return self.wait().rsplit("\x1b[?2004l", 1)[-1].rsplit("\x1b[?2004h", 1)[0]

    def end(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus is not None, self.child.signalstatus
        return int(self.child.exitstatus)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# --- typing, editing, history ---------------------------------------------------------------------------------

def test_line_editing_keys_and_history(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    assert repl.wait().endswith(">>> \x1b[0;38;5;245m")  # the placeholder in Ollama's grey
    assert plain(repl.answer("say: one")).strip() == "one"
    repl.child.send("\x1b[A")  # Up: the last line back, sent again
    assert plain(repl.answer("")).strip() == "one"
    repl.ask("ay: start\x01s\x05ed")  # Ctrl+A, type, Ctrl+E, type: "say: started"
    repl.ask("garbage\x15say: after kill")  # Ctrl+U drops what is before the cursor
    repl.ask("say: keep drop\x17")  # Ctrl+W drops the word before the cursor
    repl.ask("say: abcXYZ\x1b[D\x1b[D\x1b[D\x0b")  # three Lefts, Ctrl+K: the rest of the line goes
    repl.ask("say: two words\x1bbfirst \x1bf!")  # Alt+B back a word, Alt+F forward a word
    repl.child.send("say: cl\x0c")  # Ctrl+L clears the screen, not the line
    repl.child.expect_exact("\x1b[2J")
    repl.ask("ear")
    repl.ask("say:\tx")  # Tab is eight spaces
    repl.ask("/save edited")
    repl.child.send("\x04")  # Ctrl+D on an empty line
    assert repl.end() == 0
    assert user_messages(fake, "edited") == [
        "say: one", "say: one", "say: started", "say: after kill", "say: keep ", "say: abc",
        "say: two first words!", "say: clear", "say:        x",
    ]
    # the history file Ollama keeps, one entry a line, commands included
    history = (home / ".ollama" / "history").read_text().splitlines()
    assert history[:3] == ["say: one", "say: one", "say: started"] and history[-1] == "/save edited"


def test_ctrl_g_composes_in_an_editor(fake: CorralServer, home: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "%s and more\\n" "$(cat "$1")" > "$1"\n')
    editor.chmod(0o755)
    repl = Repl(fake, "smollm2:135m", home=home, env={"OLLAMA_EDITOR": str(editor)})
    repl.wait()
    repl.child.send("say: typed\x07")  # the editor gets the line and gives it back as the next line's start
    repl.child.expect_exact(">>> say: typed and more")
    assert plain(repl.answer("")).strip() == "typed and more"
    repl.child.send("/bye\r")
    assert repl.end() == 0


def test_history_is_read_at_start_and_nohistory_stops_writing(fake: CorralServer, home: Path) -> None:
    (home / ".ollama").mkdir(parents=True)
    (home / ".ollama" / "history").write_text("say: from the file\n\n")
    repl = Repl(fake, "smollm2:135m", home=home, env={"OLLAMA_NOHISTORY": "1"})
    repl.wait()
    repl.child.send("\x1b[A")
    assert plain(repl.answer("")).strip() == "from the file"
    repl.ask("/set history")  # Ollama says nothing here
    repl.ask("say: kept")
    repl.ask("/set nohistory")
    repl.ask("say: not kept")
    repl.child.send("/bye\r")
    assert repl.end() == 0
    # OLLAMA_NOHISTORY: nothing written until the first line after /set history (then the lines kept in
    # memory meanwhile too, as Ollama saves); /set nohistory is the last line written
    assert (home / ".ollama" / "history").read_text().splitlines() == [
        "say: from the file", "say: from the file", "/set history", "say: kept", "/set nohistory"]


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_exits(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    repl.child.send("say: never sent")
    repl.child.send("\x03")
    assert "Use Ctrl + d or /bye to exit." in plain(repl.wait())
    repl.child.send('"""\r')  # Ctrl+C inside a block leaves the block too
    repl.wait("Press Enter to send")
    repl.child.send("say: in a block\x03")
    assert "Use Ctrl + d or /bye to exit." in plain(repl.wait())
    repl.ask("/save after-ctrl-c")
    repl.child.send("\x04")
    assert repl.end() == 0
    assert shown(fake, "after-ctrl-c").get("messages") is None  # nothing was sent


# --- multi-line input -------------------------------------------------------------------------------------------

def test_triple_quotes_and_a_pasted_block_are_one_message_each(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    repl.child.send('"""\r')
    repl.wait("Press Enter to send")  # the continuation prompt's placeholder
    repl.child.send("say: multi\r")
    repl.wait("Press Enter to send")
    assert plain(repl.answer('line"""')).strip() == "multi"
    # a bracketed paste of three lines, then Enter
    repl.child.send("\x1b[200~say: pasted\nsecond line\nthird line\x1b[201~")
    assert plain(repl.answer("")).strip() == "pasted"
    # a paste that ends with a newline waits for Enter on an empty line, as Ollama's does
    repl.child.send("\x1b[200~say: ends with a newline\n\x1b[201~")
    assert plain(repl.answer("")).strip() == "ends with a newline"
    # Ctrl+J, pressed on its own, starts a new line of the same message
    repl.child.send("say: first")
    repl.child.expect_exact("first")
    repl.child.send("\n")
    repl.child.expect_exact("...")  # the continuation prompt
    assert plain(repl.answer("second")).strip() == "first"
    repl.ask("/save multiline")
    repl.child.send("/bye\r")
    assert repl.end() == 0
    assert user_messages(fake, "multiline") == [
        "\nsay: multi\nline",  # as Ollama's: the line that opened the block adds its newline
        "say: pasted\nsecond line\nthird line", "say: ends with a newline\n", "say: first\nsecond"]


# --- slash commands ---------------------------------------------------------------------------------------------

def test_help_texts_and_unknown_commands(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    usage = repl.ask("/?")
    assert "  /load <model>   Load a session or model\n" in usage
    assert '  /? shortcuts    Help for keyboard shortcuts\n\nUse """ to begin a multi-line message.\n' in usage
    assert "  Ctrl + d            Exit corral (/bye)\n" in repl.ask("/? shortcuts")
    assert "  /set nothink           Disable thinking\n" in repl.ask("/help set")
    assert "  /show template     Show prompt template\n" in repl.ask("/? show")
    assert "  /set parameter num_predict <int>      Max number of tokens to predict\n" in repl.ask(
        "/set parameter")
    assert "Unknown command '/foo'. Type /? for help" in repl.ask("/foo bar")
    assert "Unknown command '/set bogus'. Type /? for help" in repl.ask("/set bogus")
    assert "Unknown command '/show bogus'. Type /? for help" in repl.ask("/show bogus")
    assert "Invalid or missing format. For 'json' mode use '/set format json'" in repl.ask("/set format xml")
    assert "Usage:\n  /load <modelname>" in repl.ask("/load")
    assert "Usage:\n  /save <modelname>" in repl.ask("/save")
    assert "NAME" in repl.ask("/list") and "smollm2:135m" in repl.transcript[-1]
    repl.ask("/save after-commands")
    repl.child.send("/exit\r")
    assert repl.end() == 0
    assert shown(fake, "after-commands").get("messages") is None  # no command went to the model


def test_set_parameter_system_and_clear_reach_the_server(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    assert "Set parameter 'num_predict' to '3'" in repl.ask("/set parameter num_predict 3")
    assert plain(repl.answer("say: abcdefgh")).strip() == "abc"  # three tokens of one byte each
    assert "Set parameter 'num_predict' to '100'" in repl.ask("/set parameter num_predict 100")
    assert "Set parameter 'stop' to 'x, y'" in repl.ask("/set parameter stop x y")
    assert plain(repl.answer("say: aaybbxcc")).strip() == "aa"  # the second stop word ends it too
    assert "Couldn't set parameter: \"invalid int value [many]\"" in repl.ask("/set parameter num_ctx many")
    assert "Couldn't set parameter: \"unknown parameter 'bogus'\"" in repl.ask("/set parameter bogus 1")
    parameters = repl.ask("/show parameters")
    assert "User defined parameters:\n" in parameters and re.search(r"  stop {27}\[x y\]\n", parameters)
    # the system message reaches the prompt the server renders: the model says what it asks
    assert "Set system message." in repl.ask("/set system say: from the system")
    assert plain(repl.answer("hello")).strip() == "from the s"  # "y" is a stop word
    assert "say: from the system\n" in repl.ask("/show system")
    # /clear forgets the conversation but keeps the system message
    repl.ask("/set system no directive")
    repl.ask("/set parameter stop zzz")
    assert plain(repl.answer("say: remembered")).strip() == "remembered"
    assert plain(repl.answer("anything")).strip() == "remembered"  # the last say: is in the context
    assert "Cleared session context" in repl.ask("/clear")
    assert plain(repl.answer("anything")).strip() == "ok"
    repl.ask("/save cleared")
    repl.child.send("/bye\r")
    assert repl.end() == 0
    saved = shown(fake, "cleared")
    assert saved["system"] == "no directive"
    assert [(m["role"], m["content"]) for m in saved["messages"]] == [
        ("system", "no directive"), ("user", "anything"), ("assistant", "ok")]
    assert 'stop                           "zzz"' in saved["parameters"]
    assert "num_predict                    100" in saved["parameters"]


def test_multiline_system_message(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    repl.child.send('/set system """say: first line\r')
    repl.wait("Press Enter to send")
    assert "Set system message." in repl.ask('second line"""')
    assert "say: first line\nsecond line\n" in repl.ask("/show system")
    assert plain(repl.answer("hello")).strip() == "first line"
    repl.child.send("/bye\r")
    assert repl.end() == 0


def test_show_subcommands_answer_from_the_server(fake: CorralServer, home: Path) -> None:
    info = shown(fake, "smollm2:135m")
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    assert "No system message was specified for this model." in repl.ask("/show system")
    assert info["template"].splitlines()[0] in repl.ask("/show template")
    assert info["license"].splitlines()[0] in repl.ask("/show license")
    assert "FROM " in repl.ask("/show modelfile")
    model_defined = repl.ask("/show parameters")
    assert "Model defined parameters:\n" in model_defined and "User defined parameters" not in model_defined
    shown_info = repl.ask("/show info")
    assert "  Model\n" in shown_info and "architecture" in shown_info and "134.52M" in shown_info
    repl.child.send("/bye\r")
    assert repl.end() == 0


def test_save_and_load(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    repl.ask("/set system say: sys")
    repl.ask("/set parameter temperature 0.7")
    repl.answer("say: hello")
    assert "Created new model 'saved-session'" in repl.ask("/save saved-session")
    assert "error: The model name 'b@d' is invalid" in repl.ask("/save b@d")
    # /load: a missing model leaves the session as it was; a present one switches
    loading = repl.ask("/load nosuch")
    assert "Loading model 'nosuch'" in loading and "Couldn't find model 'nosuch'" in loading
    assert plain(repl.answer("anything")).strip() == "hello"  # still the same conversation
    assert "Loading model 'gemma3:270m'" in repl.ask("/load gemma3:270m")
    assert any(m["name"] == "gemma3:270m" for m in httpx.get(fake.url + "/api/ps").json()["models"])
    assert plain(repl.answer("anything")).strip() == "ok"  # a fresh conversation, no system message
    repl.ask("/save loaded-session")
    repl.child.send("/bye\r")
    assert repl.end() == 0
    saved = shown(fake, "saved-session")
    assert saved["system"] == "say: sys"
    assert [(m["role"], m["content"]) for m in saved["messages"]] == [
        ("system", "say: sys"), ("user", "say: hello"), ("assistant", "hello")]
    assert "temperature                    0.7" in saved["parameters"]
    loaded = shown(fake, "loaded-session")
    assert loaded["details"]["family"] == shown(fake, "gemma3:270m")["details"]["family"]
    assert [(m["role"], m["content"]) for m in loaded["messages"]] == [("user", "anything"),
                                                                       ("assistant", "ok")]


def test_a_model_with_messages_replays_them(fake: CorralServer, home: Path) -> None:
    create(fake, {"model": "with-history", "from": "smollm2:135m",
                  "messages": [{"role": "user", "content": "say: remembered"},
                               {"role": "assistant", "content": "I remember."}]})
    repl = Repl(fake, "with-history", home=home)
    startup = plain(repl.wait())
    assert ">>> say: remembered\nI remember.\n\n>>> " in startup
    assert plain(repl.answer("anything")).strip() == "remembered"  # the server put them in the prompt
    repl.ask("/save with-history-2")
    repl.child.send("/bye\r")
    assert repl.end() == 0
    # /save keeps the loaded messages before the session's
    assert user_messages(fake, "with-history-2") == ["say: remembered", "anything"]


# --- output: thinking, word wrap, stats -------------------------------------------------------------------------

def test_thinking_is_dimmed_hidden_or_off(fake: CorralServer, home: Path) -> None:
    ask = "say: THINK:pondering:KNIHTthe answer"
    repl = Repl(fake, "thinker", home=home)
    repl.wait()
    out = repl.answer(ask)
    assert "\x1b[38;5;245m\x1b[1mThinking...\r\n\x1b[0m\x1b[38;5;245mpondering" in out
    assert "\x1b[38;5;245m\x1b[1m...done thinking.\r\n\r\n\x1b[0mthe answer\r\n\r\n" in out
    assert "Set 'nothink' mode." in repl.ask("/set nothink")
    assert plain(repl.answer(ask)).strip() == "THINK:pondering:KNIHTthe answer"  # not split: thinking off
    assert "Set 'think' mode to 'high'." in repl.ask("/set think high")
    assert "...done thinking." in plain(repl.answer(ask))
    repl.child.send("/bye\r")
    assert repl.end() == 0

    repl = Repl(fake, "thinker", "--hidethinking", home=home)
    repl.wait()
    assert plain(repl.answer(ask)).strip() == "the answer"
    repl.child.send("/bye\r")
    assert repl.end() == 0


def test_think_on_a_model_without_thinking(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", home=home)
    repl.wait()
    said = repl.ask("/set think")
    assert 'warning: model "smollm2:135m" does not support thinking output' in said and "Set 'think' mode." in said
    # the Go client's words for an error status, and the REPL goes on
    assert 'error: 400 Bad Request: "smollm2:135m" does not support thinking' in repl.ask("say: hi")
    repl.ask("/set nothink")
    assert plain(repl.answer("say: fine")).strip() == "fine"
    repl.child.send("/bye\r")
    assert repl.end() == 0


def screen(text: str, width: int) -> list[str]:
    """What a terminal shows for ``text``: cursor-left, clear-to-end-of-line, newlines, wrap at the edge."""
    lines: list[list[str]] = [[]]
    col, i = 0, 0
    while i < len(text):
        m = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", text[i:])
        if m:
            n, code = int(m.group(1)) if m.group(1).isdigit() else 0, m.group(2)
            if code == "D":
                col -= n or 1
            elif code == "G":
                col = max(n - 1, 0)
            elif code == "K":
                del lines[-1][0 if n == 2 else col:]
            i += len(m.group(0))
            continue
        ch, i = text[i], i + 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append([])
            col = 0
        else:
            if col >= width:
                lines.append([])
                col = 0
            line = lines[-1]
            line[col:col + 1] = [ch]
            col += 1
    return ["".join(line) for line in lines]


def test_word_wrap_at_the_terminal_width(fake: CorralServer, home: Path) -> None:
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
             "labore et dolore magna aliqua")
    repl = Repl(fake, "smollm2:135m", home=home, width=40)
    repl.wait()
    shown_lines = [line for line in screen(repl.answer("say: " + words), 40) if line.strip()]
    assert " ".join(line.strip() for line in shown_lines) == words  # no word cut at the edge
    assert all(len(line) <= 35 for line in shown_lines) and len(shown_lines) >= 4
    assert "Set 'nowordwrap' mode." in repl.ask("/set nowordwrap")
    cut = [line for line in screen(repl.answer("say: " + words), 40) if line.strip()]
    assert len(cut[0]) == 40  # the terminal breaks the line, mid-word
    assert "Set 'wordwrap' mode." in repl.ask("/set wordwrap")
    repl.child.send("/bye\r")
    assert repl.end() == 0

    repl = Repl(fake, "smollm2:135m", "--nowordwrap", home=home, width=40)
    repl.wait()
    assert "\x1b[K" not in repl.answer("say: " + words)
    repl.child.send("/bye\r")
    assert repl.end() == 0


def test_verbose_and_quiet(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "smollm2:135m", "--verbose", home=home)
    repl.wait()
    out = plain(repl.answer("say: abc"))
    assert "abc\n\ntotal duration:       " in out and "eval count:           3 token(s)\n" in out
    assert "Set 'quiet' mode." in repl.ask("/set quiet")
    assert "total duration" not in plain(repl.answer("say: abc"))
    assert "Set 'verbose' mode." in repl.ask("/set verbose")
    assert "eval rate:" in plain(repl.answer("say: abc"))
    repl.child.send("/bye\r")
    assert repl.end() == 0


# --- Ctrl+C during an answer, a server that goes away -------------------------------------------------------------

def test_ctrl_c_during_a_reply_keeps_the_question(fake: CorralServer, home: Path) -> None:
    repl = Repl(fake, "gemma3:270m", home=home)
    try:
        repl.wait()
        repl.child.send("stall: half an answer\r")
        repl.child.expect_exact("\x1b[?2004l")  # the editor is done with the line: what follows is the answer
        repl.child.expect_exact("half an answer")
        repl.child.send("\x03")
        repl.wait()
        repl.ask("/save interrupted")
        repl.child.send("/bye\r")
        assert repl.end() == 0
    finally:
        unstick(fake)
    saved = shown(fake, "interrupted")
    assert [(m["role"], m["content"]) for m in saved["messages"]] == [("user", "stall: half an answer")]


def test_ctrl_c_during_a_one_shot_answer_exits_0(fake: CorralServer, home: Path) -> None:
    run = Repl(fake, "gemma3:270m", "stall: cut short", home=home)
    try:
        run.child.expect_exact("cut short")
        run.child.send("\x03")
        assert run.end() == 0
    finally:
        unstick(fake)


def test_a_server_that_goes_away_is_named_as_corral(tmp_path: Path, home: Path) -> None:
    store = make_temp_store(tmp_path / "store", names=["smollm2:135m"])
    srv = CorralServer(models=store.root, env={"CORRAL_FAKE_RUNNER": "1"}).start()
    try:
        repl = Repl(srv, "smollm2:135m", home=home)
        repl.wait()
    finally:
        srv.stop()
    repl.child.send("say: anyone there?\r")
    assert repl.end() == 1
    said = plain("".join(repl.transcript) + str(repl.child.before))
    assert "Error: could not connect to corral server, run 'corral serve' to start it" in said
    assert "ollama.com" not in said and "Traceback" not in said


# --- the real engine ------------------------------------------------------------------------------------------

def _eval_count(out: str) -> int:
    found = re.search(r"^eval count: +(\d+) token\(s\)$", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def test_num_predict_and_json_format_with_the_real_model(server: CorralServer, home: Path) -> None:
    question = "Count from one to one hundred, in words."
    repl = Repl(server, "llama3.2", home=home)  # num_predict 48 in its Modelfile
    repl.wait()
    repl.ask("/set verbose")
    repl.ask("/set parameter temperature 0")  # greedy: the same first tokens every time
    free = _eval_count(plain(repl.answer(question)))
    repl.ask("/clear")
    assert "Set parameter 'num_predict' to '5'" in repl.ask("/set parameter num_predict 5")
    # whatever the model says, the limit cuts the same answer at 5 tokens (or it was shorter anyway)
    assert _eval_count(plain(repl.answer(question))) == min(5, free)
    assert "Set format to 'json' mode." in repl.ask("/set format json")
    repl.ask("/set quiet")
    assert plain(repl.answer("Describe a cat as a JSON object.")).lstrip().startswith("{")  # the JSON grammar
    assert "Disabled format." in repl.ask("/set noformat")
    repl.child.send("/bye\r")
    assert repl.end() == 0
