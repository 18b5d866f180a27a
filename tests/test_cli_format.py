"""The CLI's text as Ollama writes it: sizes and relative times (Ollama's ``format`` tests and boundaries),
the ``list``/``ps`` tables with fixed clocks, cobra's parsing, help and errors, ``-v``, ``list``/``ps``
prefixes, ``stop`` of an unloaded model, and ``serve`` on a taken port."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.cli import main as cli
from corral.cli.humanize import human_bytes, human_bytes2, human_duration, human_time, human_time_lower
from corral.cli.models import list_table, processor, ps_table
from corral.version import OLLAMA_VERSION
from tests.servers import CorralServer, free_port, wait_until
from tests.test_cli import corral

NOW = dt.datetime(2026, 1, 15, 12, 0, 0, tzinfo=dt.timezone.utc)
SECOND = 10**9
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


# --- sizes: Ollama's format/bytes_test.go, and the cases the issue names ---------------------------------------


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1, "1 B"), (999, "999 B"),
    (1000, "1 KB"), (1500, "1.5 KB"), (999999, "999 KB"),
    (1000000, "1 MB"), (1500000, "1.5 MB"), (999999999, "999 MB"),
    (1000000000, "1 GB"), (1500000000, "1.5 GB"), (999999999999, "999 GB"),
    (1000000000000, "1 TB"), (1500000000000, "1.5 TB"), (1999999999999, "2.0 TB"),
    (1234, "1.2 KB"), (1234567, "1.2 MB"), (1234567890, "1.2 GB"),
    # Ten units and more are truncated, not rounded; a whole number has no decimal.
    (98_600_000, "98 MB"), (98_999_999, "98 MB"), (9_960_000, "10.0 MB"), (2_019_393_189, "2.0 GB"),
])
def test_human_bytes_as_ollama(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1, "1 B"), (1023, "1023 B"),
    (1024, "1.0 KiB"), (1536, "1.5 KiB"), (1048575, "1024.0 KiB"),
    (1048576, "1.0 MiB"), (1572864, "1.5 MiB"), (1073741823, "1024.0 MiB"),
    (1073741824, "1.0 GiB"), (1610612736, "1.5 GiB"), (2147483648, "2.0 GiB"),
])
def test_human_bytes2_as_ollama(size: int, text: str) -> None:
    assert human_bytes2(size) == text


# --- relative times: Ollama's format/time_test.go, then every boundary of humanDuration --------------------------


def test_human_time_as_ollamas_tests() -> None:
    assert human_time(None, "never", NOW) == "never"
    assert human_time(dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc), "never", NOW) == "never"  # Go's zero time
    assert human_time(NOW + dt.timedelta(hours=48), "", NOW) == "2 days from now"
    assert human_time(NOW - dt.timedelta(hours=48), "", NOW) == "2 days ago"
    assert human_time(NOW + dt.timedelta(milliseconds=800), "", NOW) == "Less than a second from now"
    assert human_time(NOW + dt.timedelta(days=365 * 200), "", NOW) == "Forever"
    assert human_time_lower(NOW + dt.timedelta(days=365 * 200), "", NOW) == "forever"


@pytest.mark.parametrize(("ns", "text"), [
    (0, "Less than a second"), (SECOND - 1, "Less than a second"),
    (SECOND, "1 second"), (2 * SECOND - 1, "1 second"), (2 * SECOND, "2 seconds"), (59 * SECOND, "59 seconds"),
    (MINUTE, "About a minute"), (2 * MINUTE - 1, "About a minute"), (2 * MINUTE, "2 minutes"),
    (HOUR - 1, "59 minutes"),
    # Hours are rounded: 60-89 minutes are about an hour, 90 minutes already 2 hours.
    (HOUR, "About an hour"), (89 * MINUTE, "About an hour"), (90 * MINUTE, "2 hours"),
    (24 * HOUR, "24 hours"), (47 * HOUR + 29 * MINUTE, "47 hours"),
    # From 48 (rounded) hours on, whole days of the rounded hours: 47.5 hours is "2 days".
    (47 * HOUR + 30 * MINUTE, "2 days"), (7 * DAY, "7 days"), (13 * DAY + 23 * HOUR, "13 days"),
    (13 * DAY + 23 * HOUR + 30 * MINUTE, "2 weeks"), (4 * 7 * DAY, "4 weeks"), (59 * DAY + 23 * HOUR, "8 weeks"),
    (60 * DAY, "2 months"), (729 * DAY, "24 months"),
    (730 * DAY, "2 years"), (3 * 365 * DAY + 364 * DAY, "3 years"),
])
def test_human_duration_boundaries(ns: int, text: str) -> None:
    assert human_duration(ns) == text


def test_human_time_ago_from_now_and_forever() -> None:
    assert human_time(NOW - dt.timedelta(seconds=70), "Never", NOW) == "About a minute ago"
    assert human_time(NOW - dt.timedelta(hours=30), "Never", NOW) == "30 hours ago"
    assert human_time(NOW - dt.timedelta(days=10), "Never", NOW) == "10 days ago"
    assert human_time(NOW - dt.timedelta(weeks=6), "Never", NOW) == "6 weeks ago"
    assert human_time(NOW, "Never", NOW) == "Less than a second ago"
    assert human_time(NOW + dt.timedelta(minutes=4, seconds=59), "Never", NOW) == "4 minutes from now"
    # "Forever" is more than 20 whole years ahead (Go's int(hours)/24/365 < -20).
    assert human_time(NOW + dt.timedelta(days=21 * 365), "", NOW) == "Forever"
    assert human_time(NOW + dt.timedelta(days=21 * 365) - dt.timedelta(hours=1), "", NOW) == "20 years from now"


@pytest.mark.parametrize(("size", "vram", "text"), [
    (100, 0, "100% CPU"), (100, 100, "100% GPU"), (100, 52, "48%/52% CPU/GPU"),
    (8, 3, "63%/37% CPU/GPU"),  # 62.5% rounds half away from zero, as Go's math.Round
    (10, 20, "Unknown"), (0, 5, "Unknown"),
])
def test_processor_column(size: int, vram: int, text: str) -> None:
    assert processor(size, vram) == text


# --- golden tables with a fixed clock -------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


LIST_MODELS: list[dict[str, Any]] = [
    {"name": "smollm2:135m", "digest": "327e6a440ee04a40abe5", "size": 98_600_000,
     "modified_at": _iso(NOW - dt.timedelta(seconds=70))},
    {"name": "gemma3:270m", "digest": "880a285d269f0b26d3e7", "size": 1_000_000_000,
     "modified_at": _iso(NOW - dt.timedelta(hours=30))},
    {"name": "llama3.2:latest", "digest": "a80c4f17acd55265feec", "size": 2_019_393_189,
     "modified_at": _iso(NOW - dt.timedelta(days=10))},
    {"name": "qwen3:0.6b", "digest": "7df6b6e09427a1b2c3d4", "size": 522_653_767,
     "modified_at": _iso(NOW - dt.timedelta(weeks=5))},
    {"name": "gpt-oss:120b-cloud", "digest": "569662207105c0ffee00", "size": 384, "remote_model": "gpt-oss:120b",
     "modified_at": _iso(NOW - dt.timedelta(days=95))},
    {"name": "old:latest", "digest": "0123456789abcdef", "size": 999, "modified_at": "0001-01-01T00:00:00Z"},
]

# tablewriter as Ollama sets it up: four spaces after every data cell (the last too), one after the header's last.
LIST_GOLDEN = (
    "NAME                  ID              SIZE      MODIFIED           \n"
    "smollm2:135m          327e6a440ee0    98 MB     About a minute ago    \n"
    "gemma3:270m           880a285d269f    1 GB      30 hours ago          \n"
    "llama3.2:latest       a80c4f17acd5    2.0 GB    10 days ago           \n"
    "qwen3:0.6b            7df6b6e09427    522 MB    5 weeks ago           \n"
    "gpt-oss:120b-cloud    569662207105    -         3 months ago          \n"
    "old:latest            0123456789ab    999 B     Never                 \n"
)

PS_MODELS: list[dict[str, Any]] = [
    {"name": "smollm2:135m", "digest": "327e6a440ee04a40abe5", "size": 350_020_672, "size_vram": 0,
     "context_length": 4096, "expires_at": _iso(NOW + dt.timedelta(minutes=4, seconds=30))},
    {"name": "llama3.2:latest", "digest": "a80c4f17acd55265feec", "size": 3_000_000_000, "size_vram": 3_000_000_000,
     "context_length": 8192, "expires_at": "2319-03-16T12:47:40.602423Z"},  # keep_alive < 0
    {"name": "gemma3:270m", "digest": "880a285d269f0b26d3e7", "size": 8, "size_vram": 3,
     "context_length": 32768, "expires_at": _iso(NOW - dt.timedelta(seconds=1))},
    {"name": "qwen3:0.6b", "digest": "7df6b6e09427a1b2c3d4", "size": 10, "size_vram": 20,
     "context_length": 40960, "expires_at": _iso(NOW + dt.timedelta(hours=1, minutes=29))},
]

PS_GOLDEN = (
    "NAME               ID              SIZE      PROCESSOR          CONTEXT    UNTIL                  \n"
    "smollm2:135m       327e6a440ee0    350 MB    100% CPU           4096       4 minutes from now        \n"
    "llama3.2:latest    a80c4f17acd5    3 GB      100% GPU           8192       Forever                   \n"
    "gemma3:270m        880a285d269f    8 B       63%/37% CPU/GPU    32768      Stopping...               \n"
    "qwen3:0.6b         7df6b6e09427    10 B      Unknown            40960      About an hour from now    \n"
)


def test_list_table_golden() -> None:
    assert list_table(LIST_MODELS, None, NOW) == LIST_GOLDEN


def test_list_prefix_ignores_case() -> None:
    lines = list_table(LIST_MODELS, "LLAMA", NOW).splitlines()
    assert [line.split()[0] for line in lines] == ["NAME", "llama3.2:latest"]
    assert list_table(LIST_MODELS, "nothing", NOW) == "NAME    ID    SIZE    MODIFIED \n"


def test_ps_table_golden() -> None:
    assert ps_table(PS_MODELS, None, NOW) == PS_GOLDEN


def test_ps_prefix_keeps_case() -> None:
    assert [line.split()[0] for line in ps_table(PS_MODELS, "gemma", NOW).splitlines()] == ["NAME", "gemma3:270m"]
    assert len(ps_table(PS_MODELS, "GEMMA", NOW).splitlines()) == 1  # Ollama's ps compares names exactly


# --- parsing: pflag's rules, the run flags the REPL reads --------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace every command's handler with one that records the namespace it gets."""
    seen: dict[str, Any] = {}

    def record(ns: Any) -> int:
        seen["ns"] = ns
        return 0

    for name in list(cli.HANDLERS):
        monkeypatch.setitem(cli.HANDLERS, name, record)
    return seen


@pytest.mark.parametrize(("argv", "think"), [
    ([], None), (["--think"], True), (["--think=true"], True), (["--think="], True), (["--think=false"], False),
    (["--think=high"], "high"), (["--think=medium"], "medium"), (["--think=low"], "low"), (["--think=max"], "max"),
])
def test_run_think_values(captured: dict[str, Any], argv: list[str], think: object) -> None:
    assert cli.main(["run", "m", *argv]) == 0
    assert captured["ns"].think == think


def test_run_think_takes_no_separate_value(captured: dict[str, Any]) -> None:
    # pflag's optional value must be joined with "=": `--think high` is thinking on and a prompt "high".
    assert cli.main(["run", "m", "--think", "high"]) == 0
    assert captured["ns"].think is True and captured["ns"].prompt == ["high"]


def test_run_flags_anywhere(captured: dict[str, Any]) -> None:
    assert cli.main(["run", "--verbose", "m", "Why", "--keepalive", "-1m", "is", "--hidethinking", "the",
                     "--nowordwrap", "--format", "json", "sky", "--", "--blue"]) == 0
    ns = captured["ns"]
    assert ns.model == "m" and ns.prompt == ["Why", "is", "the", "sky", "--blue"]
    assert ns.keepalive == "-1m" and ns.format == "json"
    assert ns.verbose and ns.hidethinking and ns.nowordwrap and not ns.insecure
    assert ns.think is None and ns.truncate is None and ns.dimensions == 0


def test_run_defaults_and_typed_flags(captured: dict[str, Any]) -> None:
    assert cli.main(["run", "m"]) == 0
    ns = captured["ns"]
    assert (ns.keepalive, ns.format, ns.verbose, ns.hidethinking, ns.nowordwrap) == (None, None, False, False, False)
    assert cli.main(["run", "m", "--truncate=false", "--dimensions", "0x10", "--insecure"]) == 0
    ns = captured["ns"]
    assert ns.truncate is False and ns.dimensions == 16 and ns.insecure
    assert cli.main(["run", "m", "--truncate"]) == 0
    assert captured["ns"].truncate is True


def test_other_commands_bind_their_arguments(captured: dict[str, Any]) -> None:
    assert cli.main(["show", "-v", "m", "--system"]) == 0
    assert captured["ns"].model == "m" and captured["ns"].verbose and captured["ns"].system
    assert cli.main(["cp", "a", "b"]) == 0
    assert (captured["ns"].source, captured["ns"].destination) == ("a", "b")
    assert cli.main(["rm", "a", "b"]) == 0 and captured["ns"].models == ["a", "b"]
    assert cli.main(["create", "m", "-fModelfile.x", "-q", "q4_K_M"]) == 0
    assert (captured["ns"].file, captured["ns"].quantize) == ("Modelfile.x", "q4_K_M")
    assert cli.main(["ls", "qwen", "ignored"]) == 0 and captured["ns"].prefix == "qwen"
    assert cli.main(["ps"]) == 0 and captured["ns"].prefix is None
    assert cli.main(["start"]) == 0 and captured["ns"].command == "serve"


@pytest.mark.parametrize(("argv", "error"), [
    (["run"], "requires at least 1 arg(s), only received 0"),
    (["rm"], "requires at least 1 arg(s), only received 0"),
    (["show"], "accepts 1 arg(s), received 0"),
    (["stop", "a", "b"], "accepts 1 arg(s), received 2"),
    (["create"], "accepts 1 arg(s), received 0"),
    (["pull"], "accepts 1 arg(s), received 0"),
    (["push", "a", "b"], "accepts 1 arg(s), received 2"),
    (["cp", "a"], "accepts 2 arg(s), received 1"),
    (["serve", "now"], "accepts 0 arg(s), received 1"),
    (["run", "m", "--think=loud"],
     'invalid value for --think: "loud" (must be true, false, high, medium, low, or max)'),
    (["run", "m", "--bogus"], "unknown flag: --bogus"),
    (["run", "m", "-x"], "unknown shorthand flag: 'x' in -x"),
    (["run", "m", "--format"], "flag needs an argument: --format"),
    (["run", "m", "--verbose=maybe"],
     'invalid argument "maybe" for "--verbose" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
    (["run", "m", "--dimensions", "x"],
     'invalid argument "x" for "--dimensions" flag: strconv.ParseInt: parsing "x": invalid syntax'),
    (["lsit"], 'unknown command "lsit" for "corral"\n\nDid you mean this?\n\tlist\n'),
])
def test_usage_errors_as_cobra_words_them(captured: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                          argv: list[str], error: str) -> None:
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"Error: {error}\n"
    assert "ns" not in captured


RUN_HELP = """Run a model

Usage:
  corral run MODEL [PROMPT] [flags]

Flags:
      --dimensions int          Truncate output embeddings to specified dimension (embedding models only)
      --format string           Response format (e.g. json)
  -h, --help                    help for run
      --hidethinking            Hide thinking output (if provided)
      --insecure                Use an insecure registry
      --keepalive string        Duration to keep a model loaded (e.g. 5m)
      --nowordwrap              Don't wrap words to the next line automatically
      --think string[="true"]   Enable thinking mode: true/false or high/medium/low for supported models
      --truncate                For embedding models: truncate inputs exceeding context length (default: true). \
Set --truncate=false to error instead
      --verbose                 Show timings for response

Environment Variables:
      OLLAMA_HOST                   IP Address for the corral server (default 127.0.0.1:11434)
      OLLAMA_NOHISTORY              Do not preserve readline history
"""


def test_help_command_and_flag(captured: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["help", "run"], ["run", "--help"], ["run", "-h"], ["run", "m", "--think", "-h"]):
        assert cli.main(argv) == 0
        assert capsys.readouterr() == (RUN_HELP, "")
    assert cli.main(["help"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("Large language model runner\n\nUsage:\n  corral [flags]\n  corral [command]\n\n"
                          "Available Commands:\n  serve       Start corral\n  create      Create a model\n")
    assert "\n  help        Help about any command\n\nFlags:\n  -h, --help         help for corral\n" in out
    assert out.endswith('\nUse "corral [command] --help" for more information about a command.\n')
    assert cli.main(["help", "ls"]) == 0
    assert "Usage:\n  corral list [flags]\n\nAliases:\n  list, ls\n" in capsys.readouterr().out
    assert cli.main(["help", "nosuch"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Unknown help topic [`nosuch`]\nUsage:\n  corral [flags]\n")
    assert "ns" not in captured


# --- against a server ---------------------------------------------------------------------------------------------


def test_list_and_ps_prefixes_and_stop_of_an_unloaded_model(fake_server: CorralServer) -> None:
    listed = corral(fake_server.host, "list", "SMOLLM2")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"] and [r.split()[0] for r in rows] == ["smollm2:135m"]

    fake_server.unload_all()
    stop = corral(fake_server.host, "stop", "smollm2:135m")  # installed, not loaded: Ollama says nothing
    assert (stop.returncode, stop.stdout, stop.stderr) == (0, "", "")
    missing = corral(fake_server.host, "stop", "no-such-model")
    assert missing.returncode == 1 and missing.stderr == 'Error: couldn\'t find model "no-such-model" to stop\n'

    httpx.post(fake_server.url + "/api/generate", json={"model": "smollm2:135m", "prompt": "say:hi", "stream": False},
               timeout=60).raise_for_status()
    ps = corral(fake_server.host, "ps", "smollm2")
    assert ps.returncode == 0, ps.stderr
    rows = ps.stdout.splitlines()[1:]
    assert len(rows) == 1 and rows[0].startswith("smollm2:135m") and "minutes from now" in rows[0], ps.stdout
    assert corral(fake_server.host, "ps", "SMOLLM2").stdout.splitlines()[1:] == []
    stop = corral(fake_server.host, "stop", "smollm2:135m")
    assert (stop.returncode, stop.stdout, stop.stderr) == (0, "", "")
    wait_until(lambda: corral(fake_server.host, "ps").stdout.splitlines()[1:] == [], timeout=30, what="the unload")


def test_version_asks_the_server(fake_server: CorralServer) -> None:
    done = corral(fake_server.host, "-v")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"corral version is {OLLAMA_VERSION}\n", "")
    down = corral(f"127.0.0.1:{free_port()}", "--version")
    assert down.returncode == 0
    assert down.stdout == ("Warning: could not connect to a running corral instance\n"
                           f"Warning: client version is {OLLAMA_VERSION}\n")


@pytest.fixture
def other_version_server() -> Iterator[str]:
    """A server that answers /api/version with a release this client is not."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"version": "0.0.1-other"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_version_warns_when_the_client_differs(other_version_server: str) -> None:
    done = corral(other_version_server, "-v")
    assert done.returncode == 0
    assert done.stdout == f"corral version is 0.0.1-other\nWarning: client version is {OLLAMA_VERSION}\n"


def test_serve_on_a_taken_port_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(tmp_path / "models")}
        done = subprocess.run([sys.executable, "-m", "corral", "serve"], env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 1
    assert done.stderr == f"Error: listen tcp 127.0.0.1:{port}: bind: address already in use\n"
    assert done.stdout == ""  # no "Listening", no start-up log
    manifests = tmp_path / "models" / "manifests"
    assert not manifests.exists() or not any(manifests.rglob("*")), "models were imported before the bind failed"


def test_usage_error_exit_status_from_the_command_line() -> None:
    done = corral(f"127.0.0.1:{free_port()}", "run")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "Error: requires at least 1 arg(s), only received 0\n"
    helped = corral(f"127.0.0.1:{free_port()}", "help", "run")
    assert (helped.returncode, helped.stdout, helped.stderr) == (0, RUN_HELP, "")
