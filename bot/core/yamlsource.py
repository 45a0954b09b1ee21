"""YAML loading that remembers where every value came from.

Compliance staff edit scripts and rule sets by hand, so every error we report must
point at a file and line. PyYAML's composer already knows the position of each node;
we keep a ``path -> line`` map next to the plain Python data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.core.messages import N_, Message, Params

PathKey = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader where only ``true``/``false`` are booleans (as in YAML 1.2).

    YAML 1.1 also reads ``on``, ``off``, ``yes``, ``no`` as booleans, which turns a
    script's ``on:`` routing key into ``True`` and surprises people editing by hand.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass(frozen=True)
class SourceError:
    """One problem in a source file, with the place a person should look.

    ``message`` is the English text (what ``bot scripts lint`` prints); ``template`` and
    ``params`` are its message id and values for a translation (see
    :mod:`bot.core.messages`), empty for a parser's own message."""

    file: str
    line: int | None
    field: str
    message: str
    template: str = ""
    params: Params = ()

    @classmethod
    def of(
        cls, file: str, line: int | None, field: str, template: str, **params: object
    ) -> SourceError:
        """An error whose message is ``template % params`` (``template`` marked ``N_``)."""
        return cls.said(file, line, field, Message.of(template, **params))

    @classmethod
    def said(cls, file: str, line: int | None, field: str, message: Message) -> SourceError:
        return cls(file, line, field, str(message), message.template, message.params)

    @property
    def text(self) -> Message | None:
        """The translatable message, or None for a parser's own text."""
        return Message(self.template, self.params) if self.template else None

    def shown(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext`` (a parser's text as it is)."""
        text = self.text
        return text.shown(gettext) if text is not None else self.message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class SourceFileError(Exception):
    """Raised when a file cannot be used at all; carries every problem found."""

    def __init__(self, errors: Sequence[SourceError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclass
class LineMap:
    """Line numbers (1-based) of mapping keys and sequence items, by path."""

    lines: dict[PathKey, int] = field(default_factory=dict)
    #: For scalars: the line where the text itself starts (after ``|`` / ``>``).
    content_lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: Sequence[str | int]) -> int | None:
        """Line of ``path`` or of its nearest ancestor that we know."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def text_line(self, path: Sequence[str | int], line_in_text: int | None) -> int | None:
        """File line of line ``line_in_text`` (1-based) inside the scalar at ``path``."""
        start = self.content_lines.get(tuple(path))
        if start is None:
            return self.line(path)
        return start + (line_in_text or 1) - 1


def _walk(node: yaml.Node, path: PathKey, out: LineMap) -> None:
    out.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        block = node.style in ("|", ">")
        out.content_lines[path] = node.start_mark.line + (2 if block else 1)
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            out.lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), out)


def load_yaml(text: str, file: str) -> tuple[Any, LineMap]:
    """Parse ``text``; raise :class:`SourceFileError` with the line on syntax errors."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceFileError(
            [
                SourceError.of(
                    file, line, "", N_("invalid YAML: %(reason)s"), reason=exc.problem or exc
                )
            ]
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceFileError(
            [SourceError.of(file, None, "", N_("invalid YAML: %(reason)s"), reason=exc)]
        ) from exc
    lines = LineMap()
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def load_yaml_file(path: Path) -> tuple[Any, LineMap]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFileError(
            [SourceError.of(str(path), None, "", N_("cannot read: %(reason)s"), reason=exc)]
        ) from exc
    return load_yaml(text, str(path))


def pydantic_errors(exc: Any, file: str, lines: LineMap, prefix: PathKey = ()) -> list[SourceError]:
    """Turn a pydantic ``ValidationError`` into located :class:`SourceError` items."""
    out = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        dotted = ".".join(str(p) for p in loc)
        out.append(SourceError(file, lines.line(loc), dotted, err["msg"], _rule(err)))
    return out


def _rule(err: Any) -> str:
    """The message id of a model's own rule (a validator's ``ValueError`` text, which
    pydantic prints after "Value error, "); "" for pydantic's own messages."""
    cause = err.get("ctx", {}).get("error") if err.get("type") == "value_error" else None
    return str(cause) if isinstance(cause, ValueError) else ""
