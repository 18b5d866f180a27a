"""From a chat (messages, tools) to the prompt text a runner evaluates.

A model's prompt format comes from one of two places:
- a TEMPLATE layer (Go text/template, as every model from Ollama's registry has), run by corral's own
  interpreter with Ollama's data (``.System .Messages .Tools .Prompt .Response ...``);
- otherwise the GGUF's ``tokenizer.chat_template`` (Jinja), which corral keeps instead of guessing a Go
  template for it (a deliberate difference from Ollama, see DESIGN.md).
With neither, the prompt is the messages' text, as Ollama's default ``{{ .Prompt }}`` template gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.prompt import gotemplate
from corral.prompt.jinja import render_chat_template
from corral.prompt.limits import RenderLimitExceeded, budget

_CUT = "\x00corral-response-cut\x00"


class PromptError(Exception):
    """The template could not render these messages."""


@dataclass
class PromptFormat:
    """How one model formats prompts."""

    go_template: str | None = None
    jinja_template: str | None = None
    bos_token: str = ""
    eos_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def collate(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Ollama's collation for Go templates: system texts joined; consecutive same-role turns merged."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "system":
            system.append(m.get("content", ""))
        if out and out[-1]["role"] == m.get("role") and m.get("role") != "tool":
            out[-1] = {**out[-1], "content": out[-1].get("content", "") + "\n\n" + m.get("content", "")}
            continue
        out.append(dict(m))
    return "\n\n".join(system), out


def think_level(think: bool | str | None) -> str:
    """``.ThinkLevel`` as Ollama fills it: the level asked for, ``medium`` for plain true, else empty."""
    if isinstance(think, str):
        return think
    return "medium" if think else ""


def _go_values(think: bool | str | None) -> dict[str, Any]:
    return {"Think": bool(think), "ThinkLevel": think_level(think), "IsThinkSet": think is not None}


def render_go(source: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
              think: bool | str | None = None) -> str:
    try:
        with budget():
            return _render_go(source, messages, tools=tools, think=think)
    except RenderLimitExceeded as exc:
        raise PromptError(f"template error: {exc}") from None


def _render_go(source: str, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None,
               think: bool | str | None) -> str:
    try:
        template = gotemplate.parse(source)
        system, collated = collate(messages)
        if template.uses("Messages"):
            # Typed values, so `{{ .Tools }}` and `{{ json ... }}` print as Ollama's Go structs do.
            # tools=None prints as null and [] as [], as Ollama's nil and empty slices do
            data = gotemplate.chat_values(collated, system=system, tools=tools, think=bool(think),
                                          think_level=think_level(think), is_think_set=think is not None)
            return template.execute(data)
        base = {**_go_values(think), "Tools": gotemplate.tools_value(tools)}
        return _render_legacy(template, collated, base)
    except gotemplate.TemplateError as exc:
        raise PromptError(f"template error: {exc}") from None


def _render_legacy(template: Any, messages: list[dict[str, Any]], base: dict[str, Any]) -> str:
    """Templates of the ``.System/.Prompt/.Response`` kind render once per exchange, as Ollama does."""
    out: list[str] = []
    system = prompt = response = ""

    def execute() -> None:
        nonlocal system, prompt, response
        out.append(template.execute({**base, "System": system, "Prompt": prompt, "Response": response,
                                     "Messages": [], "Suffix": ""}))
        system = prompt = response = ""

    for m in messages:
        role, content = m.get("role"), m.get("content", "")
        if role == "system":
            if prompt or response:
                execute()
            system = content
        elif role == "user":
            if response:
                execute()
            prompt = content
        elif role == "assistant":
            response = content
    # The last exchange stops where the model's reply begins: everything after .Response is cut.
    last = template.execute({**base, "System": system, "Prompt": prompt, "Response": response + _CUT,
                             "Messages": [], "Suffix": ""})
    cut = last.find(_CUT)
    out.append(last[:cut] if cut != -1 else last)
    return "".join(out)


def render_go_completion(source: str, *, prompt: str, suffix: str = "", system: str = "",
                         think: bool | str | None = None) -> str:
    """A template run directly with .Prompt/.Suffix/.System (generate with suffix or a template override)."""
    try:
        template = gotemplate.parse(source)
        data = {**_go_values(think), "System": system, "Prompt": prompt, "Suffix": suffix, "Response": "",
                "Messages": [], "Tools": []}
        with budget():
            text = template.execute(data)
    except gotemplate.TemplateError as exc:
        raise PromptError(f"template error: {exc}") from None
    except RenderLimitExceeded as exc:
        raise PromptError(f"template error: {exc}") from None
    return text


def render_chat(fmt: PromptFormat, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
                think: bool | str | None = None) -> str:
    if fmt.go_template is not None:
        return render_go(fmt.go_template, messages, tools=tools, think=think)
    if fmt.jinja_template:
        jmsgs = [_jinja_message(m) for m in messages]
        extra = dict(fmt.extra)
        if think is not None:
            # Hugging Face's switch for templates that can think (Qwen 3 and others); ignored elsewhere.
            extra.setdefault("enable_thinking", bool(think))
            if isinstance(think, str):
                extra.setdefault("reasoning_effort", think)
        try:
            with budget():
                return render_chat_template(fmt.jinja_template, jmsgs, tools=tools, add_generation_prompt=True,
                                            bos_token=fmt.bos_token, eos_token=fmt.eos_token, **extra)
        except RenderLimitExceeded as exc:
            raise PromptError(f"chat template error: {exc}") from None
        except Exception as exc:
            raise PromptError(str(exc)) from None
    return "".join(m.get("content", "") for m in messages if m.get("role") != "assistant") if messages else ""


def _jinja_message(m: dict[str, Any]) -> dict[str, Any]:
    """A message as Hugging Face chat templates read it: empty fields dropped, a tool result's ``name``,
    tool calls as ``{"type": "function", "function": {...}}`` with object arguments."""
    out = {k: v for k, v in m.items() if v not in (None, "", [])} | {"role": m.get("role", ""),
                                                                      "content": m.get("content", "")}
    if m.get("role") == "tool" and m.get("tool_name"):
        out.setdefault("name", m["tool_name"])
    if m.get("tool_calls"):
        out["tool_calls"] = [{"type": "function", **call} for call in m["tool_calls"]]
    return out
