"""Faults: a runner killed mid-stream fails its own request, and the server carries on."""

from __future__ import annotations

import json
import os
import signal

import httpx

from tests.servers import CorralServer, wait_until

CHAT = "smollm2:135m"


def test_killed_runner_fails_its_stream_and_the_next_request_reloads(server: CorralServer) -> None:
    # Nothing else loaded (earlier tests' embedding runner of the same model, say): the runner that
    # appears is this request's.
    server.unload_all()
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Tell me a very long story."}],
            "options": {"num_predict": 4000, "temperature": 1.0, "seed": 1}}
    lines: list[dict[str, object]] = []
    with httpx.stream("POST", server.url + "/api/chat", json=body, timeout=120) as r:
        assert r.status_code == 200
        it = r.iter_lines()
        for line in it:
            lines.append(json.loads(line))
            if len(lines) == 3:
                break
        runners = wait_until(server.runners, timeout=10, what="a runner process")
        assert len(runners) == 1
        os.kill(runners[0], signal.SIGKILL)
        for line in it:
            if line.strip():
                lines.append(json.loads(line))
    last = lines[-1]
    assert "error" in last, last
    assert str(last["error"]).startswith("llama runner process has terminated: signal: killed")
    assert all("error" not in chunk for chunk in lines[:-1])

    # The server is up, the dead runner is gone from /api/ps, and the next request loads a fresh one.
    assert httpx.get(server.url + "/").status_code == 200
    wait_until(lambda: not httpx.get(server.url + "/api/ps").json()["models"], timeout=10,
               what="the dead runner to leave /api/ps")
    r = httpx.post(server.url + "/api/chat", json={**body, "stream": False,
                                                  "options": {"num_predict": 8, "temperature": 0}}, timeout=120)
    assert r.status_code == 200 and r.json()["message"]["content"]
    fresh = server.runners()
    assert len(fresh) == 1 and fresh[0] != runners[0]
