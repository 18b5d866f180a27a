"""A Ray cluster of several nodes on this machine, inside a network namespace of its own.

On Linux Ray replaces 127.0.0.1 with the host's routable address; inside a fresh network namespace (only
``lo``, brought up) every node is 127.0.0.1 and nothing outside can collide with its ports. Each node is a
``ray start --block`` process entered into the namespace with ``nsenter``, so a test knows its processes
(its raylet, to SIGKILL) and stops exactly those. A server started in the namespace is reached from the test
through :class:`Relay`: a listener on the test's loopback whose connections are opened from a thread that
has joined the namespace (a network namespace belongs to a thread, and a socket keeps the one it was made in).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.servers import REPO, child_pids, shut_down, wait_until

RAY = str(Path(sys.executable).parent / "ray")
GCS_PORT = 6390  # outside Ray's worker port range (10002-19999)
SERVER_PORT = 11434  # corral serve's, inside the namespace: nothing else listens there
CLONE_NEWNET = 0x40000000

# Pinned so that a run behaves the same on every machine: no token files, fast failure detection.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_health_check_period_ms": "500",
           "RAY_health_check_failure_threshold": "3", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_DEDUP_LOGS": "0", "PYTHONPATH": str(REPO)}


@dataclass
class NodeSpec:
    cpus: int
    memory: int  # bytes: Ray's `memory` resource, the node's cap for corral's scheduler
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class RayCluster:
    nodes: list[NodeSpec]
    holder: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    temp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cr", dir="/tmp")))

    @property
    def netns(self) -> str:
        assert self.holder is not None
        return f"/proc/{self.holder.pid}/ns/net"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{GCS_PORT}"

    def popen(self, argv: list[str], env: dict[str, str] | None = None, log: Path | None = None,
              ) -> subprocess.Popen[bytes]:
        """A process inside the namespace."""
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(["nsenter", f"--net={self.netns}", *argv], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV, **(env or {})})

    def run(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net={self.netns}", *argv], cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **RAY_ENV})

    def start(self) -> RayCluster:
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep infinity"])
        wait_until(lambda: "UP" in self.run(["ip", "-o", "link", "show", "lo"]).stdout, timeout=20,
                   what="the namespace's loopback")
        head, *workers = self.nodes
        self.procs.append(self.popen([RAY, "start", "--head", "--block", "--port", str(GCS_PORT),
                                      "--num-cpus", str(head.cpus), "--memory", str(head.memory),
                                      "--temp-dir", str(self.temp), "--include-dashboard", "false",
                                      "--disable-usage-stats"], head.env, self.temp / "node0.log"))
        wait_until(self._gcs_up, timeout=60, interval=0.5, what="the Ray head's GCS")
        wait_until(lambda: self.alive_nodes() == 1, timeout=90, interval=0.5, what="the Ray head")
        # one at a time: nodes of one machine name their sockets in the head's session folder by a counter,
        # and two starting together can take the same name
        for i, w in enumerate(workers, 1):
            self.procs.append(self.popen([RAY, "start", "--block", "--address", self.address,
                                          "--num-cpus", str(w.cpus), "--memory", str(w.memory)],
                                         w.env, self.temp / f"node{i}.log"))
            wait_until(lambda: self.alive_nodes() == i + 1, timeout=90, interval=0.5,  # noqa: B023
                       what=f"{i + 1} Ray nodes alive")
        return self

    def _gcs_up(self) -> bool:
        for p in self.procs:
            if p.poll() is not None:
                raise AssertionError(f"a Ray node exited: {self.logs()}")
        probe = f"import socket; socket.create_connection(('127.0.0.1', {GCS_PORT}), 1)"
        return self.run([sys.executable, "-c", probe]).returncode == 0

    def alive_nodes(self) -> int:
        for p in self.procs:
            if p.poll() is not None:
                raise AssertionError(f"a Ray node exited: {self.logs()}")
        script = (f"import ray, logging; ray.init(address='{self.address}', logging_level=logging.ERROR, "
                  "log_to_driver=False); print(sum(1 for n in ray.nodes() if n['Alive']))")
        out = self.run([sys.executable, "-c", script], timeout=60).stdout.strip().splitlines()
        return int(out[-1]) if out and out[-1].isdigit() else 0

    def raylet(self, index: int) -> int:
        """The pid of node ``index``'s raylet."""
        for pid in child_pids(self.procs[index].pid):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet":
                    return pid
            except OSError:
                continue
        raise AssertionError(f"node {index} has no raylet")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.temp.glob("node*.log")))

    def stop(self) -> None:
        pids = [pid for p in self.procs for pid in child_pids(p.pid)] + [p.pid for p in self.procs]
        for p in self.procs:  # `ray start --block` stops its node's processes on SIGTERM
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        for pid in pids:  # whatever outlived that (workers, agents) is ours alone: by pid, never by name
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()
        shutil.rmtree(self.temp, ignore_errors=True)


class Relay:
    """``127.0.0.1:<port>`` here, forwarded to ``127.0.0.1:<target>`` inside the namespace."""

    def __init__(self, netns: str, target: int) -> None:
        self.netns, self.target = netns, target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(self.netns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:  # this thread only: its new sockets live in the namespace
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        shut_down(src, dst)


class ClusterServer:
    """`corral serve --cluster` on the head node, reached through a relay."""

    def __init__(self, cluster: RayCluster, models: Path, env: dict[str, str], log_path: Path | None = None,
                 ) -> None:
        self.cluster = cluster
        self.log_path = log_path or cluster.temp / "server.log"
        self.proc = cluster.popen([sys.executable, "-m", "corral", "serve", "--cluster", f"ray://{cluster.address}"],
                                  {"OLLAMA_HOST": f"127.0.0.1:{SERVER_PORT}", "OLLAMA_MODELS": str(models),
                                   "CORRAL_NO_BUNDLED": "1", "CORRAL_FAKE_RUNNER": "0", **env}, self.log_path)
        self.relay = Relay(cluster.netns, SERVER_PORT)
        self.url = f"http://127.0.0.1:{self.relay.port}"

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log()}")
            try:
                return httpx.head(self.url + "/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=120, interval=0.5, what="corral serve --cluster to answer")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def ps(self) -> list[dict[str, Any]]:
        return list(httpx.get(self.url + "/api/ps", timeout=10).json()["models"])

    def unload_all(self) -> None:
        for m in self.ps():
            httpx.post(self.url + "/api/generate", json={"model": m["name"], "keep_alive": 0}, timeout=60)
        wait_until(lambda: not self.ps(), timeout=60, interval=0.5, what="runners to unload")

    def stop(self) -> None:
        self.relay.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
