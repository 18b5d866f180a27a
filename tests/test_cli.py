"""The `corral` command against a running server, as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import CorralServer, free_port


def corral(host: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OLLAMA_HOST": host, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "corral", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


def test_list_shows_models(server: CorralServer) -> None:
    done = corral(server.host, "list")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    names = [r.split()[0] for r in rows]
    assert "smollm2:135m" in names and "gemma3:270m" in names


def test_run_with_prompt_streams_an_answer(server: CorralServer) -> None:
    done = corral(server.host, "run", "deepseek-coder", "Say hello.", "--verbose")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "eval rate:" in done.stderr


def test_run_with_piped_stdin_uses_it_as_the_prompt(server: CorralServer) -> None:
    done = corral(server.host, "run", "deepseek-coder", stdin="Say hello.\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and ">>>" not in done.stdout


def test_ps_and_stop(server: CorralServer) -> None:
    server.unload_all()  # ps names a runner after the model that loaded it: deepseek-coder shares smollm2's blob
    corral(server.host, "run", "deepseek-coder", "Hi")
    ps = corral(server.host, "ps")
    assert ps.returncode == 0
    header, *rows = ps.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]
    assert any(r.startswith("deepseek-coder:latest") and "100% CPU" in r for r in rows), ps.stdout
    corral(server.host, "run", "deepseek-coder", "--keepalive", "-1m", "Hi")
    ps = corral(server.host, "ps")
    assert any(r.startswith("deepseek-coder:latest") and r.rstrip().endswith("Forever")  # cells end in padding
               for r in ps.stdout.splitlines())
    stop = corral(server.host, "stop", "deepseek-coder")
    assert stop.returncode == 0, stop.stderr
    again = corral(server.host, "stop", "deepseek-coder")  # installed but no longer loaded: silent, as Ollama
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    missing = corral(server.host, "stop", "never-loaded")
    assert missing.returncode == 1 and "couldn't find model \"never-loaded\" to stop" in missing.stderr


def test_no_server_gives_a_clear_error() -> None:
    done = corral(f"127.0.0.1:{free_port()}", "list")
    assert done.returncode == 1
    assert "could not connect to corral server" in done.stderr
