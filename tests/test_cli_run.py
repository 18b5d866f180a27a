"""``corral run``'s output and its one-shot edge cases: the pieces as pure functions (stats, durations, word
wrap, thinking, formats, image paths, history file), then the command against a fake-engine server of this
module's own (and the real engine for the ``--verbose`` block), as Ollama's CLI behaves."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.cli import display, images, stats
from corral.cli.lineeditor import OllamaHistory
from corral.cli.repl import Repl, env_bool, format_parameters, go_v
from corral.cli.run import FormatError, RunOptions, keep_alive_value, request_format
from corral.store.testing import make_temp_store
from tests.servers import REPO, CorralServer, free_port, wait_until
from tests.test_repl import THINK_TEMPLATE, screen

# --- the --verbose block ----------------------------------------------------------------------------------------

GOLDEN_STATS = """\
total duration:       1.930383291s
load duration:        63.125µs
prompt eval count:    26 token(s)
prompt eval duration: 130ms
prompt eval rate:     200.00 tokens/s
eval count:           259 token(s)
eval duration:        4.23271s
eval rate:            61.19 tokens/s
"""


def test_stats_golden() -> None:
    final = {"total_duration": 1_930_383_291, "load_duration": 63_125, "prompt_eval_count": 26,
             "prompt_eval_duration": 130_000_000, "eval_count": 259, "eval_duration": 4_232_710_000}
    assert stats.summary(final) == GOLDEN_STATS


def test_stats_leave_out_zero_values() -> None:
    assert stats.summary({}) == ""
    # a cached prompt: a count but no duration, so no duration and no rate
    assert stats.summary({"total_duration": 5_000_000, "prompt_eval_count": 3, "eval_count": 2,
                          "eval_duration": 1_000_000}) == (
        "total duration:       5ms\n"
        "prompt eval count:    3 token(s)\n"
        "eval count:           2 token(s)\n"
        "eval duration:        1ms\n"
        "eval rate:            2000.00 tokens/s\n")
    # Ollama prints a rate for a duration with no count
    assert stats.summary({"eval_duration": 2_000}) == "eval duration:        2µs\neval rate:            0.00 tokens/s\n"


@pytest.mark.parametrize(("ns", "text"), [
    # Go's own cases (time/time_test.go durationTests) and the unit boundaries
    (0, "0s"), (1, "1ns"), (999, "999ns"), (1_000, "1µs"), (1_100, "1.1µs"), (63_125, "63.125µs"),
    (999_999, "999.999µs"), (1_000_000, "1ms"), (2_200_000, "2.2ms"), (999_999_999, "999.999999ms"),
    (1_000_000_000, "1s"), (3_300_000_000, "3.3s"), (59_999_999_999, "59.999999999s"), (60_000_000_000, "1m0s"),
    (245_000_000_000, "4m5s"), (245_001_000_000, "4m5.001s"), (18_367_001_000_000, "5h6m7.001s"),
    (480_000_000_001, "8m0.000000001s"), (3_600_000_000_000, "1h0m0s"), (-1_100, "-1.1µs"),
    ((1 << 63) - 1, "2562047h47m16.854775807s"), (-(1 << 63), "-2562047h47m16.854775808s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert stats.go_duration(ns) == text


# --- request values ---------------------------------------------------------------------------------------------

def test_format_values_as_ollama_sends_them() -> None:
    assert request_format("") is None
    assert request_format("json") == "json"
    assert request_format('{"type": "object"}') == {"type": "object"}  # a schema goes as it is
    prefix = "json: error calling MarshalJSON for type json.RawMessage: "
    for text, error in [("xml", "invalid character 'x' looking for beginning of value"),
                        ('{"a":', "unexpected end of JSON input"),
                        ("{} x", "invalid character 'x' after top-level value"),
                        ("'json'", "invalid character '\\'' looking for beginning of value")]:
        with pytest.raises(FormatError) as caught:
            request_format(text)
        assert str(caught.value) == prefix + error


def test_keepalive_as_go_parses_it() -> None:
    assert keep_alive_value(None) is None
    assert keep_alive_value("5m") == "5m0s"
    assert keep_alive_value("1h30m") == "1h30m0s"
    assert keep_alive_value("0") == "0s"
    assert keep_alive_value("-1m") == -1
    with pytest.raises(ValueError, match='time: invalid duration "soon"'):
        keep_alive_value("soon")
    with pytest.raises(ValueError, match='time: missing unit in duration "10"'):
        keep_alive_value("10")


@pytest.mark.parametrize(("key", "values", "value", "shown"), [
    ("num_predict", ["5"], 5, "5"), ("seed", ["-3"], -3, "-3"), ("temperature", ["0.7"], 0.7, "0.7"),
    ("temperature", ["1e6"], 1e6, "1000000"), ("top_p", ["1e21"], 1e21, "1e+21"), ("use_mmap", ["t"], True, "true"),
    ("stop", ["a", "<|end|>"], ["a", "<|end|>"], "[a <|end|>]"),
])
def test_set_parameter_values(key: str, values: list[str], value: Any, shown: str) -> None:
    assert format_parameters(key, values) == value
    assert go_v(value) == shown


@pytest.mark.parametrize(("key", "values", "error"), [
    ("bogus", ["1"], "unknown parameter 'bogus'"), ("num_ctx", ["0x10"], "invalid int value [0x10]"),
    ("top_k", ["1.5"], "invalid int value [1.5]"), ("temperature", ["warm"], "invalid float value [warm]"),
    ("temperature", ["1e40"], "invalid float value [1e40]"), ("use_mmap", ["yes", "no"], "invalid bool value [yes no]"),
])
def test_set_parameter_errors(key: str, values: list[str], error: str) -> None:
    with pytest.raises(ValueError) as caught:
        format_parameters(key, values)
    assert str(caught.value) == error


# --- word wrap and the answer's display ----------------------------------------------------------------------------

def _wrapped(text: str, width: int, step: int = 3) -> list[str]:
    state = display.WordWrap()
    out = "".join(state.render(text[i:i + step], True, width) for i in range(0, len(text), step))
    return screen(out, width)


def test_word_wrap_moves_whole_words() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 4
    lines = _wrapped(text, 40)
    assert " ".join(line.strip() for line in lines).split() == text.split()
    assert all(len(line) <= 35 for line in lines)


def test_a_word_longer_than_the_line_breaks_once_at_the_margin() -> None:
    url = "https://example.com/" + "x" * 60
    lines = _wrapped(f"see {url} end", 40)
    assert "".join(lines) == f"see {url} end"  # Ollama would write the long word a second time
    assert all(len(line) <= 35 for line in lines)


def test_wide_characters_take_two_columns() -> None:
    lines = _wrapped("漢字" * 30, 40)
    # a wide character may end one column further than a narrow one would (Ollama's check is before it)
    assert all(len(line) * 2 <= 36 for line in lines) and "".join(lines) == "漢字" * 30


def test_no_wrap_passes_text_through() -> None:
    state = display.WordWrap()
    assert state.render("a " * 100, False, 40) == "a " * 100
    assert state.render("abc", True, 9) == "abc"  # a terminal narrower than 10 columns is not wrapped


def _view(**kwargs: Any) -> tuple[display.ResponseView, io.StringIO]:
    out = io.StringIO()
    return display.ResponseView(wrap=False, out=out, **kwargs), out


def test_thinking_plain_dimmed_and_hidden() -> None:
    parts = [("ponder", "", None), ("ing", "", None), ("", "the answer", None)]
    view, out = _view(hide_thinking=False, plain=True, chat=False)
    for part in parts:
        view.feed(*part)
    assert out.getvalue() == "Thinking...\npondering\n...done thinking.\n\nthe answer"
    assert (view.thinking, view.content) == ("pondering", "the answer")
    view, out = _view(hide_thinking=False, plain=False, chat=True)
    for part in parts:
        view.feed(*part)
    grey, bold, reset = "\x1b[38;5;245m", "\x1b[1m", "\x1b[0m"
    assert out.getvalue() == (f"{grey}{bold}Thinking...\n{reset}{grey}pondering\n{grey}{bold}...done thinking.\n\n"
                              f"{reset}the answer")
    view, out = _view(hide_thinking=True, plain=True, chat=False)
    for part in parts:
        view.feed(*part)
    assert out.getvalue() == "the answer"


def test_tool_calls_the_cli_cannot_run_are_noted() -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    view, out = _view(hide_thinking=False, plain=True, chat=False)
    view.feed("", "", calls)
    assert out.getvalue() == ("  Model called a non-existent function 'get_weather()' with arguments: "
                              '{"city":"Paris"}')


def test_spinner_draws_on_a_terminal_and_erases_itself() -> None:
    leader, follower = os.openpty()
    stream = open(follower, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        spinner = display.Spinner(stream)
        seen = b""

        def drawn() -> bool:
            nonlocal seen
            seen += os.read(leader, 1024)
            return "⠋".encode() in seen

        wait_until(drawn, timeout=10, what="a spinner frame")
        spinner.stop()
        spinner.stop()
        seen += os.read(leader, 1024)
        assert seen.endswith(b"\x1b[?25l\x1b[2K\x1b[1G\x1b[?25h")
    finally:
        stream.close()
        os.close(leader)
    quiet = io.StringIO()  # not a terminal: nothing at all
    display.Spinner(quiet).stop()
    assert quiet.getvalue() == ""


# --- image paths -------------------------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(600)
WAV = b"RIFF\x58\x02\x00\x00WAVEfmt " + bytes(600)


def test_file_names_found_as_ollama_finds_them() -> None:
    text = (" some preamble \n ./relative\\ path/one.png inbetween1 ./not a valid two.jpg inbetween2 ./1.svg\n"
            "/unescaped space /three.jpeg inbetween3 /valid\\ path/dir/four.png \"./quoted with spaces/five.JPG\n"
            "/unescaped space /six.webp inbetween6 /valid\\ path/dir/seven.WEBP")
    found = images.extract_file_names(text)
    assert len(found) == 7
    for name, expected in zip(found, ["one.png", "two.jpg", "three.jpeg", "four.png", "five.JPG", "six.webp",
                                      "seven.WEBP"], strict=True):
        assert expected in name
    assert '"' not in found[4]
    assert images.normalize_file_path("/a\\ b/c\\(1\\).png") == "/a b/c(1).png"


def test_file_data_attached_and_taken_out_of_the_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpg, wav, txt = tmp_path / "img.jpg", tmp_path / "sample.wav", tmp_path / "notes.png"
    jpg.write_bytes(JPEG)
    wav.write_bytes(WAV)
    text, data = images.extract_file_data(f"before '{jpg}' after {wav} and /no/such/file.png")
    assert text == "before  after  and /no/such/file.png" and data == [JPEG, WAV]
    assert capsys.readouterr().err == f"Added image '{jpg}'\nAdded audio '{wav}'\n"
    txt.write_text("not an image at all")
    with pytest.raises(images.FileError, match="invalid file type: text/plain; charset=utf-8"):
        images.extract_file_data(f"look {txt}")
    assert 'Couldn\'t process file: "invalid file type: text/plain; charset=utf-8"' in capsys.readouterr().err


class StubClient:
    """The two transport methods run.py and repl.py use, answering every chat with ``ok``."""

    def __init__(self, info: dict[str, Any] | None = None) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.info = info or {"capabilities": ["completion"]}

    def _request(self, cls: Any, method: str, url: str, *, stream: bool = False, json: Any = None) -> Iterator[Any]:
        self.requests.append((url, json))
        return iter([{"message": {"role": "assistant", "content": "ok"}, "done": True}])

    def _request_raw(self, method: str, url: str, json: Any = None) -> httpx.Response:
        self.requests.append((url, json))
        return httpx.Response(200, json=self.info if url == "/api/show" else {})


class ScriptedEditor:
    def __init__(self, lines: list[str]) -> None:
        self.lines, self.alt, self.prefill, self.history_enabled = list(lines), False, "", True

    def read(self) -> str:
        if not self.lines:
            raise EOFError
        return self.lines.pop(0)


def test_repl_attaches_images_for_a_model_that_sees(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpg = tmp_path / "cat.jpg"
    jpg.write_bytes(JPEG)
    client = StubClient()
    repl = Repl(client, RunOptions(model="m", multimodal=True),  # type: ignore[arg-type]
                editor=ScriptedEditor([f"what is in {jpg}?", f"{jpg} and this"]))
    assert repl.run() == 0
    chats = [body for url, body in client.requests if url == "/api/chat"]
    first = chats[0]["messages"][0]
    assert first["content"] == "what is in ?" and len(first["images"]) == 1
    assert chats[1]["messages"][-1]["content"] == "and this"  # a path at the start is not a command here
    assert capsys.readouterr().err.count(f"Added image '{jpg}'") == 2


def test_repl_leaves_paths_alone_for_a_text_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jpg = tmp_path / "cat.jpg"
    jpg.write_bytes(JPEG)
    client = StubClient()
    repl = Repl(client, RunOptions(model="m"), editor=ScriptedEditor([f"what is in {jpg}?", f"{jpg} please"]))  # type: ignore[arg-type]
    assert repl.run() == 0
    chats = [body for url, body in client.requests if url == "/api/chat"]
    assert len(chats) == 1 and chats[0]["messages"][0] == {"role": "user", "content": f"what is in {jpg}?"}
    assert f"Unknown command '{jpg}'. Type /? for help" in capsys.readouterr().out


def test_repl_commands_after_a_paste_send_what_it_left() -> None:
    client = StubClient()
    repl = Repl(client, RunOptions(model="m"), editor=ScriptedEditor([]))  # type: ignore[arg-type]
    assert repl.handle("pasted text", pasting=True)
    assert repl.handle("/set verbose")  # falls through to the send, as Ollama's loop does
    assert [body["messages"][-1]["content"] for url, body in client.requests if url == "/api/chat"] == [
        "pasted text\n"]
    assert repl.handle("more", pasting=True)
    assert repl.handle("/clear")  # goes straight back to the prompt: the buffer waits
    assert repl.handle("")
    assert client.requests[-1][1]["messages"] == [{"role": "user", "content": "more\n"}]
    assert not repl.handle("/bye")


# --- the history file ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "off"), [("", False), ("1", True), ("true", True), ("0", False),
                                            ("false", False), ("'yes'", True), (' "0" ', False)])
def test_nohistory_is_read_as_ollama_reads_booleans(monkeypatch: pytest.MonkeyPatch, value: str, off: bool) -> None:
    monkeypatch.setenv("OLLAMA_NOHISTORY", value)
    assert env_bool("OLLAMA_NOHISTORY") is off


def test_history_file_keeps_the_last_100_entries(tmp_path: Path) -> None:
    path = tmp_path / ".ollama" / "history"
    path.parent.mkdir()
    path.write_text("".join(f"line {i}\n\n  \n" for i in range(120)))
    history = OllamaHistory(path)
    assert history.entries == [f"line {i}" for i in range(20, 120)]
    history.append_string("multi\nline")
    assert path.read_text().splitlines()[-3:] == ["line 119", "multi", "line"]
    assert len(OllamaHistory(path).entries) == 100
    history.enabled = False
    history.append_string("not saved")
    assert "not saved" not in path.read_text() and history.entries[-1] == "not saved"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- the command --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    store = make_temp_store(tmp_path_factory.mktemp("run-store"))
    srv = CorralServer(models=store.root, env={"CORRAL_FAKE_RUNNER": "1",
                                               "CORRAL_REGISTRY": f"http://127.0.0.1:{free_port()}"}).start()
    done = httpx.post(srv.url + "/api/create", timeout=60, json={
        "model": "thinker", "from": "smollm2:135m", "template": THINK_TEMPLATE, "stream": False})
    assert done.status_code == 200, done.text
    yield srv
    srv.stop()


def corral(srv: CorralServer, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": srv.host, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "corral", "run", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120, stdin=stdin)


def test_one_answer_ends_with_a_blank_line(fake: CorralServer) -> None:
    done = corral(fake, "smollm2:135m", "say: hello there")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello there\n\n", "")


def test_piped_input_comes_before_the_prompt(fake: CorralServer) -> None:
    done = subprocess.run([sys.executable, "-m", "corral", "run", "smollm2:135m", "please"],
                          input="say: from the pipe\n", capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "OLLAMA_HOST": fake.host, "NO_PROXY": "127.0.0.1,localhost"})
    assert (done.returncode, done.stdout) == (0, "from the pipe\n\n")  # the prompt: "say: from the pipe\n please"


def test_a_missing_model_with_empty_input_is_pulled_and_fails(fake: CorralServer) -> None:
    done = corral(fake, "nosuchmodel")  # stdin is /dev/null
    assert done.returncode == 1 and done.stdout == ""
    assert "Error: " in done.stderr and "Traceback" not in done.stderr


def test_empty_input_only_loads_the_model(fake: CorralServer) -> None:
    httpx.post(fake.url + "/api/generate", json={"model": "gemma3:270m", "keep_alive": 0}, timeout=30)
    done = corral(fake, "gemma3:270m")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert any(m["name"] == "gemma3:270m" for m in httpx.get(fake.url + "/api/ps").json()["models"])


def test_output_to_a_file_from_a_terminal_opens_no_repl(fake: CorralServer) -> None:
    leader, follower = os.openpty()  # stdin is a terminal, stdout a pipe: Ollama answers once, or only loads
    try:
        for args, expected in ((["smollm2:135m"], ""), (["smollm2:135m", "say: to a file"], "to a file\n\n")):
            done = corral(fake, *args, stdin=follower)
            assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")
    finally:
        os.close(leader)
        os.close(follower)


def test_format_schema_is_sent_and_bad_formats_are_go_errors(fake: CorralServer) -> None:
    done = corral(fake, "smollm2:135m", "--format", '{"type": "object"}', 'say: {"a": 1}')
    assert (done.returncode, done.stdout) == (0, '{"a": 1}\n\n'), done.stderr
    refused = corral(fake, "smollm2:135m", "--format", "xml", "say: hi")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == ("Error: json: error calling MarshalJSON for type json.RawMessage: invalid character "
                              "'x' looking for beginning of value\n")
    bad_keepalive = corral(fake, "smollm2:135m", "--keepalive", "soon", "say: hi")
    assert (bad_keepalive.returncode, bad_keepalive.stderr) == (1, 'Error: time: invalid duration "soon"\n')


def test_think_flags(fake: CorralServer) -> None:
    ask = "say: THINK:pondering:KNIHTthe answer"
    shown = corral(fake, "thinker", ask)  # a thinking model thinks by default
    assert shown.stdout == "Thinking...\npondering\n...done thinking.\n\nthe answer\n\n"
    assert corral(fake, "thinker", "--hidethinking", ask).stdout == "the answer\n\n"
    assert corral(fake, "thinker", "--think=false", ask).stdout == "THINK:pondering:KNIHTthe answer\n\n"
    assert corral(fake, "thinker", "--think=high", ask).stdout == shown.stdout
    refused = corral(fake, "smollm2:135m", "--think", "say: hi")
    assert (refused.returncode, refused.stderr) == (
        1, 'Error: 400 Bad Request: "smollm2:135m" does not support thinking\n')  # the Go client's words


_DURATION = r"(\d+(\.\d+)?(ns|µs|ms|s)|(\d+h)?\d+m\d+(\.\d+)?s)"
_STAT = re.compile(rf"^(total duration: {{7}}|load duration: {{8}}|prompt eval duration: |eval duration: {{8}})"
                   rf"{_DURATION}$|^(prompt eval count: {{4}}|eval count: {{11}})[1-9]\d* token\(s\)$"
                   r"|^(prompt eval rate: {5}|eval rate: {12})\d+\.\d\d tokens/s$")


def test_verbose_stats_from_the_real_engine(server: CorralServer) -> None:
    env = {**os.environ, "OLLAMA_HOST": server.host, "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([sys.executable, "-m", "corral", "run", "llama3.2", "--verbose", "Say hello."], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("total duration:") and lines[-1].startswith("eval rate:")
    for line in lines:
        assert _STAT.match(line), line  # Go durations, and no line with a zero value
    assert done.stdout.endswith("\n\n")
