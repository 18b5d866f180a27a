"""JSON Schema to GBNF: each grammar is compiled and run by llama.cpp's own grammar sampler.

A text is "accepted" when every token of it passes the sampler in turn and end-of-generation is allowed after
the last one; llama.cpp, not a re-implementation, decides.
"""

from __future__ import annotations

import ctypes
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_cpp as ll
import pytest

from corral.output.grammar import JSON_OBJECT_GRAMMAR, SchemaError, format_grammar, schema_grammar
from corral.store.models import Store


@ll.llama_log_callback
def _quiet(level: int, text: bytes, _user: Any) -> None:
    pass


class Vocab:
    def __init__(self, path: Path) -> None:
        ll.llama_log_set(_quiet, ctypes.c_void_p(0))
        ll.llama_backend_init()
        params = ll.llama_model_default_params()
        params.vocab_only = True
        self.model = ll.llama_model_load_from_file(str(path).encode(), params)
        assert self.model, "could not load the vocabulary"
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.eos = ll.llama_vocab_eos(self.vocab)

    def tokens(self, text: str) -> list[int]:
        data = text.encode()
        buf = (ll.llama_token * (len(data) + 8))()
        n = ll.llama_tokenize(self.vocab, data, len(data), buf, len(data) + 8, False, False)
        return list(buf[:n])

    def _allowed(self, sampler: Any, token: int) -> bool:
        cand = (ll.llama_token_data * 1)()
        cand[0].id, cand[0].logit, cand[0].p = token, 0.0, 0.0
        arr = ll.llama_token_data_array(cand, 1, -1, False)
        ll.llama_sampler_apply(sampler, ctypes.byref(arr))
        return bool(cand[0].logit != -math.inf)

    def accepts(self, grammar: str, text: str, *, complete: bool = True) -> bool:
        sampler = ll.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        assert sampler, f"llama.cpp rejected the grammar:\n{grammar}"
        try:
            for token in self.tokens(text):
                if not self._allowed(sampler, token):
                    return False
                ll.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self.eos) if complete else True
        finally:
            ll.llama_sampler_free(sampler)


@pytest.fixture(scope="module")
def vocab(models_dir: Path) -> Iterator[Vocab]:
    model = Store(models_dir).get("smollm2:135m")
    assert model.model_path is not None
    v = Vocab(model.model_path)
    yield v
    ll.llama_model_free(v.model)


def check(vocab: Vocab, schema: Any, good: list[Any], bad: list[str]) -> str:
    grammar = schema_grammar(schema)
    for doc in good:
        text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
        assert vocab.accepts(grammar, text), f"rejected {text!r}\n{grammar}"
    for text in bad:
        assert not vocab.accepts(grammar, text), f"accepted {text!r}\n{grammar}"
    return grammar


def test_json_mode_is_any_object_and_nothing_after_it(vocab: Vocab) -> None:
    g = JSON_OBJECT_GRAMMAR
    assert format_grammar("json") == g
    for text in ['{}', '{"a": [1, -2.5e3, "x\\n\\u00e9", true, null], "b": {"c": {}}}', '{\n  "k": "v"\n}']:
        assert vocab.accepts(g, text), text
    for text in ['[1]', '"s"', '{"a": 1} ', '{"a": 1}\n', '{"a": 01}', '{"a": "raw\nnewline"}', "{'a': 1}"]:
        assert not vocab.accepts(g, text), text


def test_whitespace_is_bounded(vocab: Vocab) -> None:
    g = JSON_OBJECT_GRAMMAR
    assert vocab.accepts(g, '{"a":\n' + " " * 20 + "1}")
    assert not vocab.accepts(g, '{"a":\n' + " " * 21 + "1}")
    assert not vocab.accepts(g, '{"a":  1}')  # one blank, or a newline and indentation
    assert not vocab.accepts(g, '{"a":\n\n1}')


def test_layouts_json_writers_produce(vocab: Vocab) -> None:
    g = JSON_OBJECT_GRAMMAR
    doc = {"a": 1, "b": [1, {"c": None}], "d": {}}
    for text in (json.dumps(doc), json.dumps(doc, indent=2), json.dumps(doc, indent="\t"),
                 json.dumps(doc, separators=(",", ":"))):
        assert vocab.accepts(g, text), text
    for text in ('{"a" : 1}', '{"a": 1 ,"b": 2}', '{"a": 1\n, "b": 2}', '{"b": [1 ]}'.replace(" ]", " ,2]")):
        assert not vocab.accepts(g, text), text


def test_official_example_schema(vocab: Vocab) -> None:
    """FriendList from ollama-python's structured-outputs example (pydantic's $defs/$ref output)."""
    schema = {
        "$defs": {"FriendInfo": {"properties": {"name": {"title": "Name", "type": "string"},
                                                "age": {"title": "Age", "type": "integer"},
                                                "is_available": {"title": "Is Available", "type": "boolean"}},
                                 "required": ["name", "age", "is_available"], "title": "FriendInfo", "type": "object"}},
        "properties": {"friends": {"items": {"$ref": "#/$defs/FriendInfo"}, "title": "Friends", "type": "array"}},
        "required": ["friends"], "title": "FriendList", "type": "object",
    }
    check(vocab, schema,
          [{"friends": [{"name": "Ollama", "age": 22, "is_available": False},
                        {"name": "Alonso", "age": 23, "is_available": True}]},
           {"friends": []},
           '{\n  "friends": [\n    {"name": "A", "age": 1, "is_available": true}\n  ]\n}'],
          ['{"friends": [{"name": "Ollama", "age": 22}]}',  # a required property missing
           '{"friends": [{"age": 22, "name": "Ollama", "is_available": true}]}',  # out of order
           '{"friends": [{"name": "O", "age": 2.5, "is_available": true}]}',  # not an integer
           '{"friends": [], "extra": 1}',  # no additional properties
           '{}'])


def test_optional_properties_any_subset_in_order(vocab: Vocab) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                                               "c": {"type": "boolean"}}}
    check(vocab, schema,
          [{}, {"a": 1}, {"b": "x"}, {"c": True}, {"a": 1, "c": False}, {"a": 1, "b": "x", "c": True}],
          ['{"b": "x", "a": 1}', '{"a": 1,}', '{"d": 1}'])
    schema["required"] = ["b"]
    check(vocab, schema, [{"b": "x"}, {"b": "x", "a": 1}, {"b": "x", "c": True}], ['{}', '{"a": 1}'])


def test_additional_properties_when_asked(vocab: Vocab) -> None:
    check(vocab, {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
                  "additionalProperties": {"type": "string"}},
          [{"id": 1}, {"id": 1, "x": "y", "z": "w"}], ['{"id": 1, "x": 2}'])
    check(vocab, {"type": "object"}, [{}, {"any": [1, {"thing": None}]}], ['[]'])
    check(vocab, {"type": "object", "additionalProperties": {"type": "integer"}},
          [{}, {"a": 1, "b": 2}], ['{"a": "1"}'])


def test_enums_consts_and_alternatives(vocab: Vocab) -> None:
    check(vocab, {"type": "object", "properties": {"color": {"enum": ["red", "green", 3, None]}},
                  "required": ["color"]},
          [{"color": "red"}, {"color": 3}, {"color": None}], ['{"color": "blue"}', '{"color": "Red"}'])
    check(vocab, {"const": {"kind": "fixed"}}, [{"kind": "fixed"}], ['{"kind": "other"}'])
    # pydantic's Optional[int]
    check(vocab, {"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "null"}],
                                                         "default": None}}, "required": ["n"]},
          [{"n": 5}, {"n": None}], ['{"n": "5"}'])
    check(vocab, {"type": ["string", "integer"]}, ['"a"', "7"], ["true", "1.5"])
    check(vocab, {"oneOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                            {"type": "array", "items": {"type": "integer"}}]},
          [{"a": 1}, [1, 2]], ['{"b": 1}'])


def test_refs_and_recursion(vocab: Vocab) -> None:
    tree = {"$defs": {"node": {"type": "object",
                               "properties": {"v": {"type": "integer"},
                                              "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                               "required": ["v", "kids"]}},
            "$ref": "#/$defs/node"}
    check(vocab, tree, [{"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]}],
          ['{"v": 1, "kids": [{"v": 2}]}'])
    check(vocab, {"definitions": {"s": {"type": "string", "maxLength": 2}},
                  "type": "array", "items": {"$ref": "#/definitions/s"}},
          [["ab", "c"], []], ['["abc"]'])
    check(vocab, {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                            {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]},
          [{"a": 1, "b": 2}], ['{"a": 1}'])


def test_numbers(vocab: Vocab) -> None:
    check(vocab, {"type": "number"}, ["0", "-1", "3.25", "1e5", "-2.5E-3"], ["01", "1.", ".5", "+1", "NaN", "1e"])
    check(vocab, {"type": "integer"}, ["0", "-12", "9007199254740991"], ["1.0", "1e3", "-"])
    check(vocab, {"type": "integer", "minimum": 0}, ["0", "42"], ["-1"])
    check(vocab, {"type": "number", "exclusiveMinimum": 0}, ["0.5", "2"], ["-0.5"])


def test_strings(vocab: Vocab) -> None:
    check(vocab, {"type": "string", "minLength": 2, "maxLength": 4}, ['"ab"', '"abcd"', '"\\n\\t"'],
          ['"a"', '"abcde"', '""'])
    check(vocab, {"type": "string", "maxLength": 0}, ['""'], ['"a"'])
    check(vocab, {"type": "string"}, ['""', '"quote \\" and unicode é ✓"'], ['"tab\there"', "'single'"])
    check(vocab, {"type": "string", "format": "date"}, ['"2024-02-29"'], ['"2024-13-01"', '"24-01-01"'])
    check(vocab, {"type": "string", "format": "date-time"}, ['"2024-02-29T12:30:00Z"', '"2024-02-29T12:30:00.5+02:00"'],
          ['"2024-02-29"'])
    check(vocab, {"type": "string", "format": "uuid"}, ['"123e4567-e89b-12d3-a456-426614174000"'], ['"123"'])


def test_arrays(vocab: Vocab) -> None:
    check(vocab, {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
          ["[true]", "[true, false, true]"], ["[]", "[true, true, true, true]", "[1]"])
    check(vocab, {"type": "array", "items": {"type": "integer"}, "minItems": 2}, ["[1, 2]", "[1, 2, 3, 4]"], ["[1]"])
    check(vocab, {"type": "array", "items": {"type": "integer"}, "maxItems": 1}, ["[]", "[5]"], ["[5, 6]"])
    check(vocab, {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
          ['["a", 1]'], ['["a"]', '[1, "a"]'])
    check(vocab, {"type": "array"}, ["[]", '[1, "two", {"three": [3]}]'], ["{}"])


def test_keys_with_odd_characters(vocab: Vocab) -> None:
    schema = {"type": "object", "properties": {'we"ird key': {"type": "integer"}, "ünï": {"type": "null"},
                                               "a-b_c.d": {"type": "boolean"}},
              "required": ['we"ird key', "ünï", "a-b_c.d"]}
    check(vocab, schema, [{'we"ird key': 1, "ünï": None, "a-b_c.d": True}], ['{"weird key": 1}'])


def test_empty_schema_means_any_value(vocab: Vocab) -> None:
    check(vocab, {}, ["1", '"s"', "[]", '{"a": null}'], ["", "nope"])


@pytest.mark.parametrize("schema", [
    {"$ref": "#/$defs/missing"},
    {"$ref": "https://example.com/schema.json"},
    {"type": "text"},
    {"type": "object", "properties": ["a"]},
    {"type": "array", "minItems": 3, "maxItems": 1},
    {"type": "string", "maxLength": -1},
    {"enum": []},
    {"type": "object", "properties": {"a": False}, "required": ["a"]},
])
def test_schemas_it_cannot_convert(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        schema_grammar(schema)


def test_grammar_text_is_stable() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert schema_grammar(schema) == schema_grammar(json.loads(json.dumps(schema)))
    assert schema_grammar(schema).startswith("root ::= ")
    assert format_grammar(None) is None and format_grammar("") is None
