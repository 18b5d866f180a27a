"""Real `corral serve` processes for tests: a free port, a temporary store, polled until they answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shut_down(*socks: socket.socket) -> None:
    """Both directions of each socket, ignoring ones already gone (a relay's two ends when one side ends)."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.05, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    """Every live descendant of ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry)] = int(fields[1])
    out: list[int] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        frontier += kids
    return out


def runner_pids(models_dir: Path | None = None) -> list[int]:
    """Live runner processes, real or fake (optionally: of models in this store), from the process table."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not {b"corral.runner", b"corral.scheduler.fakerunner"} & set(argv):
            continue
        if models_dir is not None and not any(str(models_dir).encode() in a for a in argv):
            continue
        pids.append(int(entry))
    return pids


@dataclass
class CorralServer:
    models: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> CorralServer:
        self.port = free_port()
        env = {**os.environ, "OLLAMA_HOST": self.host, "OLLAMA_MODELS": str(self.models),
               "CORRAL_NO_BUNDLED": "1", "NO_PROXY": "127.0.0.1,localhost", "OLLAMA_KEEP_ALIVE": "5m",
               "CORRAL_FAKE_RUNNER": "0",  # the real engine unless a test asks for the fake (fake_server)
               **self.env}
        self.log_path = self.models.parent / f"server-{self.port}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([sys.executable, "-m", "corral", "serve"], env=env, cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log()}")
            try:
                return httpx.head(self.url + "/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=60, what="corral serve to answer")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def unload_all(self) -> None:
        """Unload every model earlier tests left loaded, so that the runner a test sees next is its own."""
        for m in httpx.get(self.url + "/api/ps").json()["models"]:
            httpx.post(self.url + "/api/generate", json={"model": m["name"], "keep_alive": 0}, timeout=60)
        wait_until(lambda: not self.runners(), timeout=20, what="loaded runners to unload")

    def runners(self) -> list[int]:
        assert self.proc is not None
        return [p for p in child_pids(self.proc.pid) if p in set(runner_pids())]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
