"""`make demo`: start `corral serve` on a free port, ask smollm2:135m a question through the SDK, stream
the answer, stop the server.

The store is $OLLAMA_MODELS (default ~/.ollama/models), where the bundled models are imported on first use
without network; an existing model of the same name is never overwritten.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

import corral


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    port = free_port()
    host = f"127.0.0.1:{port}"
    env = {**os.environ, "OLLAMA_HOST": host}
    server = subprocess.Popen([sys.executable, "-m", "corral", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://{host}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print("corral serve did not start:\n" + (server.stderr.read() if server.stderr else ""),
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
        client = corral.Client(host=f"http://{host}")
        question = "Why is the sky blue?"
        print(f">>> {question}")
        for part in client.chat(model="smollm2:135m", messages=[{"role": "user", "content": question}],
                                stream=True, options={"temperature": 0, "num_predict": 200}):
            print(part.message.content, end="", flush=True)
            if part.done:
                rate = part.eval_count / part.eval_duration * 1e9 if part.eval_duration else 0.0
                print(f"\n\n[{part.eval_count} tokens, {rate:.1f} tokens/s, done_reason={part.done_reason}]")
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
