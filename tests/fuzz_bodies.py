"""The hostile bodies tests/test_fuzz.py sends: hypothesis strategies for every route's shape, each value of the
right JSON type or an extreme one, then mutated at random places (wrong types, junk, deep nesting)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import strategies as st

from corral.api.options import DEPRECATED_OPTIONS, OPTION_TYPES

MODEL = "smollm2:135m"
TOOLS_MODEL = "fuzz-tools"  # the same weights, with a template that renders tools, tool calls and thinking


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
