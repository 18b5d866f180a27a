"""``corral run MODEL [PROMPT]``: one answer streamed, or a simple interactive chat."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from corral.api.wire import Float32Array, dumps
from corral.cli.common import connect
from corral.client import ResponseError


def _print_stats(final: Any) -> None:
    def dur(ns: int | None) -> str:
        s = (ns or 0) / 1e9
        return f"{s * 1000:.3f}ms" if s < 1 else f"{s:.3f}s"

    def rate(count: int | None, ns: int | None) -> str:
        return f"{(count or 0) / (ns / 1e9):.2f} tokens/s" if ns else "0.00 tokens/s"

    lines = [
        ("total duration:", dur(final.total_duration)),
        ("load duration:", dur(final.load_duration)),
        ("prompt eval count:", f"{final.prompt_eval_count or 0} token(s)"),
        ("prompt eval duration:", dur(final.prompt_eval_duration)),
        ("prompt eval rate:", rate(final.prompt_eval_count, final.prompt_eval_duration)),
        ("eval count:", f"{final.eval_count or 0} token(s)"),
        ("eval duration:", dur(final.eval_duration)),
        ("eval rate:", rate(final.eval_count, final.eval_duration)),
    ]
    for k, v in lines:
        print(f"{k:<22}{v}", file=sys.stderr)


def _chat(client: Any, args: argparse.Namespace, messages: list[dict[str, Any]]) -> str:
    answer: list[str] = []
    final = None
    for part in client.chat(model=args.model, messages=messages, stream=True, keep_alive=args.keepalive,
                            format=args.format):
        text = part.message.content or ""
        answer.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()
        if part.done:
            final = part
    sys.stdout.write("\n")
    if args.verbose and final is not None:
        _print_stats(final)
    return "".join(answer)


def cmd_run(args: argparse.Namespace) -> int:
    client = connect()
    prompt = " ".join(args.prompt)
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        prompt = f"{piped}\n{prompt}".strip() if prompt else piped.strip()
        if not prompt:
            return 0
    try:
        info = client.show(args.model)
    except ResponseError as exc:
        if exc.status_code != 404:
            print(f"Error: {exc.error}", file=sys.stderr)
            return 1
        # As Ollama's CLI does: a model the server lacks is pulled first.
        from corral.cli.transfer import pull_with_progress

        if pull_with_progress(client, args.model, insecure=args.insecure) != 0:
            return 1
        info = client.show(args.model)
    try:
        if "embedding" in (info.capabilities or []):
            return _embed(client, args, prompt)
        if prompt:
            _chat(client, args, [{"role": "user", "content": prompt}])
            return 0
        # Load first, so the model's load time is not mistaken for a slow first answer.
        client.chat(model=args.model, messages=[], keep_alive=args.keepalive)
        return _interactive(client, args)
    except ResponseError as exc:
        print(f"Error: {exc.error}", file=sys.stderr)
        return 1


def _embed(client: Any, args: argparse.Namespace, prompt: str) -> int:
    """An embedding model answers with its vector: one JSON array on stdout, as Ollama's CLI prints it."""
    if not prompt:
        print(f'Error: embedding models require input text. Usage: corral run {args.model} "your text here"',
              file=sys.stderr)
        return 1
    response = client.embed(model=args.model, input=prompt, keep_alive=args.keepalive, truncate=args.truncate,
                            dimensions=args.dimensions or None)
    if not response.embeddings:
        print("Error: no embeddings returned", file=sys.stderr)
        return 1
    # Go marshals the []float32 it received: shortest float32 digits, no spaces.
    print(dumps(Float32Array(response.embeddings[0])).decode())
    return 0


def _interactive(client: Any, args: argparse.Namespace) -> int:
    history: list[dict[str, Any]] = []
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            print()
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/bye", "/exit"):
            return 0
        if text in ("/?", "/help"):
            print("Available Commands:\n  /clear  Clear session context\n  /bye   Exit\n  /?, /help  Help")
            continue
        if text == "/clear":
            history.clear()
            print("Cleared session context")
            continue
        history.append({"role": "user", "content": text})
        try:
            answer = _chat(client, args, history)
        except KeyboardInterrupt:
            print()
            history.pop()
            continue
        history.append({"role": "assistant", "content": answer})
