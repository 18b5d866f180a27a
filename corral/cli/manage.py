"""``corral create``, ``corral show``, ``corral cp``, ``corral rm``: Ollama's model-management commands.

``create`` does the client's part as Ollama's CLI does: it parses the Modelfile locally, uploads each
file FROM / ADAPTER name (``POST /api/blobs``; the server answers 200 for a blob it has), and sends
``/api/create`` the file names with their digests and the other fields.  A FROM that is not an
existing path goes as ``from``, a model name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from corral.cli.common import connect
from corral.client import Client, ResponseError
from corral.store.modelfile import ModelfileError, parse


def _error(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def _upload(client: Client, paths: dict[str, str]) -> dict[str, str]:
    """Upload each local file; return ``{basename: digest}`` as Ollama's CLI sends them."""
    out: dict[str, str] = {}
    for path in paths:
        digest = client.create_blob(path)
        print(f"copying file {digest} 100%", file=sys.stderr)
        out[os.path.basename(path)] = digest
    return out


def cmd_create(args: argparse.Namespace) -> int:
    if args.file:
        path = Path(args.file)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return _error(f"open {path}: {e.strerror.lower() if e.strerror else e}")
    else:
        path = Path("Modelfile")
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else "FROM ."
    try:
        fields = parse(text).create_fields(path.absolute().parent, warn=lambda m: print(m, file=sys.stderr))
    except ModelfileError as e:
        return _error(str(e))
    client = connect()
    print("gathering model components", file=sys.stderr)
    body: dict[str, Any] = {"model": args.model, **fields}
    try:
        for key in ("files", "adapters", "draft_files"):
            if key in body:
                body[key] = _upload(client, body[key])
        if args.quantize:
            body["quantize"] = args.quantize
        with client._client.stream("POST", "/api/create", json=body, timeout=None) as response:
            if not response.is_success:
                response.read()
                return _error(_message(response.text))
            for line in response.iter_lines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if "error" in item:
                    return _error(str(item["error"]))
                print(item.get("status", ""), file=sys.stderr)
    except ResponseError as e:
        return _error(e.error)
    return 0


def _message(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return str(value.get("error", text)) if isinstance(value, dict) else text


def _section(title: str, rows: list[tuple[str, str]] | list[str]) -> list[str]:
    out = [f"  {title}"]
    for row in rows:
        if isinstance(row, tuple):
            out.append(f"    {row[0]:<20}{row[1]}".rstrip())
        else:
            out.append(f"    {row}".rstrip())
    return [*out, ""]


def _human_number(n: int) -> str:
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= size:
            value = n / size
            return f"{value:.0f}{unit}" if value >= 100 or value == int(value) else f"{value:.1f}{unit}"
    return str(n)


def cmd_show(args: argparse.Namespace) -> int:
    client = connect()
    try:
        response = client._request_raw("POST", "/api/show", json={"model": args.model, "verbose": args.verbose})
    except ResponseError as e:
        return _error(e.error)
    info: dict[str, Any] = response.json()
    for flag in ("license", "modelfile", "parameters", "template", "system"):
        if getattr(args, flag):
            print(info.get(flag, ""))
            return 0
    details = info.get("details") or {}
    model_info = info.get("model_info") or {}
    arch = str(model_info.get("general.architecture") or details.get("family") or "")
    rows: list[tuple[str, str]] = [("architecture", arch)]
    count = model_info.get("general.parameter_count")
    rows.append(("parameters", _human_number(int(count)) if isinstance(count, int) else
                 str(details.get("parameter_size", ""))))
    for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
        value = model_info.get(f"{arch}.{key}")
        if value is not None:
            rows.append((label, str(value)))
    rows.append(("quantization", str(details.get("quantization_level", ""))))
    out = _section("Model", rows)
    if info.get("capabilities"):
        out += _section("Capabilities", list(info["capabilities"]))
    if info.get("parameters"):
        rows_p = [(k, v.strip()) for k, _, v in (line.partition(" ") for line in info["parameters"].splitlines())]
        out += _section("Parameters", rows_p)
    if info.get("system"):
        out += _section("System", info["system"].splitlines()[:2])
    if info.get("license"):
        out += _section("License", info["license"].splitlines()[:2])
    if args.verbose and model_info:
        out += _section("Metadata", [(k, json.dumps(v) if not isinstance(v, str) else v)
                                     for k, v in sorted(model_info.items())])
    print("\n" + "\n".join(out).rstrip() + "\n")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    client = connect()
    try:
        client.copy(args.source, args.destination)
    except ResponseError as e:
        return _error(e.error)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    client = connect()
    for name in args.models:
        try:
            client.generate(model=name, prompt="", keep_alive=0)  # unload first, as Ollama's CLI does
        except ResponseError:
            pass  # not a generative model, or not there: delete says which
        try:
            client.delete(name)
        except ResponseError as e:
            return _error(e.error)
        print(f"deleted '{name}'")
    return 0
