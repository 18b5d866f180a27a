"""Property-based fuzzing of every route (issue 17, "Fuzzing in CI"): structurally valid JSON bodies whose
fields hold hostile values (wrong types everywhere, huge and negative numbers, empty and enormous strings,
unicode and lone surrogates, deep nesting, junk ``options``, ``format``, ``tools``, ``messages``, ``images``).

For every example, against a real ``corral serve`` on the real engine (a server of this module's own):

- no 5xx that the client caused. The only 5xx allowed are listed in :data:`ALLOWED_5XX`: a transfer that
  cannot reach its registry answers 500, as Ollama does (the fuzz server's registry, and any other host,
  is a closed local port, so nothing leaves the machine);
- an error answer is the family's JSON error envelope, and no answer or log line holds a traceback;
- the server is alive, no runner died, and the runner that served the model before still serves it (same
  pid) unless the example asked for a reload (load options, ``keep_alive``);
- a refused request (a 4xx, a 5xx, or a stream that ends with an error) leaves the store as it was: the
  same files under ``manifests/`` and ``blobs/``, same sizes and times.

Generation is kept cheap: ``num_predict`` (and each family's max-tokens field) is forced to 1 in most
examples, and the server's context is 512 tokens. Examples are derandomized (CI sees the same ones every
run); ``CORRAL_FUZZ_EXAMPLES=N`` runs N examples per route instead of the default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from corral.api.options import LOAD_OPTIONS
from corral.store.testing import make_temp_store
from tests import fuzz_bodies as fb
from tests.fuzz_bodies import MODEL, TOOLS_MODEL, Deep, hostile_bodies
from tests.servers import CorralServer, child_pids, runner_pids, wait_until

pytestmark = [pytest.mark.slow,
              # hypothesis warns when an example's repr is long; enormous strings are the point here
              pytest.mark.filterwarnings("ignore:Generating overly large repr")]

TOOLS_TEMPLATE = """{{- if .Messages }}{{ if or .System .Tools }}<|im_start|>system
{{ .System }}{{ if .Tools }}
Tools: {{ range .Tools }}{{ json . }}
{{ end }}{{ end }}<|im_end|>
{{ end }}{{ range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}
{{- if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ json .Function.Arguments }}}
{{ end }}</tool_call>{{ end }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>{{ end }}{{ else }}{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}"""
CLOSED = "http://127.0.0.1:9"  # nothing listens there: every registry (and any proxied host) fails at once
DEFAULT_EXAMPLES = 25
EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
TIMEOUT = max(300, 5 * EXAMPLES)  # pytest-timeout's, per test: a long run takes long (embedding examples most)

# The 5xx a client may get, by route: the transfer errors Ollama answers with a 500 (its ``waitForStream``), kept
# for compatibility (tests/test_registry_server.py::test_api_errors pins them):
# - the registry cannot be reached (the fuzz server's registry, and any other host, is a closed port): the
#   server, not the request, is at fault;
# - an ``http://`` name without ``insecure`` ("insecure protocol http", Ollama's errInsecureProtocol).
# A create whose ``from`` is missing pulls it first, and fails as that pull does.
TRANSFER_500 = re.compile(r"^(pull model manifest: )?(cannot reach registry |insecure protocol http$)")
ALLOWED_5XX: dict[str, re.Pattern[str]] = {
    "/api/pull": TRANSFER_500,
    "/api/push": TRANSFER_500,
    "/api/create": TRANSFER_500,
}


# --- the server ---------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Fuzzed:
    server: CorralServer
    client: httpx.Client
    model_digest: str
    """MODEL's weights (``files`` maps may name them, to get past the check that a blob exists)."""
    anchor: list[str]
    """The command line of the runner that serves plain requests for MODEL (to find it again)."""
    anchor_pid: int = 0

    def __repr__(self) -> str:
        return f"Fuzzed({self.server.url})"


def _cmdline(pid: int) -> list[str]:
    """A runner's command line, less the number of its channel's descriptor (which varies between loads of
    the same runner: what identifies one is its model and load options)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []
    if "--fd" in argv[:-1]:
        del argv[argv.index("--fd"):argv.index("--fd") + 2]
    return argv


def _runners_of(server: CorralServer) -> dict[int, list[str]]:
    assert server.proc is not None
    live = set(runner_pids(server.models))
    return {p: _cmdline(p) for p in child_pids(server.proc.pid) if p in live}


def _anchor(fz: Fuzzed) -> None:
    """Make sure the plain runner of MODEL is loaded for a long time, and note its pid."""
    r = fz.client.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "keep_alive": "24h",
                                              "options": {"num_predict": 1}})
    assert r.status_code == 200, r.text
    if not fz.anchor:
        found = _runners_of(fz.server)
        assert len(found) == 1, found
        [(fz.anchor_pid, fz.anchor)] = found.items()
        return
    found = {p: argv for p, argv in _runners_of(fz.server).items() if argv == fz.anchor}
    assert len(found) == 1, (found, fz.anchor)
    [fz.anchor_pid] = found


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    store = make_temp_store(root, names=[MODEL])
    home = root / "home"
    home.mkdir()
    env = {
        "CORRAL_REGISTRY": CLOSED,
        # any other registry host goes through a proxy that is not there: a name like evil.example/a/b
        # fails at once, without a DNS lookup (127.0.0.1 and localhost stay direct, see NO_PROXY)
        "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED, "ALL_PROXY": CLOSED,
        "http_proxy": CLOSED, "https_proxy": CLOSED, "all_proxy": CLOSED,
        "HOME": str(home), "CORRAL_REGISTRY_AUTH_FILE": str(home / "no-credentials.json"),
        "OLLAMA_CONTEXT_LENGTH": "256", "OLLAMA_NUM_PARALLEL": "1", "OLLAMA_KEEP_ALIVE": "24h",
        "OLLAMA_MAX_LOADED_MODELS": "3", "CORRAL_TEMPLATE_TIMEOUT": "2",
    }
    srv = CorralServer(models=store.root, env=env).start()
    client = httpx.Client(base_url=srv.url, timeout=120)
    r = client.post("/api/create", json={"model": TOOLS_MODEL, "from": MODEL, "template": TOOLS_TEMPLATE,
                                         "stream": False})
    assert r.status_code == 200, r.text
    assert {"tools", "thinking"} <= set(client.post("/api/show", json={"model": TOOLS_MODEL}).json()["capabilities"])
    layer = store.get(MODEL).model_layer
    assert layer is not None
    fz = Fuzzed(server=srv, client=client, model_digest=layer.digest, anchor=[])
    try:
        _anchor(fz)
        yield fz
    finally:
        client.close()
        srv.stop()


# --- overlays: keep generation cheap and the runner put ----------------------------------------------------------

# each family's limit on generated tokens
MAX_TOKENS = {"/v1/chat/completions": ("max_tokens", "max_completion_tokens"), "/v1/completions": ("max_tokens",),
              "/v1/responses": ("max_output_tokens",), "/v1/messages": ("max_tokens",)}
INFERENCE = {"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show", *MAX_TOKENS,
             "/api/tokenize", "/api/detokenize",
             "/v1/embeddings", "/v1/messages/count_tokens"}


@dataclass
class Overlay:
    cheap: bool
    """Force one generated token; else the fuzzed num_predict and max-tokens stand, and the answer is streamed
    and left after its first lines (a fuzzed -1 would let a rambling model run on)."""
    reload: bool
    """Keep the fuzzed load options and keep_alive (else they are removed)."""


# a reload costs a model load or two (seconds): one example in 30 keeps what may cause one
overlays = st.builds(Overlay, st.integers(0, 9).map(lambda n: n != 0), st.integers(0, 29).map(lambda n: n == 0))
GENERATING = {"/api/generate", "/api/chat", *MAX_TOKENS}


def apply(route: str, body: Any, ov: Overlay) -> tuple[Any, bool]:
    """The body to send, and whether to leave its stream early."""
    if not isinstance(body, dict) or route not in INFERENCE:
        return body, False
    body = {k: v for k, v in body.items() if ov.reload or not (isinstance(k, str) and k.lower() == "keep_alive")}
    opts = body.get("options")
    if isinstance(opts, dict) and not ov.reload:
        opts = {k: v for k, v in opts.items() if k not in LOAD_OPTIONS}
    if opts is None:
        opts = {}
    if isinstance(opts, dict) and ov.cheap:
        opts = {**opts, "num_predict": 1}
        body = {k: v for k, v in body.items() if k == "options" or not (isinstance(k, str) and k.lower() == "options")}
    body["options"] = opts
    if ov.cheap:
        for key in MAX_TOKENS.get(route, ()):
            body[key] = 1
        if isinstance(body.get("n"), int):
            body["n"] = min(body["n"], 2)
        return body, False
    if route in GENERATING:
        body = {k: v for k, v in body.items() if not (isinstance(k, str) and k.lower() == "stream")}
        body["stream"] = True
        return body, True
    return body, False


def may_reload(body: Any) -> bool:
    """Whether the request may legitimately replace or unload the runner: a keep_alive, or a load option."""
    if not isinstance(body, dict):
        return False
    for k, v in body.items():
        if not isinstance(k, str):
            continue
        if k.lower() == "keep_alive":
            return True
        if k.lower() == "options" and isinstance(v, dict) and LOAD_OPTIONS & set(v):
            return True
    return False


def encode(body: Any, model_digest: str) -> bytes:
    deep: list[Deep] = []

    def default(value: Any) -> Any:
        if isinstance(value, Deep):
            deep.append(value)
            return f"\x00DEEP{len(deep) - 1}\x00"
        raise TypeError(type(value).__name__)

    text = json.dumps(body, default=default).replace('"MODEL_DIGEST"', json.dumps(model_digest))
    for i, d in enumerate(deep):
        text = text.replace(json.dumps(f"\x00DEEP{i}\x00"), d.text(), 1)
    return text.encode()


# --- invariants ----------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, object]:
    """Every file under ``manifests/`` (with its bytes) and ``blobs/`` (with its size: a blob's name is its
    digest). Not the times: a create refreshes the mtime of the blobs it reuses, as Ollama does, and the
    test stores hard-link the bundled weights, whose inode other stores share."""
    out: dict[str, object] = {}
    for top in ("manifests", "blobs"):
        for dirpath, _dirs, files in os.walk(root / top):
            for name in files:
                path = Path(dirpath) / name
                try:
                    out[str(path.relative_to(root))] = path.read_bytes() if top == "manifests" else path.stat().st_size
                except FileNotFoundError:
                    continue
    return out


def _error_of(payload: Any) -> str | None:
    """The error message of a family's error envelope, or None when ``payload`` is not one."""
    if not isinstance(payload, dict):
        return None
    err = payload.get("error")
    if isinstance(err, str):
        return err
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])
    return None


def stream_error(text: str) -> str | None:
    """The error a 200 stream ended with (NDJSON or SSE), if any."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line or not line.startswith("{"):
            continue
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get("type") == "response.failed":
            return str(payload)
        return _error_of(payload)
    return None


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|unhandled error on|\bFile \"/[^\"]+\.py\", line \d+")


def send(client: httpx.Client, method: str, path: str, content: bytes, partial: bool) -> tuple[int, str]:
    """(status, body text). ``partial``: read the first lines of a stream and leave (the server stops)."""
    headers = {"Content-Type": "application/json"}
    if not partial:
        r = client.request(method, path, content=content, headers=headers)
        return r.status_code, r.text
    with client.stream(method, path, content=content, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, r.text
        lines: list[str] = []
        for line in r.iter_lines():
            lines.append(line)
            if sum(1 for ln in lines if ln.strip()) >= 4:
                break
        return r.status_code, "\n".join(lines)


def exercise(fz: Fuzzed, method: str, path: str, route: str, body: Any, content: bytes | None = None,
             param: str = "", partial: bool = False) -> None:
    server, client = fz.server, fz.client
    store_root = server.models
    before = snapshot(store_root)
    log_from = len(server.log())
    reload_ok = may_reload(body)
    if content is None:
        content = encode(body, fz.model_digest)
    try:
        status, text = send(client, method, path, content, partial)
    except httpx.HTTPError as exc:
        pytest.fail(f"{method} {path}: no answer ({exc!r}); server log:\n{server.log()[log_from:][-3000:]}")
    what = f"{method} {path} {content[:600]!r} -> {status} {text[:600]!r}"
    unroutable = any(c in param for c in "/\r\n")

    # the answer: no 5xx the client caused, no traceback, an error in the family's envelope
    error: str | None = None
    if status == 404 and text == "404 page not found" and unroutable:
        return  # the router's own answer, as Ollama's: a path parameter with "/" or a line break matches no route
    if status >= 400 and method != "HEAD":
        try:
            payload = json.loads(text)
        except ValueError:
            pytest.fail(f"an error that is not JSON: {what}")
        error = _error_of(payload)
        assert error is not None, f"an error outside the envelope: {what}"
    elif status == 200 and method != "HEAD":
        error = stream_error(text)
    if currently_in_test_context():
        event(f"{status} {(error or '')[:40]}")  # --hypothesis-show-statistics shows how far examples get
    if status >= 500:
        allowed = ALLOWED_5XX.get(route)
        assert allowed is not None and error is not None and allowed.search(error), f"a 5xx: {what}"
    assert not TRACEBACK.search(text), f"a traceback in the answer: {what}"

    # the server, its log and its runner
    assert server.proc is not None and server.proc.poll() is None, f"the server died: {what}\n{server.log()[-3000:]}"
    assert client.get("/").status_code == 200
    log = server.log()[log_from:]
    assert not TRACEBACK.search(log), f"a traceback in the log: {what}\n{log[-5000:]}"
    assert not re.search(r"runner \d+ ended", log), f"a runner died: {what}\n{log[-3000:]}"
    if reload_ok:
        _anchor(fz)  # a reload or an unload was allowed: load the plain runner again, for the next examples
    else:
        assert fz.anchor_pid in _runners_of(server), f"the runner went away: {what}\n{log[-3000:]}"

    # a refused request leaves the store as it was
    refused = status >= 400 or error is not None
    if refused:
        after = snapshot(store_root)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"a refused request changed the store {changed[:10]}: {what}"


# --- the routes ----------------------------------------------------------------------------------------------

JSON_ROUTES: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "/api/generate": ("POST", fb.generate),
    "/api/chat": ("POST", fb.chat),
    "/api/embed": ("POST", fb.embed),
    "/api/embeddings": ("POST", fb.embeddings),
    "/api/tokenize": ("POST", fb.tokenize),
    "/api/detokenize": ("POST", fb.detokenize),
    "/api/show": ("POST", fb.show),
    "/api/create": ("POST", fb.create),
    "/api/copy": ("POST", fb.copy),
    "/api/delete": ("DELETE", fb.delete),
    "/api/pull": ("POST", fb.pull),
    "/api/push": ("POST", fb.push),
    "/v1/chat/completions": ("POST", fb.chat_completions),
    "/v1/completions": ("POST", fb.completions),
    "/v1/embeddings": ("POST", fb.oa_embeddings),
    "/v1/responses": ("POST", fb.responses),
    "/v1/messages": ("POST", fb.an_messages_body),
    "/v1/messages/count_tokens": ("POST", fb.an_count),
}

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("route", list(JSON_ROUTES))
@SETTINGS
@given(data=st.data())
def test_hostile_bodies(fuzzed: Fuzzed, route: str, data: st.DataObject) -> None:
    method, objects = JSON_ROUTES[route]
    body = data.draw(hostile_bodies(route, objects), label="body")
    body, partial = apply(route, body, data.draw(overlays, label="overlay"))
    exercise(fuzzed, method, route, route, body, partial=partial)


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(data=st.data())
def test_hostile_blob_uploads(fuzzed: Fuzzed, data: st.DataObject) -> None:
    content = data.draw(st.one_of(st.binary(max_size=256), st.builds(lambda n: os.urandom(n),
                                                                      st.sampled_from([65536, 2_000_000]))),
                        label="content")
    digest = data.draw(st.one_of(st.just("sha256:" + hashlib.sha256(content).hexdigest()),
                                 st.just("sha256-" + hashlib.sha256(content).hexdigest().upper()), fb.digests),
                       label="digest")
    path = "/api/blobs/" + (quote(digest, safe="", errors="surrogatepass").replace(".", "%2E") or "x")
    method = data.draw(st.sampled_from(["POST", "POST", "HEAD"]), label="method")
    exercise(fuzzed, method, path, "/api/blobs", None, content=content if method == "POST" else b"", param=digest)


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(name=fb.weighted((3, fb.short_names), (1, fb.texts)).filter(bool))
def test_hostile_model_lookups(fuzzed: Fuzzed, name: str) -> None:
    # every character escaped, dots too (a client would otherwise resolve ".."), lone surrogates as the bytes
    # Python would write for them (not UTF-8)
    path = "/v1/models/" + quote(name, safe="", errors="surrogatepass").replace(".", "%2E")
    exercise(fuzzed, "GET", path, "/v1/models", None, content=b"", param=name)


# What the fuzz found, kept as plain cases (each failed before its fix): (route, body, the status it answers).
FOUND = [
    # an embedding's num_ctx under 64 crashed the runner llama.cpp was asked to start (its batch, which is
    # its context, could not hold one output per packed input): a 500, "signal: aborted"
    ("/api/embed", {"model": MODEL, "input": ["hi", "there"], "options": {"num_ctx": 1}}, 200),
    ("/api/embed", {"model": MODEL, "input": [], "truncate": False, "options": {"num_ctx": 63}}, 200),
    ("/v1/embeddings", {"model": MODEL, "input": "hi", "options": {"num_ctx": 8}}, 200),
    # /v1's top_logprobs went unchecked into the native request, whose check then failed as a 500 that
    # quoted pydantic
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                              "top_logprobs": 2147483647, "max_tokens": 1}, 400),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                              "top_logprobs": -1, "logprobs": True, "max_tokens": 1}, 400),
    # and /v1/completions' integer logprobs, which is the native top_logprobs
    ("/v1/completions", {"model": MODEL, "prompt": "hi", "logprobs": -(10**30), "max_tokens": 1}, 400),
    ("/v1/completions", {"model": MODEL, "prompt": "hi", "logprobs": 21, "max_tokens": 1}, 400),
]


@pytest.mark.parametrize(("route", "body", "status"), FOUND)
def test_what_fuzzing_found(fuzzed: Fuzzed, route: str, body: dict[str, Any], status: int) -> None:
    content = encode(body, fuzzed.model_digest)
    r = fuzzed.client.post(route, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    exercise(fuzzed, "POST", route, route, body)  # and every invariant of the fuzz


def test_the_fuzzed_server_still_serves(fuzzed: Fuzzed) -> None:
    """After everything above: the same runner answers, and the store holds MODEL whole."""
    r = fuzzed.client.post("/api/chat", json={"model": MODEL, "stream": False, "options": {"num_predict": 2},
                                              "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["done"] is True, r.text
    wait_until(lambda: fuzzed.anchor_pid in _runners_of(fuzzed.server), timeout=5, what="the anchored runner")
    assert not TRACEBACK.search(fuzzed.server.log())
    assert fuzzed.client.post("/api/show", json={"model": MODEL}).status_code == 200
