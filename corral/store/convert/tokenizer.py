"""A folder's tokenizer as llama.cpp's GGUF vocabulary (``tokenizer.ggml.*``).

Three kinds, chosen from ``tokenizer.json``'s model:

- byte-level BPE (GPT-2's scheme: SmolLM, Qwen2, Llama 3) becomes ``gpt2``: tokens as they are spelled in
  the file (bytes mapped to printable characters), the merges, and the pre-tokenizer's llama.cpp name, which
  decides how llama.cpp splits text before merging;
- SentencePiece-style BPE (``byte_fallback``, ``▁`` for spaces: Llama 2, Mistral, Gemma 3) and Unigram
  become ``llama``, with a score per token. llama.cpp merges the best-scoring adjacent pair first, so a
  token made by the r-th merge of the file scores -r: the same order BPE merges in;
- WordPiece (BERT) becomes ``bert``, in llama.cpp's "phantom space" spelling: a word-initial piece gets a
  leading ``▁`` and a ``##`` continuation loses its prefix. Without ``tokenizer.json`` a ``vocab.txt`` will do.

Special tokens come from ``tokenizer_config.json`` (or ``special_tokens_map.json``), then ``config.json``'s
``*_token_id``; whether BOS/EOS are added, from ``tokenizer_config.json`` or else from the post-processor's
template; the chat template from ``tokenizer_config.json``, ``chat_template.jinja`` or ``chat_template.json``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from gguf import GGUFValueType

from corral.store.convert.errors import ConvertError
from corral.store.convert.folder import HFFolder

__all__ = ["TokenType", "Vocab", "check_tokenizer_files", "load_vocab"]

log = logging.getLogger(__name__)


class TokenType:
    """llama.cpp's token attributes as stored in ``tokenizer.ggml.token_type``."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


SPECIAL_KINDS = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
# the GGUF key of each kind's id (llama.cpp spells "separator" its own way)
_SPECIAL_KEYS = {
    "bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
    "unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
    "pad": "tokenizer.ggml.padding_token_id", "cls": "tokenizer.ggml.cls_token_id",
    "mask": "tokenizer.ggml.mask_token_id",
}  # fmt: skip
CONTROL_SCORE = -1000.0  # what llama.cpp's converter gives tokens that are never the result of a merge

# Pre-tokenizer regexes (a Split in tokenizer.json) and the names llama.cpp knows them by.
_SPLIT_PRE = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+": "llama-bpe",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+": "qwen2",
}
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")

Metadata = list[tuple[str, Any, GGUFValueType]]


@dataclass
class Vocab:
    model: str  # tokenizer.ggml.model: gpt2, llama or bert
    tokens: list[str]
    types: list[int]
    pre: str = "default"
    scores: list[float] | None = None
    merges: list[str] = field(default_factory=list)
    special: dict[str, int] = field(default_factory=dict)
    add: dict[str, bool] = field(default_factory=dict)
    add_space_prefix: bool | None = None
    chat_template: str | None = None
    token_type_count: int | None = None

    def metadata(self) -> Metadata:
        kv: Metadata = [
            ("tokenizer.ggml.model", self.model, GGUFValueType.STRING),
            ("tokenizer.ggml.pre", self.pre, GGUFValueType.STRING),
            ("tokenizer.ggml.tokens", self.tokens, GGUFValueType.ARRAY),
            ("tokenizer.ggml.token_type", self.types, GGUFValueType.ARRAY),
        ]
        if self.scores is not None:
            kv.append(("tokenizer.ggml.scores", self.scores, GGUFValueType.ARRAY))
        if self.merges:
            kv.append(("tokenizer.ggml.merges", self.merges, GGUFValueType.ARRAY))
        if self.token_type_count is not None:
            kv.append(("tokenizer.ggml.token_type_count", self.token_type_count, GGUFValueType.UINT32))
        for kind in SPECIAL_KINDS:
            if kind in self.special:
                kv.append((_SPECIAL_KEYS[kind], self.special[kind], GGUFValueType.UINT32))
        for kind, on in self.add.items():
            kv.append((f"tokenizer.ggml.add_{kind}_token", on, GGUFValueType.BOOL))
        if self.add_space_prefix is not None:
            kv.append(("tokenizer.ggml.add_space_prefix", self.add_space_prefix, GGUFValueType.BOOL))
        if self.chat_template is not None:
            kv.append(("tokenizer.chat_template", self.chat_template, GGUFValueType.STRING))
        return kv


def load_vocab(folder: HFFolder, config: dict[str, Any], *, n_vocab: int, wordpiece: bool = False) -> Vocab:
    """The folder's vocabulary, padded to ``n_vocab`` tokens (the rows of the model's token embedding).

    ``wordpiece``: the architecture is BERT's, so only a WordPiece vocabulary will do."""
    tok_config = folder.optional_object("tokenizer_config.json")
    if "tokenizer.json" in folder:
        tj = folder.json_object("tokenizer.json")
        vocab = _from_tokenizer_json(tj, n_vocab=n_vocab, wordpiece=wordpiece)
    else:
        check_tokenizer_files(folder, wordpiece=wordpiece)
        tj = {}
        vocab = _from_vocab_txt(folder, n_vocab=n_vocab)
    _set_specials(vocab, folder, tj, tok_config, config)
    vocab.chat_template = _chat_template(folder, tok_config)
    if wordpiece:
        vocab.tokens = [t if ty == TokenType.CONTROL else t[2:] if t.startswith("##") else "\u2581" + t
                        for t, ty in zip(vocab.tokens, vocab.types, strict=True)]
        vocab.token_type_count = _positive_int(config.get("type_vocab_size", 1), "type_vocab_size")
    return vocab


def check_tokenizer_files(folder: HFFolder, *, wordpiece: bool) -> None:
    """A ConvertError unless the folder has a tokenizer corral reads (checked before any weights are)."""
    if "tokenizer.json" in folder or (wordpiece and "vocab.txt" in folder):
        return
    if "tokenizer.model" in folder:
        raise ConvertError("the folder has only tokenizer.model (SentencePiece); corral needs its tokenizer.json")
    raise ConvertError("the folder has no tokenizer: tokenizer.json is missing")


# --- tokenizer.json ---------------------------------------------------------------------------------------


def _from_tokenizer_json(tj: dict[str, Any], *, n_vocab: int, wordpiece: bool) -> Vocab:
    model = tj.get("model")
    if not isinstance(model, dict):
        raise ConvertError("tokenizer.json has no model")
    kind = model.get("type")
    if kind is None:  # files written before "type" was saved
        kind = "BPE" if "merges" in model else "Unigram" if isinstance(model.get("vocab"), list) else "WordPiece"
    if wordpiece != (kind == "WordPiece"):
        raise ConvertError(f"tokenizer.json has a {kind} model, which this architecture cannot use")
    texts: dict[int, str] = {}
    scores: dict[int, float] = {}
    if kind in ("BPE", "WordPiece"):
        base = model.get("vocab")
        if not isinstance(base, dict):
            raise ConvertError("tokenizer.json: model.vocab must be an object of token -> id")
        for text, i in base.items():
            _put(texts, i, text, n_vocab)
    elif kind == "Unigram":
        base = model.get("vocab")
        if not isinstance(base, list):
            raise ConvertError("tokenizer.json: a Unigram model.vocab must be a list of [token, score]")
        for i, entry in enumerate(base):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], (int, float))):
                raise ConvertError(f"tokenizer.json: Unigram entry {i} is not [token, score]")
            _put(texts, i, entry[0], n_vocab)
            scores[i] = float(entry[1])
    else:
        raise ConvertError(f"tokenizer.json has a {kind!r} model; corral converts BPE, Unigram and WordPiece")
    added = tj.get("added_tokens") or []
    if not isinstance(added, list):
        raise ConvertError("tokenizer.json: added_tokens must be a list")
    special_ids: set[int] = set()
    added_ids: set[int] = set()
    for entry in added:
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise ConvertError("tokenizer.json: an added token has no content")
        i = entry.get("id")
        if not isinstance(i, int):
            raise ConvertError(f"tokenizer.json: added token {entry['content']!r} has an invalid id {i!r}")
        if texts.get(i) not in (None, entry["content"]):
            raise ConvertError(f"tokenizer.json: added token {entry['content']!r} reuses id {i} of "
                               f"{texts.get(i)!r}")
        _put(texts, i, entry["content"], n_vocab)
        added_ids.add(i)
        if entry.get("special"):
            special_ids.add(i)
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        text = texts.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
            continue
        tokens.append(text)
        if i in special_ids:
            types.append(TokenType.CONTROL)
        elif i in added_ids:
            types.append(TokenType.USER_DEFINED)
        else:
            types.append(TokenType.NORMAL)
    if kind == "WordPiece":
        return Vocab("bert", tokens, types)
    merges = _merges(model.get("merges")) if kind == "BPE" else []
    if kind == "BPE" and not model.get("byte_fallback") and _uses_byte_level(tj):
        return Vocab("gpt2", tokens, types, pre=_pre_name(tj.get("pre_tokenizer")), merges=merges)
    # SentencePiece-style: byte tokens, an unknown token, and a score per token
    unk = model.get("unk_token")
    for i, text in enumerate(tokens):
        if types[i] == TokenType.NORMAL and _BYTE_TOKEN.fullmatch(text):
            types[i] = TokenType.BYTE
        elif types[i] in (TokenType.NORMAL, TokenType.CONTROL) and text == unk:
            types[i] = TokenType.UNKNOWN
    if kind == "BPE":
        rank: dict[str, int] = {}
        for r, merge in enumerate(merges):
            a, _, b = merge.partition(" ")
            rank.setdefault(a + b, r)
        scores = {i: -float(rank.get(t, len(merges) + i)) for i, t in enumerate(tokens)}
    score_list = [scores.get(i, 0.0) if ty in (TokenType.NORMAL, TokenType.BYTE) else CONTROL_SCORE
                  for i, ty in enumerate(types)]
    for i, ty in enumerate(types):
        if ty == TokenType.BYTE:
            score_list[i] = 0.0
    return Vocab("llama", tokens, types, scores=score_list, add_space_prefix=_adds_space_prefix(tj))


def _put(texts: dict[int, str], i: Any, text: Any, n_vocab: int) -> None:
    if not isinstance(i, int) or isinstance(i, bool) or i < 0:
        raise ConvertError(f"tokenizer.json: token {text!r} has an invalid id {i!r}")
    if not isinstance(text, str):
        raise ConvertError(f"tokenizer.json: token {i} is not a string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: GGUF strings are UTF-8
        raise ConvertError(f"tokenizer.json: token {i} ({text!r}) is not valid Unicode") from None
    if i >= n_vocab:
        raise ConvertError(f"tokenizer.json has token id {i} ({text!r}), but the model's token embedding has "
                           f"only {n_vocab} rows")
    if texts.get(i, text) != text:
        raise ConvertError(f"tokenizer.json: tokens {texts[i]!r} and {text!r} share id {i}")
    texts[i] = text


def _merges(raw: Any) -> list[str]:
    """Merges as llama.cpp stores them: ``"a b"``. tokenizer.json has them as such strings or, since 2024, as
    ``[a, b]`` pairs, which may hold spaces: those are written as U+0120 the way llama.cpp's converter does."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConvertError("tokenizer.json: model.merges must be a list")
    out = []
    for m in raw:
        if isinstance(m, str) and m.count(" ") >= 1:
            out.append(m)
        elif isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) for p in m):
            out.append(" ".join(p.replace(" ", "\u0120") for p in m))
        else:
            raise ConvertError(f"tokenizer.json: invalid merge {m!r}")
    return out


def _nodes(node: Any, list_key: str) -> list[dict[str, Any]]:
    """A pre-tokenizer/normalizer/decoder and, for a Sequence, its members, flattened."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Sequence":
        return [n for child in node.get(list_key) or [] for n in _nodes(child, list_key)]
    return [node]


def _uses_byte_level(tj: dict[str, Any]) -> bool:
    return any(n.get("type") == "ByteLevel" for n in [*_nodes(tj.get("pre_tokenizer"), "pretokenizers"),
                                                      *_nodes(tj.get("decoder"), "decoders")])


def _pre_name(pre: Any) -> str:
    """llama.cpp's name for a byte-level BPE pre-tokenizer, read from its structure and regexes."""
    nodes = _nodes(pre, "pretokenizers")
    splits = [n for n in nodes if n.get("type") == "Split"]
    if splits:
        pattern = splits[0].get("pattern") or {}
        name = _SPLIT_PRE.get(pattern.get("Regex", "")) if len(splits) == 1 else None
        if name is not None:
            return name
    else:
        kinds = [n.get("type") for n in nodes]
        if kinds == ["Digits", "ByteLevel"] and nodes[0].get("individual_digits") and nodes[1].get("use_regex"):
            return "smollm"  # digits one by one, then GPT-2's regex
        if kinds == ["ByteLevel"] and nodes[0].get("use_regex", True):
            return "gpt-2"
    log.warning("unknown pre-tokenizer in tokenizer.json; llama.cpp will split text its default way")
    return "default"


def _adds_space_prefix(tj: dict[str, Any]) -> bool:
    """Whether the tokenizer puts "▁" before the text (a Prepend normalizer, or a Metaspace that prepends)."""
    for n in _nodes(tj.get("normalizer"), "normalizers"):
        if n.get("type") == "Prepend" and n.get("prepend") == "\u2581":
            return True
    for n in _nodes(tj.get("pre_tokenizer"), "pretokenizers"):
        if n.get("type") == "Metaspace":
            return bool(n.get("add_prefix_space", n.get("prepend_scheme", "always") in ("always", "first")))
    return False


def _from_vocab_txt(folder: HFFolder, *, n_vocab: int) -> Vocab:
    try:
        lines = folder.path("vocab.txt").read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConvertError(f"cannot read vocab.txt: {e}") from None
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) > n_vocab:
        raise ConvertError(f"vocab.txt has {len(lines)} tokens, but the model's token embedding has only "
                           f"{n_vocab} rows")
    tokens = [line.rstrip("\r") for line in lines]
    types = [TokenType.CONTROL if t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") else TokenType.NORMAL
             for t in tokens]
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]")
        types.append(TokenType.UNUSED)
    return Vocab("bert", tokens, types)


# --- special tokens and the chat template ------------------------------------------------------------------


def _content(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        return str(entry["content"])
    return None


def _set_specials(vocab: Vocab, folder: HFFolder, tj: dict[str, Any], tok_config: dict[str, Any],
                  config: dict[str, Any]) -> None:
    special_map = folder.optional_object("special_tokens_map.json")
    contents = {kind: _content(tok_config.get(f"{kind}_token")) or _content(special_map.get(f"{kind}_token"))
                for kind in SPECIAL_KINDS}
    model = tj.get("model") if isinstance(tj.get("model"), dict) else {}
    if contents["unk"] is None and isinstance(model, dict) and isinstance(model.get("unk_token"), str):
        contents["unk"] = model["unk_token"]
    # an encoder's [CLS] and [SEP] are its beginning and end of sequence
    contents["bos"] = contents["bos"] or contents["cls"]
    contents["eos"] = contents["eos"] or contents["sep"]
    # added tokens first (that is where special tokens live), then the whole vocabulary
    ids: dict[str, int] = {}
    for entry in tj.get("added_tokens") or []:
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            ids.setdefault(entry["content"], entry.get("id", -1))
    index = {t: i for i, t in enumerate(vocab.tokens)}  # a WordPiece vocabulary is still in its own spelling here
    for kind in SPECIAL_KINDS:
        text = contents[kind]
        i = ids.get(text, index.get(text, -1)) if text is not None else -1
        if not 0 <= i < len(vocab.tokens):
            fallback = config.get(f"{kind}_token_id")
            if isinstance(fallback, list) and fallback:
                fallback = fallback[0]
            i = fallback if isinstance(fallback, int) and not isinstance(fallback, bool) else -1
        if 0 <= i < len(vocab.tokens):
            vocab.special[kind] = i
    for kind in ("bos", "eos"):
        flag = tok_config.get(f"add_{kind}_token")
        if isinstance(flag, bool):
            vocab.add[kind] = flag
    first, last = _template_ends(tj.get("post_processor"))
    if "bos" not in vocab.add:
        vocab.add["bos"] = first is not None and first in (contents["bos"], contents["cls"])
    if "eos" not in vocab.add:
        vocab.add["eos"] = last is not None and last in (contents["eos"], contents["sep"])


def _template_ends(post: Any) -> tuple[str | None, str | None]:
    """The special tokens a TemplateProcessing puts before and after a single sequence."""
    for node in _nodes(post, "processors"):
        if node.get("type") == "TemplateProcessing":
            single = node.get("single") or []
            if not isinstance(single, list) or len(single) < 2:
                return None, None

            def special(item: Any) -> str | None:
                tok = item.get("SpecialToken") if isinstance(item, dict) else None
                return tok.get("id") if isinstance(tok, dict) and isinstance(tok.get("id"), str) else None

            return special(single[0]), special(single[-1])
        if node.get("type") in ("BertProcessing", "RobertaProcessing"):
            cls, sep = node.get("cls"), node.get("sep")
            return (cls[0] if isinstance(cls, list) and cls else None,
                    sep[0] if isinstance(sep, list) and sep else None)
    return None, None


def _chat_template(folder: HFFolder, tok_config: dict[str, Any]) -> str | None:
    template = tok_config.get("chat_template")
    if template is None and "chat_template.jinja" in folder:
        try:
            return folder.path("chat_template.jinja").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConvertError(f"cannot read chat_template.jinja: {e}") from None
    if template is None and "chat_template.json" in folder:
        template = folder.json_object("chat_template.json").get("chat_template")
    if template is None or isinstance(template, str):
        return template
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        chosen = named.get("default")
        if isinstance(chosen, str):
            return chosen
        if chosen is None and not named:
            return None
    raise ConvertError("tokenizer_config.json: chat_template must be a string or a list of {name, template} "
                       "with a \"default\" one")


def _positive_int(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConvertError(f"config.json: {key} must be a positive integer, not {value!r}")
    return value
