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

from corral.prompt.limits import RenderLimitExceeded, current_budget, within_budget


class ChatTemplateError(Exception):
    """The template failed to render; the message is shown to the client."""


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with every render's work bounded (corral.prompt.limits): ``range`` counts its items as
    steps, ``*`` and ``**`` may not build a value past the output limit, and the output is counted as it is
    written (see ``render_chat_template``)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits = current_budget().limits
        if operator == "*":
            sized, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sized, str | list | tuple) and isinstance(times, int) \
                    and len(sized) * times > limits.max_output:
                raise RenderLimitExceeded(f"template built a value of more than {limits.max_output} items "
                                          "(CORRAL_TEMPLATE_MAX_OUTPUT)")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 1000:
            raise RenderLimitExceeded("template raised a number to a power above 1000")
        return super().call_binop(context, operator, left, right)


def _counted_range(*args: int) -> range:
    items = range(*args)
    current_budget().step(len(items))
    return items


@functools.lru_cache(maxsize=32)
def _compile(source: str) -> jinja2.Template:
    env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["range"] = _counted_range
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
        out: list[str] = []
        with within_budget() as spent:
            for piece in template.generate(messages=messages, tools=tools or None,
                                           add_generation_prompt=add_generation_prompt, bos_token=bos_token,
                                           eos_token=eos_token, **extra):
                spent.wrote(len(piece))
                spent.step()
                out.append(piece)
        return "".join(out)
    except (ChatTemplateError, RenderLimitExceeded):
        raise
    except jinja2.TemplateError as exc:
        raise ChatTemplateError(f"chat template error: {exc}") from None
    except Exception as exc:  # a template may fail in arbitrary ways on odd input
        raise ChatTemplateError(f"chat template error: {type(exc).__name__}: {exc}") from None
