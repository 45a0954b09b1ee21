"""Hard limits on rendering a compliance-authored template.

A prompt is text a person wrote in a web page, so rendering it must never take the process
down: no stuck thread, no gigabyte string, no ``RecursionError`` surfacing as a 500. The
static screen (:mod:`bot.core.template_screen`) refuses the obvious attempts before a
template is stored; this module is what cannot be bypassed, because every place where a
Jinja2 template can spend time or memory goes through it while it renders:

* every call (macros, ``caller()``, ``loop()`` in recursive loops, methods) and every
  loop iteration is a *step*, and nested calls count *depth*;
* every operator the sandbox intercepts (``* ** / // % +``) is checked before it runs:
  a sequence repeated or joined past :attr:`RenderLimits.size`, an integer past
  :attr:`RenderLimits.int_bits`, a ``%`` format with a huge width;
* every filter and method call is checked before it runs (a width or count argument
  larger than ``size``, a format string with a huge width) and its result after;
* ``~`` concatenations are checked after they are built (their operands already were);
* the rendered prompt is collected chunk by chunk against :attr:`RenderLimits.output`.

Steps make the limit deterministic (the same template is refused the same way on a busy
machine); ``seconds`` is the backstop. Because no single operation may build a value larger
than ``size``, none of them can run long between two checks, so the budget interrupts
anything within about ``seconds``. Budgets nest: a lint or preview of a whole document runs
every prompt inside one :func:`session` budget as well as each prompt's own.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any


@dataclass(frozen=True)
class RenderLimits:
    """What one render (or one :func:`session`) may spend."""

    seconds: float = 1.0
    steps: int = 20_000  # calls, loop iterations and operators
    depth: int = 30  # nested calls (macros calling macros, recursive loops)
    output: int = 2_000  # characters of the rendered prompt (a phone prompt is ~100)
    size: int = 20_000  # characters or items of any value built while rendering
    int_bits: int = 256  # no prompt needs an integer past 10**77


#: Each prompt, in lint, preview, evaluation and live calls alike.
PROMPT_LIMITS = RenderLimits()
#: Every prompt of one document checked together (lint, the editor's check, preview).
DOCUMENT_LIMITS = RenderLimits(seconds=5.0, steps=400_000, output=400_000)


class LimitExceeded(Exception):
    """A render went past one of its limits; ``reason`` says which, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Budget:
    """Steps, depth and time left to one render; ``outer`` is the enclosing session's."""

    def __init__(self, limits: RenderLimits, outer: Budget | None = None):
        self.limits = limits
        self.outer = outer
        self.steps = 0
        self.depth = 0
        self.deadline = time.monotonic() + limits.seconds

    def tick(self) -> None:
        budget: Budget | None = self
        while budget is not None:
            budget.steps += 1
            if budget.steps > budget.limits.steps:
                raise LimitExceeded(
                    f"more than {budget.limits.steps:,} steps (calls, loop turns, operators)"
                )
            if budget.steps % 64 == 0 and time.monotonic() > budget.deadline:
                raise LimitExceeded(f"more than {budget.limits.seconds:g} s of rendering")
            budget = budget.outer

    def enter(self) -> None:
        self.tick()
        self.depth += 1
        if self.depth > self.limits.depth:
            raise LimitExceeded(f"calls nested more than {self.limits.depth} deep")

    def leave(self) -> None:
        self.depth -= 1

    def sized(self, value: Any) -> Any:
        """``value`` if it is within :attr:`RenderLimits.size`: the characters it would
        print as, counting every string inside a container (a list of one long string
        repeated is as long as its text, however few bytes it occupies)."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.check_int(value)
        elif weight(value, self.limits.size) > self.limits.size:
            raise LimitExceeded(f"a value of more than {self.limits.size:,} characters or items")
        return value

    def check_int(self, value: int) -> None:
        if value.bit_length() > self.limits.int_bits:
            raise LimitExceeded(f"an integer of more than {self.limits.int_bits} bits")


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "render_budget", default=None
)
_session: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "render_session", default=None
)


def current() -> Budget:
    """The budget of the render in progress; outside one (Jinja2 folding constants while
    it compiles) a fresh prompt budget for this one operation."""
    return _current.get() or Budget(PROMPT_LIMITS)


@contextmanager
def budget(limits: RenderLimits = PROMPT_LIMITS) -> Iterator[Budget]:
    """Run one render under ``limits``, and under the enclosing :func:`session`'s."""
    b = Budget(limits, outer=_session.get())
    token = _current.set(b)
    try:
        yield b
    finally:
        _current.reset(token)


@contextmanager
def session(limits: RenderLimits = DOCUMENT_LIMITS) -> Iterator[Budget]:
    """One budget shared by every render inside (checking a whole document); inside
    another session, that one's."""
    existing = _session.get()
    if existing is not None:
        yield existing
        return
    b = Budget(limits)
    token = _session.set(b)
    try:
        yield b
    finally:
        _session.reset(token)


# -- checks before an operation runs ------------------------------------------------------

_CONTAINERS = (list, tuple, set, frozenset, dict)


def weight(value: object, limit: int) -> int:
    """Roughly the characters ``str(value)`` would have, counted without building it and
    given up once past ``limit``. Shared sub-containers are counted each time they appear
    (that is what printing does) but measured once."""
    memo: dict[int, int] = {}

    def w(v: object) -> int:
        if isinstance(v, str | bytes):
            return len(v)
        if not isinstance(v, _CONTAINERS):
            return 8  # numbers (bounded by int_bits), dates, booleans: short when printed
        key = id(v)
        if key in memo:
            return memo[key]
        memo[key] = limit + 1  # a container inside itself cannot be printed either
        total = len(v)
        parts = (x for kv in v.items() for x in kv) if isinstance(v, dict) else v
        for x in parts:
            total += w(x)
            if total > limit:
                break
        memo[key] = total
        return total

    return w(value)


#: A %-format width or precision of five digits or more ("%99999d"), or one taken from
#: the arguments ("%*d"), which could be anything.
_HUGE_WIDTH = re.compile(r"%[-#0 +]*(?:\d{5,}|\*)|%[-#0 +]*\d*\.(?:\d{5,}|\*)")


def check_format(fmt: object) -> None:
    if isinstance(fmt, str) and _HUGE_WIDTH.search(fmt):
        raise LimitExceeded("a format width of 10,000 or more, or one taken from a value")


def check_binop(b: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` before it runs if it would exceed a limit."""
    b.tick()
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    size = b.limits.size
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
                total = weight(seq, size) * times
                if total > size:
                    raise LimitExceeded(f"repeating a value to {total:,} characters or items")
        both_ints = isinstance(left, int) and isinstance(right, int)
        if both_ints and left.bit_length() + right.bit_length() > b.limits.int_bits:
            raise LimitExceeded(f"an integer of more than {b.limits.int_bits} bits")
    elif operator == "**" and numbers and abs(left) > 1 and right > 0:
        if max(abs(int(left)), 2).bit_length() * right > b.limits.int_bits:
            raise LimitExceeded(f"a power of more than {b.limits.int_bits} bits")
    elif operator == "+" and not numbers:
        total = weight(left, size) + weight(right, size)
        if total > size:
            raise LimitExceeded(f"joining values to {total:,} characters or items")
    elif operator == "%":
        check_format(left)
        b.sized(right)


def _replace_size(text: object, old: object, new: object, count: object = -1) -> int:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _join_size(b: Budget, items: list[Any], sep: object) -> int:
    return sum(weight(x, b.limits.size) for x in items) + len(str(sep)) * max(len(items) - 1, 0)


def check_call(b: Budget, name: str, args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """Refuse a filter or method call (``args[0]`` is the value it works on) that would
    build a value past ``size``; returns the arguments to call it with (an iterable to
    join is taken into a list once, to be measured)."""
    for value in (*args, *kwargs.values()):
        b.sized(value)
    size = b.limits.size
    if name == "replace":
        if _replace_size(*args[:4], **kwargs) > size:
            raise LimitExceeded(f"a replacement producing more than {size:,} characters")
    elif name == "join" and args:
        items = list(budgeted_iter(args[0] if not isinstance(args[0], str) else [args[0]]))
        sep = args[1] if len(args) > 1 else kwargs.get("d", "")
        if _join_size(b, items, sep) > size:
            raise LimitExceeded(f"joining values to more than {size:,} characters")
        args = [items, *args[1:]]
    elif name == "str.join" and len(args) > 1:
        items = list(budgeted_iter(args[1]))
        if _join_size(b, items, args[0]) > size:
            raise LimitExceeded(f"joining values to more than {size:,} characters")
        args = [args[0], items]
    elif name == "sum" and args:
        items = list(budgeted_iter(args[0]))
        if not all(isinstance(x, int | float) for x in items):
            raise LimitExceeded("sum() of values that are not numbers")
        args = [items, *args[1:]]
    elif name == "truncate":
        for value in (*args[1:2], kwargs.get("length", 0)):
            if isinstance(value, int) and abs(value) > size:
                raise LimitExceeded(f"an argument of {value:,} (at most {size:,})")
    return args


def budgeted_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja2 filter or test that ticks, is checked before it runs and sized after.

    A leading context/environment argument (``pass_context`` and friends, whose marker
    :func:`wraps` keeps) is passed through unchecked."""
    skip = 0 if getattr(func, "jinja_pass_arg", None) is None else 1

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        b = current()
        b.tick()
        checked = check_call(b, name, list(args[skip:]), kwargs)
        return b.sized(func(*args[:skip], *checked, **kwargs))

    return guarded


def budgeted_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """A loop's items, one step each."""
    b = current()
    for item in iterable:
        b.tick()
        yield item


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most ``size`` items."""
    r = range(*args)
    if len(r) > current().limits.size:
        raise LimitExceeded(f"range() over {len(r):,} items")
    return r


def collect(chunks: Iterable[str], b: Budget) -> str:
    """The rendered text, refused as soon as it passes :attr:`RenderLimits.output`."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > b.limits.output:
            raise LimitExceeded(f"a prompt of more than {b.limits.output:,} characters")
        out.append(chunk)
        b.tick()
    return "".join(out)
