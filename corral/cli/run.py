"""``corral run MODEL [PROMPT]``: one answer, or the interactive REPL (:mod:`corral.cli.repl`).

Ollama's ``RunHandler``, ``generate``, ``chat`` and ``loadOrUnloadModel``:

- The REPL runs only when stdin and stdout are both terminals and no prompt was given.  Piped stdin is
  read and put before the prompt's words; stdout into a pipe or file gets one answer (with no prompt the
  model is only loaded), never an invisible REPL.
- A model the server lacks is pulled first, even with empty input (``run nosuchmodel </dev/null`` fails
  as the pull does).
- One answer goes through ``/api/generate`` and ends with a blank line; the REPL talks to ``/api/chat``.
- Ctrl+C during an answer stops it: the one-shot exits 0, the REPL keeps the question in its context and
  forgets the half answer.
- ``--format`` is ``json`` or raw JSON (a schema) sent as it is; anything else is Go's marshalling error.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx

from corral.cli.common import NOT_RUNNING, connect
from corral.cli.display import ResponseView, Spinner, WordWrap, terminal_width
from corral.cli.images import FileError, extract_file_data
from corral.cli.stats import go_duration, summary
from corral.client import Client, ResponseError
from corral.gocodec import Float32Array, dumps

__all__ = ["FormatError", "RunOptions", "chat", "cmd_run", "generate", "load_model", "request_format"]


class FormatError(ValueError):
    """A ``--format`` value Go's encoding/json would refuse to send."""


@dataclass
class RunOptions:
    """What a run carries from request to request (Ollama's ``runOptions``); the REPL changes it."""

    model: str
    parent_model: str = ""
    loaded_messages: list[dict[str, Any]] = field(default_factory=list)  # the model's MESSAGE lines
    prompt: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    wordwrap: bool = True
    format: str = ""
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    multimodal: bool = False
    keep_alive: str | int | None = None
    think: bool | str | None = None
    hide_thinking: bool = False
    verbose: bool = False

    def copy(self) -> RunOptions:
        return copy.deepcopy(self)

    def apply_show(self, info: dict[str, Any]) -> None:
        """Ollama's applyShowResponseToRunOptions."""
        self.parent_model = str((info.get("details") or {}).get("parent_model") or "")
        self.loaded_messages = [dict(m) for m in info.get("messages") or []]


# --- request values --------------------------------------------------------------------------------------------

def _go_char(ch: str) -> str:
    """Go's quoteChar for a JSON syntax error."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + ch + "'" if ch.isprintable() else json.dumps(ch)


def request_format(text: str) -> Any:
    """The ``format`` to send: nothing, ``"json"``, or the raw JSON value (Ollama sends ``--format`` as a
    json.RawMessage).  Raises FormatError with encoding/json's message for text that is not JSON."""
    if text == "":
        return None
    if text == "json":
        return "json"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        prefix = "json: error calling MarshalJSON for type json.RawMessage: "
        rest = text[exc.pos:]
        if not rest.strip():
            raise FormatError(prefix + "unexpected end of JSON input") from None
        ch = rest.lstrip(" \t\r\n")[0]
        where = "after top-level value" if exc.msg == "Extra data" else "looking for beginning of value"
        raise FormatError(f"{prefix}invalid character {_go_char(ch)} {where}") from None


def keep_alive_value(text: str | None) -> str | int | None:
    """``--keepalive`` as Ollama sends it (time.ParseDuration, then api.Duration's JSON: ``-1`` when
    negative, else the Go duration string).  Raises ValueError with Go's message."""
    if text is None or text == "":
        return None
    from corral.api.duration import parse_go_duration

    ns = parse_go_duration(text)
    return -1 if ns < 0 else go_duration(ns)


def _request(opts: RunOptions, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": opts.model, **fields}
    fmt = request_format(opts.format)
    if fmt is not None:
        body["format"] = fmt
    if opts.options:
        body["options"] = opts.options
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    if opts.think is not None:
        body["think"] = opts.think
    return body


def _wire_message(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if v not in (None, "", [])}
    out.setdefault("content", "")
    if out.get("images"):
        out["images"] = [base64.b64encode(i).decode() if isinstance(i, bytes) else i for i in out["images"]]
    return out


def streamed_error(exc: ResponseError) -> ResponseError:
    """An error as Ollama's Go client words it for a streamed request (generate, chat, create): an error
    status comes with its status line (``400 Bad Request: …``); an error inside the stream comes bare."""
    if exc.status_code < 400:
        return exc
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = ""
    return ResponseError(f"{exc.status_code} {phrase}: {exc.error}", exc.status_code)


def _wraps(opts: RunOptions) -> bool:
    # Ollama wraps into a file as well, with cursor escapes in it; corral wraps only on a terminal.
    return opts.wordwrap and sys.stdout.isatty()


# --- the requests -----------------------------------------------------------------------------------------------

def show(client: Client, model: str) -> dict[str, Any]:
    """``/api/show`` as the wire JSON (the SDK's ShowResponse leaves out messages, projector info…)."""
    info = client._request_raw("POST", "/api/show", json={"model": model}).json()
    return info if isinstance(info, dict) else {}


def load_model(client: Client, opts: RunOptions) -> None:
    """Ollama's loadOrUnloadModel: the spinner while the model loads (an empty generate request, with
    ``think`` so that a model without thinking fails here, before the prompt).  Raises ResponseError."""
    spinner = Spinner()
    try:
        info = show(client, opts.model)
        if info.get("remote_host"):
            return  # a remote model has nothing to load here
        body: dict[str, Any] = {"model": opts.model, "stream": False}
        if opts.keep_alive is not None:
            body["keep_alive"] = opts.keep_alive
        if opts.think is not None:
            body["think"] = opts.think
        try:
            client._request_raw("POST", "/api/generate", json=body)
        except ResponseError as exc:
            raise streamed_error(exc) from None
    finally:
        spinner.stop()


def chat(client: Client, opts: RunOptions) -> dict[str, Any] | None:
    """Stream one REPL answer to ``opts.messages``; the assistant message, or None when Ctrl+C cut it."""
    spinner = Spinner()
    view = ResponseView(wrap=_wraps(opts), hide_thinking=opts.hide_thinking, plain=False, chat=True,
                        spinner=spinner)
    body = _request(opts, messages=[_wire_message(m) for m in opts.messages], stream=True)
    stream = client._request(dict, "POST", "/api/chat", json=body, stream=True)
    latest: dict[str, Any] = {}
    role = "assistant"
    try:
        for part in stream:
            latest = part
            message = part.get("message") or {}
            role = message.get("role") or role
            view.feed(message.get("thinking") or "", message.get("content") or "", message.get("tool_calls"))
    except ResponseError as exc:
        raise streamed_error(exc) from None
    except KeyboardInterrupt:
        stream.close()  # the server sees the disconnect and stops generating
        return None
    finally:
        spinner.stop()
    if opts.messages:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if opts.verbose:
        sys.stderr.write(summary(latest))
    answer = {"role": role, "content": view.content}
    if view.thinking:
        answer["thinking"] = view.thinking
    return answer


def generate(client: Client, opts: RunOptions) -> None:
    """One answer to ``opts.prompt`` (Ollama's ``generate``): plain thinking text when stdout is not a
    terminal, a blank line after the answer, the stats with ``--verbose``.  Ctrl+C ends it quietly."""
    prompt, images = opts.prompt, list[bytes]()
    if opts.multimodal:
        prompt, images = extract_file_data(prompt)
    spinner = Spinner()
    view = ResponseView(wrap=_wraps(opts), hide_thinking=opts.hide_thinking, plain=not sys.stdout.isatty(),
                        chat=False, spinner=spinner)
    fields: dict[str, Any] = {"prompt": prompt, "stream": True}
    if images:
        fields["images"] = [base64.b64encode(i).decode() for i in images]
    if opts.system:
        fields["system"] = opts.system
    stream = client._request(dict, "POST", "/api/generate", json=_request(opts, **fields), stream=True)
    latest: dict[str, Any] = {}
    try:
        for part in stream:
            latest = part
            view.feed(part.get("thinking") or "", part.get("response") or "", part.get("tool_calls"))
    except ResponseError as exc:
        raise streamed_error(exc) from None
    except KeyboardInterrupt:
        stream.close()
        return
    finally:
        spinner.stop()
    if opts.prompt:
        sys.stdout.write("\n\n")
        sys.stdout.flush()
    if latest.get("done") and opts.verbose:
        sys.stderr.write(summary(latest))


# --- the command ------------------------------------------------------------------------------------------------

def _show_or_pull(client: Client, model: str, insecure: bool) -> dict[str, Any] | None:
    """The model's show response, pulling it first when the server lacks it; None (error printed) when
    the pull fails."""
    try:
        return show(client, model)
    except ResponseError as exc:
        if exc.status_code != 404:
            raise
    from corral.cli.transfer import pull_with_progress

    if pull_with_progress(client, model, insecure=insecure) != 0:
        return None
    return show(client, model)


def infer_think(capabilities: list[str], opts: RunOptions, explicit: bool) -> bool | str | None:
    """Ollama's inferThinkingOption: the user's choice, else on for a model that can think, else unset."""
    if explicit:
        return opts.think
    return True if "thinking" in capabilities else None


def is_multimodal(info: dict[str, Any]) -> bool:
    capabilities = info.get("capabilities") or []
    if "vision" in capabilities or "audio" in capabilities or info.get("projector_info"):
        return True
    return any(".vision." in key for key in info.get("model_info") or {})


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    return data.decode("utf-8", errors="replace")


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ResponseError as exc:
        print(f"Error: {exc.error}", file=sys.stderr)
    except (ValueError, FileError) as exc:  # a --format or --keepalive Go refuses, a file that can't be attached
        print(f"Error: {exc}", file=sys.stderr)
    except ConnectionError:
        # the SDK's own words point at Ollama's download page; the server went away, say so
        print(f"Error: {NOT_RUNNING}", file=sys.stderr)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        print("Error: unexpected EOF", file=sys.stderr)  # the answer was cut: the server died mid-stream
    except httpx.HTTPError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    think = getattr(args, "think", None)
    opts = RunOptions(
        model=args.model,
        format=args.format or "",
        think=think,
        hide_thinking=bool(getattr(args, "hidethinking", False)),
        keep_alive=keep_alive_value(args.keepalive),
        wordwrap=not args.nowordwrap,
        verbose=bool(args.verbose),
    )
    request_format(opts.format)  # refuse what cannot be sent before loading anything

    interactive = True
    prompts = list(args.prompt)
    if not sys.stdin.isatty():
        piped = _read_stdin()
        if piped:
            prompts.insert(0, piped)
        interactive = False
    opts.prompt = " ".join(prompts)
    if prompts or not sys.stdout.isatty():
        interactive = False

    client = connect()
    info = _show_or_pull(client, opts.model, bool(getattr(args, "insecure", False)))
    if info is None:
        return 1
    capabilities = [str(c) for c in info.get("capabilities") or []]
    opts.think = infer_think(capabilities, opts, think is not None)
    opts.multimodal = is_multimodal(info)
    opts.apply_show(info)

    if "embedding" in capabilities:
        return _embed(client, args, opts.prompt)
    if "image" in capabilities:
        print("Error: image generation models are not currently supported", file=sys.stderr)
        return 1
    if not interactive:
        generate(client, opts)
        return 0

    load_model(client, opts)
    _replay(opts)
    from corral.cli.repl import Repl

    return Repl(client, opts, think_explicit=think is not None).run()


def _replay(opts: RunOptions) -> None:
    """A model made with MESSAGE lines shows them before the first prompt (the server sends them along)."""
    for message in opts.loaded_messages:
        if message.get("role") == "user":
            print(f">>> {message.get('content', '')}")
        elif message.get("role") == "assistant":
            text = WordWrap().render(str(message.get("content", "")), _wraps(opts), terminal_width())
            sys.stdout.write(text + "\n\n")
    sys.stdout.flush()


def _embed(client: Client, args: argparse.Namespace, prompt: str) -> int:
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
