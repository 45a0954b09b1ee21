"""Jinja2 for compliance-authored prompts: sandboxed, strict, with speech-friendly filters.

Templates come from people editing them in a web page, so they run in Jinja2's
``SandboxedEnvironment`` (no attribute access to Python internals, no file system) with
``StrictUndefined`` (a misspelt or withheld variable is an error, never an empty string).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment


def money_cn(value: float | int | None) -> str:
    """Amounts the way a Mandarin speaker says them: 49800 -> "4.98万元", 800 -> "800元"."""
    if value is None:
        return ""
    amount = float(value)
    if amount >= 10000:
        wan = f"{amount / 10000:.2f}".rstrip("0").rstrip(".")
        return f"{wan}万元"
    return f"{amount:.2f}".rstrip("0").rstrip(".") + "元"


def date_cn(value: date | str | None) -> str:
    """2026-11-18 -> "11月18日" (the year is implied on the phone)."""
    if value is None:
        return ""
    d = value if isinstance(value, date) else date.fromisoformat(str(value))
    return f"{d.month}月{d.day}日"


_CJK_GAP = re.compile(
    r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+|\s+(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])"
)


def tidy_spaces(text: str) -> str:
    """Collapse template whitespace; drop it entirely next to CJK text."""
    return _CJK_GAP.sub("", " ".join(text.split()))


class PromptError(Exception):
    """A template that cannot be compiled or rendered; ``line`` is within the template."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["money"] = money_cn
    env.filters["date_cn"] = date_cn
    return env


def compile_prompt(source: str) -> Template:
    try:
        return environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise PromptError(f"template syntax error: {exc.message}", exc.lineno) from exc


def variables_of(source: str) -> set[str]:
    """Free variables a template reads (raises :class:`PromptError` on bad syntax)."""
    try:
        ast = environment().parse(source)
    except TemplateSyntaxError as exc:
        raise PromptError(f"template syntax error: {exc.message}", exc.lineno) from exc
    return set(meta.find_undeclared_variables(ast))


def render(template: Template, context: dict[str, object]) -> str:
    try:
        return tidy_spaces(template.render(context))
    except UndefinedError as exc:
        raise PromptError(f"undefined variable: {exc.message}") from exc
    except SecurityError as exc:
        raise PromptError(f"refused by the sandbox: {exc}") from exc
