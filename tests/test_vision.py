"""Vision (issue 21): a model with a projector sees images on every API.

No small real vision model can be installed here, so tests/tinyvision.py builds one: a tiny random llama and a
llava-style projector whose output width is the llama's. Their outputs mean nothing, but they are deterministic
and they depend on the image, which is what these tests compare: with and without an image, two images, the
same image twice, one image through every client, alone and beside other requests.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from PIL import Image

from corral.scheduler.handle import RunnerError, RunnerHandle, RunnerSpec
from tests.servers import CorralServer
from tests.test_batching import assert_same_tokens
from tests.tinyvision import gradient_rgb, n_image_tokens, solid_rgb, write_projector, write_text_model

pytestmark = pytest.mark.slow

MODEL = "tiny-vision"
GREEDY = {"temperature": 0, "num_predict": 8}
ASK = "Describe the image."


def encoded(rgb: bytes, fmt: str = "PNG", size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), rgb).save(out, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return out.getvalue()


RED = encoded(solid_rgb(32, 32, (255, 0, 0)))
GRADIENT = encoded(gradient_rgb(32, 32))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tinyvision")
    return write_text_model(folder / "text.gguf"), write_projector(folder / "mmproj.gguf")


@pytest.fixture(scope="module")
def srv(files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServer]:
    server = CorralServer(models=tmp_path_factory.mktemp("vstore") / "models",
                          env={"OLLAMA_NUM_PARALLEL": "4"}).start()
    try:
        client = ollama.Client(host=server.url)
        # a projector GGUF among the files is recognised by its own keys, as Ollama does
        client.create(MODEL, files={"model.gguf": client.create_blob(files[0]),
                                    "mmproj.gguf": client.create_blob(files[1])},
                      parameters={"temperature": 0, "num_predict": 8})  # greedy by default: the CLI too
        yield server
    finally:
        server.stop()


def generate(srv: CorralServer, images: list[str], prompt: str = ASK) -> dict[str, Any]:
    r = httpx.post(srv.url + "/api/generate", timeout=120, json={
        "model": MODEL, "prompt": prompt, "images": images, "stream": False, "options": GREEDY})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def reply_tokens(body: dict[str, Any]) -> list[int]:
    return list(body["context"][-body["eval_count"]:])


def test_a_projector_makes_a_vision_model(srv: CorralServer) -> None:
    shown = httpx.post(srv.url + "/api/show", json={"model": MODEL}).json()
    assert "vision" in shown["capabilities"]


def test_images_change_the_output(srv: CorralServer) -> None:
    plain = generate(srv, [])
    red, gradient, red_again = (generate(srv, [b64(image)]) for image in (RED, GRADIENT, RED))
    assert red["eval_count"] == gradient["eval_count"] == plain["eval_count"] == 8
    assert reply_tokens(red) != reply_tokens(plain)
    assert reply_tokens(red) != reply_tokens(gradient)
    assert reply_tokens(red) == reply_tokens(red_again)
    # the image's tokens count as prompt (the stand-in tokens are not part of the text context)
    assert red["prompt_eval_count"] == plain["prompt_eval_count"] + n_image_tokens()
    assert min(red["context"]) >= 0
    # two images: two spans of tokens
    both = generate(srv, [b64(RED), b64(GRADIENT)])
    assert both["prompt_eval_count"] == plain["prompt_eval_count"] + 2 * n_image_tokens()
    assert reply_tokens(both) not in (reply_tokens(red), reply_tokens(gradient))


def test_every_client_gets_the_same_answer(srv: CorralServer, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(RED)
    oc = ollama.Client(host=srv.url)
    ask: dict[str, Any] = {"role": "user", "content": ASK}
    answers = {
        f"ollama {kind}": oc.chat(MODEL, messages=[{**ask, "images": [image]}], options=GREEDY).message.content
        for kind, image in (("path", str(path)), ("bytes", RED), ("base64", b64(RED)))}
    url = "data:image/png;base64," + b64(RED)
    answers["openai"] = openai.OpenAI(base_url=srv.url + "/v1", api_key="x").chat.completions.create(
        model=MODEL, temperature=0, max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "text", "text": ASK}, {"type": "image_url", "image_url": {"url": url}}]}],
    ).choices[0].message.content
    block = anthropic.Anthropic(base_url=srv.url, api_key="x").messages.create(
        model=MODEL, max_tokens=8, extra_body={"temperature": 0}, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(RED)}},
            {"type": "text", "text": ASK}]}]).content[0]
    answers["anthropic"] = getattr(block, "text", None)
    # the same pixels as WebP, and as a GIF's first frame
    for fmt in ("WEBP", "GIF"):
        data = encoded(solid_rgb(32, 32, (255, 0, 0)), fmt)
        answers[fmt] = oc.chat(MODEL, messages=[{**ask, "images": [data]}], options=GREEDY).message.content
    assert len(set(answers.values())) == 1, answers
    without = oc.chat(MODEL, messages=[ask], options=GREEDY).message.content
    assert without not in answers.values()


def test_corral_run_attaches_a_path_in_the_prompt(srv: CorralServer, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    path.write_bytes(RED)
    env = {**os.environ, "OLLAMA_HOST": srv.host, "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([sys.executable, "-m", "corral", "run", MODEL, f"Describe {path}"], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Added image '{path}'".encode() in done.stderr
    # the path left the prompt and the file went as an image: the answer of the API for that prompt and image
    api = generate(srv, [b64(RED)], prompt="Describe")
    assert done.stdout.decode("utf-8", "replace").strip() == api["response"].strip()
    assert api["response"] != generate(srv, [], prompt="Describe")["response"]


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("image", "words"), [
    (b"this is not an image", "invalid image 0"),
    (RED[: len(RED) // 2], "invalid image 0"),  # truncated
    (b"", "empty"),
    (png_header(20000, 20000), "too large"),
    (png_header(0, 0), "invalid image 0"),
], ids=["not-an-image", "truncated", "empty", "20k-square", "zero-sized"])
def test_a_bad_image_is_a_400_and_the_runner_lives(srv: CorralServer, image: bytes, words: str) -> None:
    generate(srv, [])  # loaded
    before = srv.runners()
    r = httpx.post(srv.url + "/api/chat", timeout=60, json={
        "model": MODEL, "stream": False, "messages": [{"role": "user", "content": ASK, "images": [b64(image)]}]})
    assert r.status_code == 400 and words in r.json()["error"], r.text
    v1 = httpx.post(srv.url + "/v1/chat/completions", timeout=60, json={"model": MODEL, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:;base64," + b64(image)}}]}]})
    assert v1.status_code == 400 and "error" in v1.json() and words in v1.json()["error"]["message"]
    assert srv.runners() == before
    assert generate(srv, [b64(RED)])["eval_count"] == 8


# --- the runner itself -------------------------------------------------------------------------------------


def spec(files: tuple[Path, Path], slots: int = 4) -> RunnerSpec:
    return RunnerSpec(model_path=str(files[0]), projector=str(files[1]), num_ctx=512, num_parallel=slots)


async def run(handle: RunnerHandle, prompt: str, images: list[bytes]) -> dict[str, Any]:
    done: dict[str, Any] = {}
    async for msg in handle.generate(prompt=prompt, images=[b64(i) for i in images], num_predict=12,
                                     sampling={"temperature": 0}, report_gaps=True):
        if msg["kind"] == "done":
            done = msg
    return done


CASES: list[tuple[str, list[bytes]]] = [
    ("[img-0]Describe the image.", [RED]), ("What is in the picture?", []),
    ("[img-0] and [img-1]: what colour?", [GRADIENT, RED]), ("Describe the colour red.", []),
    ("[img-0][img-1]Twins?", [RED, RED])]  # one image twice, side by side: two spans, two evaluations


def test_beside_text_requests_and_on_the_next_turn(files: tuple[Path, Path]) -> None:
    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        alone = []
        for prompt, images in CASES:
            handle = RunnerHandle(spec(files, 1))
            await handle.start(60)
            try:
                alone.append(await run(handle, prompt, images))
            finally:
                await handle.kill()
        handle = RunnerHandle(spec(files))
        await handle.start(60)
        try:
            together = await asyncio.gather(*(run(handle, p, i) for p, i in CASES))
            # the next turn of the first: its image is in the slot's cache already
            first = CASES[0][0] + " It is red."
            turn = await run(handle, first, [RED])
            # an image the runner cannot decode fails its own request only
            with pytest.raises(RunnerError):
                await run(handle, "[img-0]", [b"junk"])
            after = await run(handle, *CASES[1])
        finally:
            await handle.kill()
        return alone, list(together), turn, after

    alone, together, turn, after = asyncio.run(main())
    prompts = [p for p, _ in CASES]
    assert_same_tokens(prompts, alone, together)
    twins = alone[-1]
    assert len(twins["prompt_tokens"]) - len([t for t in twins["prompt_tokens"] if t >= 0]) == 2 * n_image_tokens()
    assert turn["prompt_eval_count"] < n_image_tokens()  # only the new text was evaluated
    assert after["tokens"] == alone[1]["tokens"]
