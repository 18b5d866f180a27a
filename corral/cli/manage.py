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
from decimal import Decimal
from pathlib import Path
from typing import Any

from corral.cli.common import connect
from corral.cli.models import unload
from corral.client import Client, ResponseError
from corral.store.ggml_types import human_number
from corral.store.modelfile import ModelfileError, parse


def _error(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def _upload(client: Client, paths: dict[str, str]) -> dict[str, str]:
    """Upload each local file; return ``{name: digest}`` as Ollama's CLI sends them (a folder's files by their
    path inside it)."""
    out: dict[str, str] = {}
    for path, name in paths.items():
        digest = client.create_blob(path)
        print(f"copying file {digest} 100%", file=sys.stderr)
        out[name or os.path.basename(path)] = digest
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
            last = None
            for line in response.iter_lines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if "error" in item:
                    return _error(str(item["error"]))
                status = item.get("status", "")
                if status != last:  # a quantization repeats its status with every tensor done
                    print(status, file=sys.stderr)
                    last = status
    except ResponseError as e:
        return _error(e.error)
    return 0


def _message(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return str(value.get("error", text)) if isinstance(value, dict) else text


# --- show: Ollama's showInfo layout (a borderless tablewriter table per section) -----------------

_COL_WIDTH = 30  # tablewriter's default wrap width; Template, System and License cells get 100


def _wrap(cell: str, limit: int) -> list[str]:
    """Greedy word wrap to ``limit`` columns (tablewriter balances lines; for one-line cells it is the same)."""
    if len(cell) <= limit:
        return [cell]
    lines: list[str] = []
    current = ""
    for word in cell.split(" "):
        if current and len(current) + 1 + len(word) > limit:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current]


def _table(title: str, rows: list[list[str]], limit: int = _COL_WIDTH) -> list[str]:
    """``  Title``, then each row behind an empty first column, every column padded to its widest cell and
    followed by four spaces (trailing ones included), then a blank line: what Ollama's CLI prints."""
    cells = [[[""]] + [_wrap(c, limit) for c in row] for row in rows]
    n_cols = max((len(r) for r in cells), default=0)
    widths = [max((len(line) for r in cells if i < len(r) for line in r[i]), default=0) for i in range(n_cols)]
    out = [f"  {title}"]
    for row in cells:
        for y in range(max(len(c) for c in row)):
            parts = [(row[i][y] if i < len(row) and y < len(row[i]) else "").ljust(widths[i]) for i in range(n_cols)]
            out.append("".join(part + "    " for part in parts))
    return [*out, ""]


def _go_float(value: float, eprec: int = 6) -> str:
    """Go's shortest ``%g`` (``eprec=6``) or ``%v`` (``eprec=21``) of a float64."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(value))).as_tuple()
    if not isinstance(exp, int):
        return repr(value)
    ds = list(digits)
    while len(ds) > 1 and ds[-1] == 0:
        ds.pop()
        exp += 1
    text = "".join(map(str, ds))
    point = len(ds) + exp  # digits before the decimal point
    x10 = point - 1
    if x10 < -4 or x10 >= eprec:
        out = text[0] + ("." + text[1:] if len(text) > 1 else "") + f"e{'+' if x10 >= 0 else '-'}{abs(x10):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


def _go_v(value: Any) -> str:
    """Go's ``%v`` of a JSON-decoded value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value), 21)
    if isinstance(value, list):
        return "[" + " ".join(_go_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(v)}" for k, v in sorted(value.items())) + "]"
    return "<nil>" if value is None else str(value)


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    if isinstance(value, list):
        # As many items as fit in ten columns (at least one), then how many more there are.
        shown, width = 0, 1
        for i, item in enumerate(value):
            w = len(_go_v(item)) + (2 if i else 0)
            if width + w > 10 and i > 0:
                break
            width += w
            shown += 1
        if shown < len(value):
            return _go_v(value[:shown])[:-1] + f" ...+{len(value) - shown} more]"
        return _go_v(value)
    return "<nil>" if value is None else "map[string]interface {}"


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [[line] for line in lines[:n]]
    return [*rows, ["..."]] if len(lines) > n else rows


def show_info(info: dict[str, Any], verbose: bool = False) -> str:
    """The default ``corral show`` output: Model, Capabilities, Parameters, (Metadata, Tensors), System, License."""
    details = info.get("details") or {}
    model_info = info.get("model_info")
    rows: list[list[str]] = []
    if info.get("remote_host"):
        rows += [["Remote model", str(info.get("remote_model", ""))], ["Remote URL", str(info["remote_host"])]]
    if model_info is not None:
        arch = model_info.get("general.architecture")
        arch = arch if isinstance(arch, str) else ""
        if arch:
            rows.append(["architecture", arch])
        count = model_info.get("general.parameter_count")
        params = details.get("parameter_size") or (human_number(int(count)) if isinstance(count, (int, float)) else "")
        if params:
            rows.append(["parameters", str(params)])
        for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
            value = model_info.get(f"{arch}.{key}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append([label, _go_float(float(value), 10**9)])
    else:
        rows += [["architecture", str(details.get("family", ""))],
                 ["parameters", str(details.get("parameter_size", ""))]]
    rows.append(["quantization", str(details.get("quantization_level", ""))])
    if info.get("requires"):
        rows.append(["requires", str(info["requires"])])
    out = _table("Model", rows)
    if info.get("capabilities"):
        out += _table("Capabilities", [[str(c)] for c in info["capabilities"]])
    if info.get("parameters"):
        out += _table("Parameters", [line.split() for line in str(info["parameters"]).splitlines() if line])
    if model_info is not None and verbose:
        out += _table("Metadata", [[k, _metadata_value(model_info[k])] for k in sorted(model_info)])
    if info.get("tensors") and verbose:
        out += _table("Tensors", [[str(t.get("name", "")), str(t.get("type", "")), _go_v(t.get("shape", []))]
                                  for t in info["tensors"]])
    if info.get("system"):
        out += _table("System", _head(str(info["system"]), 2), limit=100)
    if info.get("license"):
        out += _table("License", _head(str(info["license"]), 2), limit=100)
    return "\n".join(out) + "\n"


def cmd_show(args: argparse.Namespace) -> int:
    flags = [flag for flag in ("license", "modelfile", "parameters", "template", "system") if getattr(args, flag)]
    if len(flags) > 1:
        return _error("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' "
                      "can be specified")
    client = connect()
    try:
        response = client._request_raw("POST", "/api/show", json={"model": args.model, "verbose": args.verbose})
    except ResponseError as e:
        return _error(e.error)
    info: dict[str, Any] = response.json()
    if flags:
        text = str(info.get(flags[0]) or "")
        # Ollama prints license, modelfile and parameters with a newline, system and template as they are.
        print(text, end="\n" if flags[0] in ("license", "modelfile", "parameters") else "")
        return 0
    sys.stdout.write(show_info(info, args.verbose))
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
            unload(client, name)  # first, as Ollama's CLI does
        except ResponseError as e:
            if "not found" not in e.error.lower():  # a missing model is delete's to report
                print(f"Warning: unable to stop model '{name}'", file=sys.stderr)
        try:
            client.delete(name)
        except ResponseError as e:
            return _error(e.error)
        print(f"deleted '{name}'")
    return 0
