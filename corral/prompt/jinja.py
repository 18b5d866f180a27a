"""Rendering a GGUF's ``tokenizer.chat_template`` (Jinja, as Hugging Face writes them) in a sandbox.

Templates come from model files, which are untrusted input: they run in Jinja's immutable sandbox, with only
the helpers chat templates expect (``raise_exception``, ``strftime_now``).
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class ChatTemplateError(Exception):
    """The template failed to render; the message is shown to the client."""


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = _tojson
    return env.from_string(source)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False) -> str:
    import json

    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def render_chat_template(source: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
                         add_generation_prompt: bool = True, bos_token: str = "", eos_token: str = "",
                         **extra: Any) -> str:
    try:
        template = _compile(source)
        return template.render(messages=messages, tools=tools or None, add_generation_prompt=add_generation_prompt,
                               bos_token=bos_token, eos_token=eos_token, **extra)
    except ChatTemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise ChatTemplateError(f"chat template error: {exc}") from None
    except Exception as exc:  # a template may fail in arbitrary ways on odd input
        raise ChatTemplateError(f"chat template error: {type(exc).__name__}: {exc}") from None
