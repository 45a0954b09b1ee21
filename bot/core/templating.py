"""Jinja2 for compliance-authored prompts: sandboxed, strict, with speech-friendly filters.

Templates come from people editing them in a web page, so they run in Jinja2's
``ImmutableSandboxedEnvironment`` (no attribute access to Python internals, no file system,
no mutation) with ``StrictUndefined`` (a misspelt or withheld variable is an error, never
an empty string), a short list of filters and methods, and every render under hard limits
(:mod:`bot.core.render_budget`): a template cannot hang or exhaust the process.
"""

from __future__ import annotations

import re
import traceback
from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from bot.core import render_budget
from bot.core.messages import N_, Message
from bot.core.render_budget import budgeted_filter


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
    """A template that cannot be compiled or rendered; ``line`` is within the template.

    ``refused`` marks what the sandbox or the render limits stopped (an escape attempt,
    resource exhaustion): such a template is refused, not merely wrong. ``text`` is the
    message with its id and values (:mod:`bot.core.messages`), ``message`` its English."""

    def __init__(self, text: Message, line: int | None = None, *, refused: bool = False):
        self.text = text
        self.message = str(text)
        super().__init__(self.message)
        self.line = line
        self.refused = refused


#: What a prompt may use: speech-friendly and cheap. Filters that pad, wrap, format or
#: serialise (center, indent, format, wordwrap, tojson, urlize, pprint, batch, slice...)
#: have no use on the phone and are the easy way to build huge strings; ``random`` would
#: make a prompt untestable.
_FILTERS = frozenset(
    {
        *("abs", "capitalize", "count", "d", "default", "first", "float", "int", "join"),
        *("last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr"),
        *("replace", "reverse", "round", "select", "selectattr", "sort", "string", "sum"),
        *("title", "trim", "truncate", "unique", "upper", "wordcount"),
    }
)
#: Methods a prompt may call; every other method of a value is refused by the sandbox.
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        {
            *("upper", "lower", "strip", "lstrip", "rstrip", "startswith", "endswith"),
            *("replace", "split", "join", "count", "find", "isdigit", "title", "capitalize"),
        }
    ),
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
    LoopContext: frozenset({"cycle", "changed"}),
}


class _Budgeted(NodeTransformer):
    """Routes loop items and ``~`` through the render budget (applied as a template is
    compiled, after the static screen has seen the author's own syntax tree)."""

    @staticmethod
    def _wrap(node: nodes.Expr, name: str) -> nodes.Filter:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._wrap(node.iter, "_budget_iter")  # type: ignore[arg-type]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [self._wrap(n, "_budget_value") for n in node.nodes]
        return self._wrap(node, "_budget_value")


class PromptEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every render under :mod:`bot.core.render_budget`."""

    intercepted_binops = frozenset({"*", "**", "/", "//", "%", "+"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        builtin = self.filters
        self.filters = {name: budgeted_filter(name, builtin[name]) for name in _FILTERS}
        self.filters["money"] = budgeted_filter("money", money_cn)
        self.filters["date_cn"] = budgeted_filter("date_cn", date_cn)
        self.filters["_budget_iter"] = render_budget.budgeted_iter
        self.filters["_budget_value"] = _finalize
        tests: dict[str, Any] = dict(self.tests)
        self.tests = {name: budgeted_filter(name, test) for name, test in tests.items()}
        self.globals = {"range": render_budget.bounded_range}

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        return super()._generate(_Budgeted().visit(source), *args, **kwargs)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if not callable(value) or isinstance(value, Macro):
            return True
        allowed = next((m for t, m in _METHODS.items() if isinstance(obj, t)), frozenset())
        return attr in allowed

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        b = render_budget.current()
        render_budget.check_binop(b, operator, left, right)
        return b.sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        b = render_budget.current()
        b.enter()
        try:
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, str):  # a str method: the string is what it works on
                name = f"str.{__obj.__name__}" if __obj.__name__ == "join" else __obj.__name__
                args = tuple(render_budget.check_call(b, name, [owner, *args], kwargs)[1:])
            elif not isinstance(__obj, Macro):  # a macro's arguments are checked where used
                render_budget.check_call(b, "", list(args), kwargs)
            return b.sized(super().call(__context, __obj, *args, **kwargs))
        finally:
            b.leave()


def _finalize(value: Any) -> Any:
    """Every printed value, and every operand of ``~``, before it becomes text."""
    return render_budget.current().sized(value)


@lru_cache(maxsize=1)
def environment() -> PromptEnvironment:
    return PromptEnvironment()


#: Longest prompt source compiled (a prompt is a sentence or two; a block a few more).
MAX_SOURCE = 20_000


def compile_prompt(source: str) -> Template:
    if len(source) > MAX_SOURCE:
        raise PromptError(
            Message.of(
                N_("a prompt of %(n)s characters (at most %(max)s)"),
                n=f"{len(source):,}",
                max=f"{MAX_SOURCE:,}",
            )
        )
    try:
        return environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from exc


def variables_of(source: str) -> set[str]:
    """Free variables a template reads (raises :class:`PromptError` on bad syntax)."""
    try:
        ast = environment().parse(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(exc) from exc
    return set(meta.find_undeclared_variables(ast))


def _syntax_error(exc: TemplateSyntaxError) -> PromptError:
    """Jinja2's own explanation, after a prefix of ours."""
    text = Message.of(N_("template syntax error: %(reason)s"), reason=exc.message)
    return PromptError(text, exc.lineno)


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised at (Jinja2 maps its frames to them)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


#: Why a render was stopped (the render budget's own reason is English, as a value).
_OVER_LIMITS = N_("over the render limits: %(reason)s")


def render(
    template: Template,
    context: dict[str, object],
    limits: render_budget.RenderLimits = render_budget.PROMPT_LIMITS,
) -> str:
    """``template`` rendered under ``limits``; any failure is a :class:`PromptError`
    naming the line, never another exception (a prompt must not take a call down)."""
    with render_budget.budget(limits) as b:
        try:
            return tidy_spaces(render_budget.collect(template.generate(context), b))
        except UndefinedError as exc:
            text = Message.of(N_("undefined variable: %(reason)s"), reason=exc.message)
            raise PromptError(text, _template_line(exc)) from exc
        except SecurityError as exc:
            text = Message.of(N_("refused by the sandbox: %(reason)s"), reason=exc)
            raise PromptError(text, _template_line(exc), refused=True) from exc
        except render_budget.LimitExceeded as exc:
            text = Message.of(_OVER_LIMITS, reason=exc.reason)
            raise PromptError(text, _template_line(exc), refused=True) from exc
        except RecursionError as exc:
            text = Message.of(_OVER_LIMITS, reason=Message(N_("recursion too deep")))
            raise PromptError(text, _template_line(exc), refused=True) from exc
        except MemoryError as exc:
            text = Message.of(_OVER_LIMITS, reason=Message(N_("out of memory")))
            raise PromptError(text, _template_line(exc), refused=True) from exc
        except Exception as exc:  # ZeroDivisionError in a test, TypeError, ValueError...
            text = Message.of(
                N_("cannot be rendered: %(reason)s"), reason=f"{type(exc).__name__}: {exc}"
            )
            raise PromptError(text, _template_line(exc)) from exc
