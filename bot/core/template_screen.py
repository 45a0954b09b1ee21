"""The static sandbox screen: constructs refused in a template before it is stored.

A first line of defence, run on what a person typed (the Jinja2 syntax tree of every
prompt, plus a raw-text pass that also covers YAML that does not parse): the usual first
steps of a sandbox escape (``''.__class__``, ``cycler.__init__.__globals__``, ``|attr``,
``_``-prefixed names), loading other templates, and the obvious resource exhaustion
(``9**9**9``, huge ranges, nested loops). Whatever it misses is still bounded at render
time by :mod:`bot.core.render_budget`. Used by ``bot scripts lint`` and the compliance
workspace alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from bot.core.messages import N_, Message
from bot.core.templating import environment
from bot.core.yamlsource import SourceError, SourceFileError, load_yaml

#: Jinja2's default globals (and names that templating engines commonly expose) are the
#: usual first step of a sandbox escape; prompts only need the account's variables.
_ESCAPE_NAMES = frozenset({"cycler", "joiner", "namespace", "lipsum", "self", "config", "request"})
#: Attributes the sandbox blocks besides ``_``-prefixed ones (frames, code, globals).
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "format_map",
    }
)
_MAX_RANGE = 100
_MAX_FACTOR = 1000


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _reason(node: nodes.Node, loop_depth: int) -> Message | None:
    """Why ``node`` is refused, or None."""
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_") or node.attr in _INTERNAL_ATTRS:
            return Message.of(N_("access to the internal attribute '%(name)s'"), name=node.attr)
    elif isinstance(node, nodes.Getitem):
        key = node.arg
        if not isinstance(key, nodes.Const):
            return Message(N_("a computed subscript (prompts may only use constant keys)"))
        if isinstance(key.value, str) and key.value.startswith("_"):
            return Message.of(N_("access to the internal key '%(name)s'"), name=key.value)
    elif isinstance(node, nodes.Keyword) and node.key == "attribute":
        value = _const_str(node.value)
        if value is None or value.startswith("_"):
            return Message(N_("an 'attribute=' argument naming an internal or computed attribute"))
    elif isinstance(node, nodes.Filter | nodes.Test) and node.name == "attr":
        return Message(N_("the 'attr' filter (it reaches object internals)"))
    elif isinstance(node, nodes.Name) and node.name in _ESCAPE_NAMES:
        return Message.of(
            N_("the Jinja global '%(name)s' (a known sandbox escape route)"), name=node.name
        )
    elif isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
        return Message(N_("a string naming a dunder ('__'): a sandbox escape attempt"))
    elif isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
        return Message(N_("loading another template"))
    elif isinstance(node, nodes.Pow):
        return Message(N_("the power operator (resource exhaustion)"))
    elif isinstance(node, nodes.Mul):
        return _mul_reason(node)
    elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "range":
            return _range_reason(node)
    elif isinstance(node, nodes.For) and loop_depth > 0:
        return Message(N_("nested loops (resource exhaustion)"))
    return None


def _mul_reason(node: nodes.Mul) -> Message | None:
    for side in (node.left, node.right):
        if isinstance(side, nodes.List | nodes.Tuple) or (
            isinstance(side, nodes.Const) and isinstance(side.value, str)
        ):
            return Message(N_("repeating a string or list (resource exhaustion)"))
        if (
            isinstance(side, nodes.Const)
            and isinstance(side.value, int | float)
            and abs(side.value) > _MAX_FACTOR
        ):
            return Message(N_("multiplying by a large number (resource exhaustion)"))
    return None


def _range_reason(node: nodes.Call) -> Message | None:
    for arg in node.args:
        if not (isinstance(arg, nodes.Const) and isinstance(arg.value, int)):
            return Message(N_("range() with a computed bound (resource exhaustion)"))
        if abs(arg.value) > _MAX_RANGE:
            return Message.of(N_("range() over %(n)s items (resource exhaustion)"), n=_MAX_RANGE)
    return None


def _walk(node: nodes.Node, depth: int = 0) -> Iterator[tuple[nodes.Node, int]]:
    yield node, depth
    inner = depth + 1 if isinstance(node, nodes.For) else depth
    for child in node.iter_child_nodes():
        yield from _walk(child, inner)


def screen_template(text: str) -> list[tuple[int, Message]]:
    """(line within ``text``, reason) of every construct refused in a prompt."""
    try:
        ast = environment().parse(text)
    except TemplateSyntaxError:
        return []  # not a template that could run; a lint error elsewhere
    found: list[tuple[int, Message]] = []
    for node, depth in _walk(ast):
        reason = _reason(node, depth)
        if reason:
            found.append((getattr(node, "lineno", 1) or 1, reason))
    return found


_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_RAW = re.compile(
    r"\.\s*_|\[\s*['\"]_|__|\|\s*attr\b|\b(?:cycler|joiner|namespace|lipsum)\b|\*\*|\b(?:include|import|extends)\b"
)


def screen_raw(source: str) -> list[tuple[int, Message]]:
    """A textual pass over the whole source: catches escapes anywhere in the file,
    including YAML that does not parse (which the AST pass cannot see)."""
    found = []
    for tag in _TAG.finditer(source):
        hit = _RAW.search(tag.group(0))
        if hit:
            line = source.count("\n", 0, tag.start() + hit.start()) + 1
            construct = hit.group(0).strip()
            text = Message.of(
                N_("template construct '%(construct)s' is not allowed"), construct=construct
            )
            found.append((line, text))
    return found


def _strings(
    data: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))


def screen(source: str, file: str) -> list[SourceError]:
    """Every refused construct of a document, one per line (the precise reason first)."""
    found: dict[int | None, SourceError] = {}
    try:
        data, lines = load_yaml(source, file)
    except SourceFileError:
        data, lines = None, None
    if lines is not None:
        for path, text in _strings(data):
            if "{" not in text:
                continue
            for line_in_text, reason in screen_template(text):
                line = lines.text_line(path, line_in_text)
                field = ".".join(map(str, path))
                found.setdefault(line, SourceError.said(file, line, field, reason))
    for line, reason in screen_raw(source):
        found.setdefault(line, SourceError.said(file, line, "", reason))
    return sorted(found.values(), key=lambda p: p.line or 0)
