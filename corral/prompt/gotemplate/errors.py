"""Errors raised by the Go template interpreter.

TemplateError            any failure; `str(err)` is Go's message, e.g. ``template: :1: unexpected EOF``
├── TemplateSyntaxError  the text does not parse (Go's parse.Parse error)
└── TemplateExecError    execution failed (Go's ExecError, ``template: :1:3: executing "" at <...>: ...``)
"""

from __future__ import annotations


class TemplateError(Exception):
    """A Go template failed to parse or execute; the message follows Go's wording."""


class TemplateSyntaxError(TemplateError):
    """The template text is malformed."""


class TemplateExecError(TemplateError):
    """Executing a parsed template failed."""
