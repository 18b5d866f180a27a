"""Bounds on rendering one prompt: templates come from model files and requests, both untrusted.

A template may loop without end (``{{range 100000}}{{range 100000}}{{end}}{{end}}``) or build a huge text
(``{{ 'x' * 200000000 }}``); either would hold a worker for as long as it runs. Every render counts its steps
(template nodes walked, loop iterations), the characters it writes, and its time; past a limit it stops with a
:class:`RenderLimitExceeded` that names the limit (a 400 for the client). The limits are read once from the
environment:

==============================  ==========  ==============================================
variable                        default     what it bounds
==============================  ==========  ==============================================
``CORRAL_TEMPLATE_MAX_STEPS``   2000000     nodes walked and loop iterations, per render
``CORRAL_TEMPLATE_MAX_OUTPUT``  268435456   characters written, per render (256 Mi)
``CORRAL_TEMPLATE_TIMEOUT``     10          seconds, per render
==============================  ==========  ==============================================
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Budget", "RenderLimitExceeded", "RenderLimits", "budget", "current_budget", "within_budget"]


class RenderLimitExceeded(Exception):
    """A render went past one of its limits."""


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class RenderLimits:
    max_steps: int = int(_env_number("CORRAL_TEMPLATE_MAX_STEPS", 2_000_000))
    max_output: int = int(_env_number("CORRAL_TEMPLATE_MAX_OUTPUT", 256 * 1024 * 1024))
    max_seconds: float = _env_number("CORRAL_TEMPLATE_TIMEOUT", 10.0)


_CHECK_CLOCK_EVERY = 4096  # steps between two looks at the clock: time.monotonic() is not free


@dataclass
class Budget:
    """What one render has used so far."""

    limits: RenderLimits = field(default_factory=RenderLimits)
    steps: int = 0
    output: int = 0
    started: float = field(default_factory=time.monotonic)
    _next_clock: int = _CHECK_CLOCK_EVERY

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.limits.max_steps:
            raise RenderLimitExceeded(f"template exceeded {self.limits.max_steps} steps "
                                      "(CORRAL_TEMPLATE_MAX_STEPS)")
        if self.steps >= self._next_clock:
            self._next_clock = self.steps + _CHECK_CLOCK_EVERY
            self.check_time()

    def wrote(self, n: int) -> None:
        self.output += n
        if self.output > self.limits.max_output:
            raise RenderLimitExceeded(f"template output exceeded {self.limits.max_output} characters "
                                      "(CORRAL_TEMPLATE_MAX_OUTPUT)")

    def check_time(self) -> None:
        if time.monotonic() - self.started > self.limits.max_seconds:
            raise RenderLimitExceeded(f"template rendering took longer than {self.limits.max_seconds:g} s "
                                      "(CORRAL_TEMPLATE_TIMEOUT)")


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("corral_render_budget", default=None)


def current_budget() -> Budget:
    """The budget of the render under way, or a fresh one (a render started outside :func:`budget`)."""
    found = _current.get()
    return found if found is not None else Budget()


@contextlib.contextmanager
def budget(limits: RenderLimits | None = None) -> Iterator[Budget]:
    """One render's budget, shared by everything it runs (nested templates, filters)."""
    b = Budget(limits or RenderLimits())
    token = _current.set(b)
    try:
        yield b
    finally:
        _current.reset(token)


@contextlib.contextmanager
def within_budget() -> Iterator[Budget]:
    """The render under way's budget, or a new one for a render started on its own."""
    found = _current.get()
    if found is not None:
        yield found
    else:
        with budget() as b:
            yield b
