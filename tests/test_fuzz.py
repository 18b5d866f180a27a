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

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from corral.api.options import DEPRECATED_OPTIONS, LOAD_OPTIONS, OPTION_TYPES
from corral.store.testing import make_temp_store
from tests.servers import CorralServer, child_pids, runner_pids, wait_until

pytestmark = [pytest.mark.slow,
              # hypothesis warns when an example's repr is long; enormous strings are the point here
              pytest.mark.filterwarnings("ignore:Generating overly large repr")]

MODEL = "smollm2:135m"
TOOLS_MODEL = "fuzz-tools"  # the same weights, with a template that renders tools, tool calls and thinking
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


# --- values -------------------------------------------------------------------------------------------------
# Bodies are built in two steps: a body of the route's own shape whose every value has the right JSON type
# (extreme ones included: huge and negative numbers, empty and enormous strings, any unicode), then a few
# mutations that put a hostile value (another type, junk, deep nesting) at random places anywhere in it. So
# most examples get past decoding into the pipeline with one or two things wrong, rather than stopping at
# the first field. (hypothesis' ``one_of`` merges equal branches, so weights are explicit here.)


def weighted(*branches: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    total = sum(w for w, _ in branches)

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        n = draw(st.integers(0, total - 1))
        for w, strategy in branches:
            if n < w:
                return draw(strategy)
            n -= w
        raise AssertionError("unreachable")

    return pick()


BIG_INTS = [2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, 10**30,
            -1, -2, -(2**31), -(2**63), -(2**63) - 1, -(10**30)]
BIG_FLOATS = [1e308, -1e308, 5e-324, -0.0, 0.5, -0.5, 1e-30, 3.4028235e38, 1.7976931348623157e308, 2.0**63]

ints = weighted((3, st.integers(0, 8)), (2, st.sampled_from(BIG_INTS)), (1, st.integers()))
floats = weighted((2, st.floats(0, 2)), (2, st.sampled_from(BIG_FLOATS)), (1, st.floats(allow_nan=False,
                                                                                        allow_infinity=False)))
numbers = weighted((1, ints), (1, floats))

ODD_TEXT = ["", " ", "\x00", "\ufffd", "\u202e", "\ud800", "\udfff", "😀", "\r\n", "null", "true", "0", "-1",
            "{{ .Prompt }}", "{{ range .Messages }}{{ .Content }}{{ end }}", "{{", "}}", "{{ end }}",
            "{% for m in messages %}", "<|im_start|>", "<|im_end|>", "</s>", "<think>", "../../etc/passwd",
            "/", "a/b/c/d/e", "sha256:", "%00", "%", "\\", "'", '"', "\t", "hi"]


def _huge(unit: str, n: int) -> str:
    return unit * (n // len(unit))


texts = weighted((3, st.text(max_size=20)), (3, st.sampled_from(ODD_TEXT)),
                 (1, st.text(st.characters(codec=None, categories=["Cs", "Cc", "Co", "Zs", "Mn", "So"]),
                             max_size=10)))
huge_texts = st.builds(_huge, st.sampled_from(["a", "é", "😀", "\x00", "{{", " ", "\ud800", "word "]),
                       st.sampled_from([4096, 100_000, 1_000_000]))
strings = weighted((15, texts), (1, huge_texts))


class Deep:
    """A value nested ``depth`` levels deep, written by :func:`encode` (json.dumps would recurse)."""

    def __init__(self, depth: int, kind: str) -> None:
        self.depth, self.kind = depth, kind

    def __repr__(self) -> str:
        return f"Deep({self.depth}, {self.kind!r})"

    def text(self) -> str:
        if self.kind == "list":
            return "[" * self.depth + "]" * self.depth
        return '{"a":' * self.depth + "1" + "}" * self.depth


deep = st.builds(Deep, st.sampled_from([64, 1_000, 100_000]), st.sampled_from(["list", "dict"]))
scalars = weighted((1, st.none()), (1, st.booleans()), (2, numbers), (3, strings))
junk = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(texts, inner, max_size=3)), max_leaves=6)
hostile = weighted((6, junk), (1, deep))
not_objects = weighted((2, st.lists(junk, max_size=3)), (2, scalars), (1, deep))


def obj(optional: dict[str, st.SearchStrategy[Any]],
        required: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required or {}, optional=optional)


def lists(inner: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    return st.lists(inner, max_size=max_size)


# names: the model (mostly: the request should reach it), its spellings, and odd ones
ODD_NAMES = [MODEL.upper(), "smollm2", "smollm2:latest", f"registry.ollama.ai/library/{MODEL}", f"library/{MODEL}",
             "fuzz-made", "fuzz/made:tag", "evil.example/ns/model:tag", "127.0.0.1:9/ns/model",
             "http://evil.example/ns/m", "https://registry.ollama.ai/library/x", "a" * 300, "x:" + "y" * 200,
             "ns/", "/m", ":t", "m:", "m@sha256:" + "0" * 64, "..", "../../x", "m/../../x", "a/b/c/d", "m:t:t",
             "M\u0130", "m\x00"]
short_names = weighted((4, st.just(MODEL)), (1, st.just(TOOLS_MODEL)), (3, st.sampled_from(ODD_NAMES)), (2, texts))
names = weighted((12, short_names), (1, huge_texts))
# where the model is what the request runs on, it is mostly one of the store's: the examples should get that far
models = weighted((7, st.just(MODEL)), (4, st.just(TOOLS_MODEL)), (2, st.sampled_from(ODD_NAMES)), (1, texts),
                  (1, huge_texts))
# names a create, copy or pull may write: valid ones mostly
new_names = st.from_regex(r"(fuzz/)?[a-z][a-z0-9._-]{0,10}(:[a-z0-9_]{1,6})?", fullmatch=True)


def _unprotected(value: Any) -> Any:
    """A target of create/copy/delete/pull never names the store's models: the fuzz must not remove or replace
    what it runs on."""
    if isinstance(value, str):
        for name in ("smollm2", TOOLS_MODEL):
            if name in value.lower():
                value = value.lower().replace(name, "fuzzed")
    return value


targets = weighted((4, new_names), (2, st.sampled_from(ODD_NAMES)), (1, texts), (1, huge_texts)).map(_unprotected)

b64 = weighted(
    (3, st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode())),
    (3, st.sampled_from(["", "=", "====", "not base64!", "aGk", "aGk=\n", "data:image/png;base64,aGk=",
                         base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode(),
                         base64.b64encode(b"GIF89a" + b"\xff" * 16).decode()])),
    (1, st.builds(lambda n: base64.b64encode(b"\0" * n).decode(), st.sampled_from([100_000, 1_000_000]))),
)
images = lists(b64)
durations = weighted((3, st.sampled_from(["5m", "0", "-1", "-1s", "1ms", "24h", "1d", "x", "1e9h", "9999999999h",
                                          "", "1.5s", "nan", "-9223372036854775808ns"])), (2, numbers))


def _option_value(kind: str) -> st.SearchStrategy[Any]:
    return {"int": ints, "float": floats, "bool": st.booleans(),
            "strings": lists(weighted((2, texts), (1, st.sampled_from(["\n", "<|im_end|>", "", "a" * 10_000]))))
            }[kind]


options = obj({**{k: _option_value(kind) for k, kind in OPTION_TYPES.items()},
               **{k: junk for k in sorted(DEPRECATED_OPTIONS)[:4]}, "grammar": texts, "unknown_option": junk})

schema_types = st.sampled_from(["object", "array", "string", "number", "integer", "boolean", "null", "any", "",
                                "Object"])


def _schema(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return obj({"type": st.one_of(schema_types, lists(schema_types)),
                "properties": st.dictionaries(texts, inner, max_size=3), "items": inner,
                "required": lists(texts), "enum": lists(scalars), "const": scalars, "anyOf": lists(inner),
                "oneOf": lists(inner, 2), "allOf": lists(inner, 2),
                "$ref": st.sampled_from(["#", "#/$defs/a", "#/x", "http://x", "#/properties/a"]),
                "$defs": st.dictionaries(st.just("a"), inner, max_size=1), "minItems": ints, "maxItems": ints,
                "minLength": ints, "maxLength": ints, "minimum": numbers, "maximum": numbers,
                "pattern": st.sampled_from(["^a+$", "(", "[", "a{1000000}", ".*", "\\"]), "format": texts,
                "additionalProperties": st.one_of(st.booleans(), inner)})


schemas = st.recursive(st.just({}), _schema, max_leaves=5)
formats = weighted((1, st.sampled_from(["json", "", "yaml", "JSON", "json_object"])), (3, schemas))

tool_property = st.recursive(
    obj({"type": st.one_of(schema_types, lists(schema_types, 2)), "description": texts, "enum": lists(scalars)}),
    lambda inner: obj({"type": schema_types, "items": inner, "properties": st.dictionaries(texts, inner, max_size=2),
                       "anyOf": lists(inner, 2), "required": lists(texts, 2)}),
    max_leaves=4)
tool_parameters = obj({"type": schema_types, "properties": st.dictionaries(texts, tool_property, max_size=3),
                       "required": lists(texts), "$defs": junk, "items": junk})
tools = lists(obj({"type": st.sampled_from(["function", "", "custom", "web_search"]),
                   "function": obj({"name": texts, "description": strings, "parameters": tool_parameters})}))
tool_calls = lists(obj({"id": texts, "function": obj({"name": texts, "index": ints,
                                                      "arguments": st.dictionaries(texts, junk, max_size=3)})}), 2)
roles = weighted((8, st.sampled_from(["user", "assistant", "system", "tool", "USER", "developer", ""])), (1, texts))
arguments = weighted((3, st.dictionaries(texts, scalars, max_size=3).map(json.dumps)), (1, texts))
messages = lists(obj({"role": roles, "content": strings, "thinking": texts, "images": images,
                      "tool_calls": tool_calls, "tool_name": texts, "tool_call_id": texts}), 4)
contexts = lists(ints, 8)
think = weighted((3, st.booleans()), (1, st.sampled_from(["low", "medium", "high", "max", "none", ""])))
small_ints = weighted((4, st.integers(0, 20)), (1, ints))
efforts = weighted((3, st.sampled_from(["low", "medium", "high", "minimal", "none", "max"])), (1, texts))
inference = {"stream": st.booleans(), "format": formats, "keep_alive": durations, "options": options, "think": think,
             "truncate": st.booleans(), "shift": st.booleans(), "_debug_render_only": st.booleans(),
             "logprobs": st.booleans(), "top_logprobs": small_ints}

# --- OpenAI and Anthropic shapes -----------------------------------------------------------------------------

part_types = weighted((6, st.sampled_from(["text", "image_url"])), (1, st.sampled_from(["input_audio", "file", ""])))
oa_parts = lists(obj({"type": part_types, "text": strings,
                      "image_url": st.one_of(b64.map(lambda s: "data:image/png;base64," + s),
                                             obj({"url": st.one_of(texts, b64)}), texts),
                      "input_audio": obj({"data": b64, "format": texts})}))
oa_messages = st.lists(obj({"name": texts, "tool_call_id": texts, "reasoning": texts, "reasoning_content": texts,
                         "tool_calls": lists(obj({"id": texts, "index": ints, "type": texts,
                                                  "function": obj({"name": texts, "arguments": arguments})}),
                                            2)},
                           {"role": roles, "content": st.one_of(strings, oa_parts)}),
                       min_size=1, max_size=4)
oa_tool_choice = st.one_of(st.sampled_from(["auto", "none", "required", "any", ""]),
                           obj({"type": texts, "function": obj({"name": texts}), "name": texts}))
oa_common = {"options": options, "keep_alive": durations, "seed": ints, "temperature": numbers,
             "top_p": numbers, "frequency_penalty": numbers, "presence_penalty": numbers,
             "stop": st.one_of(texts, lists(st.one_of(texts, ints))), "stream": st.booleans(),
             "stream_options": obj({"include_usage": st.booleans()}), "n": small_ints,
             "_debug_render_only": st.booleans()}
chat_completions = obj({**oa_common, "max_tokens": ints, "max_completion_tokens": ints,
                        "response_format": obj({"type": st.sampled_from(["json_object", "json_schema", "text", ""]),
                                                "json_schema": obj({"name": texts, "schema": schemas,
                                                                    "strict": st.booleans()})}),
                        "tools": tools, "tool_choice": oa_tool_choice, "parallel_tool_calls": st.booleans(),
                        "reasoning": obj({"effort": efforts}), "reasoning_effort": efforts,
                        "logprobs": st.booleans(), "top_logprobs": small_ints},
                       {"model": models, "messages": oa_messages})
completions = obj({**oa_common, "suffix": texts, "max_tokens": ints, "logprobs": ints, "echo": st.booleans()},
                  {"model": models, "prompt": weighted((6, strings), (1, lists(strings, 2)), (1, contexts))})
oa_embeddings = obj({"dimensions": ints, "encoding_format": st.sampled_from(["float", "base64", ""]), "user": texts,
                     "options": options, "keep_alive": durations},
                    {"model": models, "input": weighted((3, strings), (3, lists(strings)), (1, contexts),
                                                        (1, lists(contexts, 2)))})
resp_parts = lists(obj({"type": st.sampled_from(["input_text", "output_text", "input_image", "input_file",
                                                 "refusal", ""]), "text": strings, "image_url": texts,
                        "file_data": b64, "refusal": texts}))
resp_items = st.lists(obj({"role": roles, "content": st.one_of(strings, resp_parts), "call_id": texts,
                            "name": texts, "arguments": arguments, "output": st.one_of(texts, resp_parts),
                            "summary": resp_parts},
                           {"type": weighted((4, st.just("message")),
                                             (1, st.sampled_from(["function_call", "function_call_output",
                                                                  "reasoning", "web_search_call", ""])))}),
                       min_size=1, max_size=4)
resp_tools = lists(obj({"type": st.sampled_from(["function", "namespace", "web_search", ""]), "name": texts,
                        "description": texts, "parameters": schemas, "strict": st.booleans()}))
responses = obj({"instructions": strings, "max_output_tokens": ints, "temperature": numbers, "top_p": numbers,
                 "top_logprobs": small_ints, "include": lists(texts, 2),
                 "reasoning": obj({"effort": efforts, "summary": texts}),
                 "text": obj({"format": obj({"type": st.sampled_from(["text", "json_object", "json_schema", ""]),
                                             "name": texts, "schema": schemas, "strict": st.booleans()}),
                              "verbosity": texts}),
                 "tools": resp_tools, "tool_choice": oa_tool_choice, "stream": st.booleans(),
                 "truncation": texts, "metadata": junk, "store": st.booleans(), "previous_response_id": texts,
                 "options": options, "keep_alive": durations, "_debug_render_only": st.booleans()},
                {"model": models, "input": weighted((1, strings), (2, resp_items))})

an_blocks = st.recursive(
    obj({"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "document", ""]),
         "text": strings, "thinking": texts, "signature": texts, "id": texts, "name": texts, "tool_use_id": texts,
         "input": st.dictionaries(texts, junk, max_size=2), "is_error": st.booleans(),
         "source": obj({"type": st.sampled_from(["base64", "url", ""]), "media_type": texts, "data": b64,
                        "url": texts})}),
    lambda inner: obj({"type": st.just("tool_result"), "tool_use_id": texts,
                       "content": st.one_of(texts, lists(inner, 2))}),
    max_leaves=4)
an_messages = st.lists(obj({}, {"role": st.sampled_from(["user", "assistant"]),
                                "content": st.one_of(strings, lists(an_blocks))}), min_size=1, max_size=4)
an_optional = {"system": st.one_of(strings, lists(an_blocks, 2)),
               "tools": lists(obj({"type": texts, "name": texts, "description": texts, "input_schema": schemas})),
               "tool_choice": obj({"type": st.sampled_from(["auto", "any", "tool", "none", ""]), "name": texts,
                                   "disable_parallel_tool_use": st.booleans()}),
               "thinking": obj({"type": st.sampled_from(["enabled", "disabled", ""]), "budget_tokens": ints}),
               "output_config": obj({"effort": efforts}), "options": options, "keep_alive": durations}
an_messages_body = obj({**an_optional, "stream": st.booleans(), "temperature": numbers, "top_p": numbers,
                        "top_k": ints, "stop_sequences": lists(texts), "metadata": junk},
                       {"model": models, "messages": an_messages, "max_tokens": ints})
an_count = obj(an_optional, {"model": models, "messages": an_messages})

# --- native bodies -------------------------------------------------------------------------------------------

generate = obj({**inference, "suffix": texts, "system": strings, "raw": st.booleans(),
                "template": st.one_of(texts, st.sampled_from(["{{ .Prompt }}", "{{ .System }}{{ .Prompt }}",
                                                              "{{ range 10000 }}x{{ end }}", "{{ template \"x\" }}",
                                                              "{{ define \"a\" }}{{ template \"a\" }}{{ end }}"
                                                              "{{ template \"a\" }}"])),
                "context": contexts, "images": images, "width": ints, "height": ints, "steps": ints},
               {"model": models, "prompt": strings})
chat = obj({**inference, "tools": tools}, {"model": models, "messages": messages})
embed = obj({"truncate": st.booleans(), "dimensions": ints, "options": options, "keep_alive": durations},
            {"model": models, "input": st.one_of(strings, lists(strings))})
embeddings = obj({"options": options, "keep_alive": durations}, {"model": models, "prompt": strings})
tokenize = obj({"options": options, "keep_alive": durations, "media_type": texts},
               {"model": models, "content": strings})
detokenize = obj({"options": options, "keep_alive": durations}, {"model": models, "tokens": contexts})
show = obj({"name": names, "verbose": st.booleans(), "system": texts, "template": texts, "options": options},
           {"model": models})
digests = weighted((2, st.sampled_from(["sha256:" + "0" * 64, "sha256-" + "a" * 64, "sha256:" + "A" * 64, "sha256:",
                                        "md5:abc", "", "MODEL_DIGEST"])),
                   (1, st.binary(max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest())), (1, texts))
file_maps = st.dictionaries(weighted((3, st.sampled_from(["model.gguf", "x.safetensors", "config.json",
                                                          "tokenizer.json", "../x.gguf", "/abs.gguf", "a\\b", ".",
                                                          "C:x", "a/./b", ""])), (1, texts)),
                            digests, max_size=3)
create = obj({"name": targets, "files": file_maps, "adapters": file_maps,
              "draft_files": file_maps, "quantize": st.one_of(st.sampled_from(["q4_K_M", "Q8_0", "f16", "q4_k",
                                                                               "IQ2_XS", "bogus", ""]), texts),
              "draft_quantize": texts, "template": st.one_of(texts, st.sampled_from(["{{ .Prompt }}", "{{ if }}"])),
              "system": strings, "license": st.one_of(strings, lists(texts, 2)),
              "parameters": options, "messages": messages, "renderer": texts, "parser": texts, "requires": texts,
              "info": st.dictionaries(st.sampled_from(["capabilities", "x", "model_family"]), junk, max_size=2),
              "stream": st.booleans()},
             {"model": targets, "from": weighted((4, st.just(MODEL)), (1, st.just(TOOLS_MODEL)), (2, names))})
copy = obj({}, {"source": weighted((1, st.just(MODEL)), (1, names)), "destination": targets})
delete = obj({"name": targets}, {"model": targets})
pull = obj({"name": targets, "insecure": st.booleans(), "username": texts, "password": texts,
            "stream": st.booleans()}, {"model": targets})
push = obj({"name": names, "insecure": st.booleans(), "username": texts, "password": texts,
            "stream": st.booleans()}, {"model": names})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from _paths(inner, (*prefix, key))


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with ``new`` at ``path`` (copies along the path; the rest is shared)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _put(value[head], rest, new)}
    out = list(value)
    out[head] = _put(out[head], rest, new)
    return out


PROTECTED_KEYS = {"/api/create": ("model", "name"), "/api/copy": ("destination",),
                  "/api/delete": ("model", "name"), "/api/pull": ("model", "name")}


@st.composite
def hostile_bodies(draw: st.DrawFn, route: str, shape: st.SearchStrategy[dict[str, Any]]) -> Any:
    """The route's shape with 0-3 values replaced by hostile ones anywhere in it, an unknown or re-cased key now
    and then, or (one time in twenty) valid JSON that is no object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(not_objects)
    body: Any = draw(shape)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        paths = list(_paths(body))
        if not paths:
            break
        body = _put(body, draw(st.sampled_from(paths)), draw(hostile))
    if draw(st.integers(0, 4)) == 0:
        key = draw(weighted((1, texts), (1, st.sampled_from(sorted(body)).map(str.upper) if body else texts)))
        body = {**body, key: draw(weighted((1, hostile), (1, scalars)))}
    for key in PROTECTED_KEYS.get(route, ()):
        for k in list(body):
            if isinstance(k, str) and k.lower() == key:
                body[k] = _unprotected(body[k])
    return body


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
    "/api/generate": ("POST", generate),
    "/api/chat": ("POST", chat),
    "/api/embed": ("POST", embed),
    "/api/embeddings": ("POST", embeddings),
    "/api/tokenize": ("POST", tokenize),
    "/api/detokenize": ("POST", detokenize),
    "/api/show": ("POST", show),
    "/api/create": ("POST", create),
    "/api/copy": ("POST", copy),
    "/api/delete": ("DELETE", delete),
    "/api/pull": ("POST", pull),
    "/api/push": ("POST", push),
    "/v1/chat/completions": ("POST", chat_completions),
    "/v1/completions": ("POST", completions),
    "/v1/embeddings": ("POST", oa_embeddings),
    "/v1/responses": ("POST", responses),
    "/v1/messages": ("POST", an_messages_body),
    "/v1/messages/count_tokens": ("POST", an_count),
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
                                 st.just("sha256-" + hashlib.sha256(content).hexdigest().upper()), digests),
                       label="digest")
    path = "/api/blobs/" + (quote(digest, safe="", errors="surrogatepass").replace(".", "%2E") or "x")
    method = data.draw(st.sampled_from(["POST", "POST", "HEAD"]), label="method")
    exercise(fuzzed, method, path, "/api/blobs", None, content=content if method == "POST" else b"", param=digest)


@pytest.mark.timeout(TIMEOUT)
@SETTINGS
@given(name=weighted((3, short_names), (1, texts)).filter(bool))
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
