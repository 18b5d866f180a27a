"""corral's SDK against a real ``corral serve``: aborting streams, ``stop``, errors on every streaming path.

The server is the session one (tests/conftest.py); the model is the bundled smollm2. A cancelled
generation shows in the server's log as the runner's cancel report (corral/scheduler/handle.py), which
is how these tests see that the server noticed the client leave.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

import pytest

from corral.client import AsyncClient, Client, ResponseError
from corral.client._base import CONNECTION_ERROR_MESSAGE
from tests.conftest import CHAT_MODEL
from tests.servers import CorralServer, wait_until

# Greedy counting never reaches an end of text, so only the client can end this generation early.
COUNTING = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True, "options": {"num_predict": 3000, "temperature": 0}}
CANCELLED = re.compile(r"canceled by its client; (\d+|\?) token\(s\) generated after the cancel")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cancels(server: CorralServer) -> int:
    return len(CANCELLED.findall(server.log()))


def wait_for_cancel(server: CorralServer, before: int) -> None:
    wait_until(lambda: cancels(server) > before, timeout=120, what="the server to cancel the generation")


# -- a stream closed by the client stops the generation on the server -------------------------------


def test_closing_a_stream_cancels_the_generation(server: CorralServer) -> None:
    client = Client(server.url, timeout=120)
    before = cancels(server)
    stream = client.generate(CHAT_MODEL, **COUNTING, stream=True)
    parts = [next(stream) for _ in range(3)]
    assert not any(part.done for part in parts)
    stream.close()
    wait_for_cancel(server, before)
    with pytest.raises(StopIteration):
        next(stream)


def test_leaving_a_with_block_cancels_the_generation(server: CorralServer) -> None:
    before = cancels(server)
    with Client(server.url, timeout=120) as client, client.generate(CHAT_MODEL, **COUNTING, stream=True) as stream:
        assert next(stream).done is False
    wait_for_cancel(server, before)


def test_breaking_out_of_a_loop_cancels_the_generation(server: CorralServer) -> None:
    client = Client(server.url, timeout=120)
    before = cancels(server)
    for n, part in enumerate(client.generate(CHAT_MODEL, **COUNTING, stream=True)):
        assert part.done is False
        if n == 2:
            break  # the unnamed stream is collected here, which closes the response
    wait_for_cancel(server, before)


@pytest.mark.anyio
async def test_async_aclose_cancels_the_generation(server: CorralServer) -> None:
    before = cancels(server)
    async with AsyncClient(server.url, timeout=120) as client:
        stream = await client.generate(CHAT_MODEL, **COUNTING, stream=True)
        async for part in stream:
            assert part.done is False
            break
        await stream.aclose()
        wait_for_cancel(server, before)
        # The slot is free again: the next request is served.
        reply = await client.generate(CHAT_MODEL, "Hi", options={"num_predict": 2})
        assert reply.done is True


# -- stop -------------------------------------------------------------------------------------------


def _loaded(client: Client) -> set[str]:
    return {model.model or "" for model in client.ps().models}


def test_stop_unloads_the_model(server: CorralServer) -> None:
    client = Client(server.url, timeout=120)
    client.generate(CHAT_MODEL, keep_alive="10m")  # an empty prompt loads the model
    loaded = _loaded(client)
    # Copies of one model share its runner (Ollama keys runners by weights), and ps names the runner after
    # the model that loaded it: an earlier test's copy may be what serves CHAT_MODEL now.
    assert loaded
    reply = client.stop(CHAT_MODEL)
    assert (reply.done, reply.done_reason) == (True, "unload")
    # its embedding runner, if an earlier test embedded with it, goes too: stop unloads the model
    wait_until(lambda: len(_loaded(client)) < len(loaded), timeout=120, what=f"{CHAT_MODEL}'s runner to unload")
    assert CHAT_MODEL not in _loaded(client)


@pytest.mark.anyio
async def test_async_stop_of_a_model_not_loaded(server: CorralServer) -> None:
    async with AsyncClient(server.url, timeout=120) as client:
        await client.stop(CHAT_MODEL)
        reply = await client.stop(CHAT_MODEL)  # nothing to unload: still a plain answer
        assert reply.done_reason == "unload"
        assert CHAT_MODEL not in {m.model for m in (await client.ps()).models}
        with pytest.raises(ResponseError) as info:
            await client.stop("no-such-model")
        assert info.value.status_code == 404


# -- the same friendly errors on the streaming paths as on the others -------------------------------


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


STREAMING_CALLS: dict[str, Callable[[Any], Any]] = {
    "generate": lambda c: c.generate("m", "hi", stream=True),
    "chat": lambda c: c.chat("m", [{"role": "user", "content": "hi"}], stream=True),
    "pull": lambda c: c.pull("m", stream=True),
    "push": lambda c: c.push("m", stream=True),
    "create": lambda c: c.create("m", from_="x", stream=True),
}


@pytest.mark.parametrize("call", list(STREAMING_CALLS))
def test_unreachable_server_on_streaming_paths(closed_port: str, call: str) -> None:
    stream = STREAMING_CALLS[call](Client(closed_port))
    with pytest.raises(ConnectionError, match=re.escape(CONNECTION_ERROR_MESSAGE)):
        next(stream)


@pytest.mark.anyio
@pytest.mark.parametrize("call", list(STREAMING_CALLS))
async def test_async_unreachable_server_on_streaming_paths(closed_port: str, call: str) -> None:
    stream = await STREAMING_CALLS[call](AsyncClient(closed_port))
    with pytest.raises(ConnectionError, match=re.escape(CONNECTION_ERROR_MESSAGE)):
        await stream.__anext__()


def test_unknown_model_on_a_stream_is_a_response_error(server: CorralServer) -> None:
    with pytest.raises(ResponseError) as info:
        next(Client(server.url).chat("no-such-model", [{"role": "user", "content": "hi"}], stream=True))
    assert info.value.status_code == 404 and "not found" in info.value.error
