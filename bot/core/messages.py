"""Messages of the core, in English (the source language) with what a translation needs.

The core reports problems in English (``bot scripts lint`` prints them as they are);
the dashboard shows the same problems in its reader's language. A :class:`Message`
keeps the message id (English with ``%(name)s`` placeholders) and its values apart, so
that the dashboard can translate the id and fill in the values. A value may itself be a
message (``"refused: %(reason)s"`` around a render error of ours), and a text that comes
from a parser (YAML, Jinja, pydantic) is a plain value, never translated.

Message ids are marked with :func:`N_` where they are written; the dashboard's catalogue
tool (:mod:`bot.web.i18n_catalog`) extracts them from here. The core imports nothing of
the web.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Values of a message, sorted by name (hashable, so located errors can be deduplicated).
Params = tuple[tuple[str, "str | Message"], ...]


def N_(message: str) -> str:
    """Marks ``message`` as a message id for the catalogue; translated where shown."""
    return message


def _same(message: str) -> str:
    return message


@dataclass(frozen=True)
class Message:
    """A message id and its values; ``str()`` is the English text."""

    template: str
    params: Params = ()

    @classmethod
    def of(cls, template: str, **params: object) -> Message:
        """``template`` with ``params`` (a value that is not a message becomes text)."""
        values = tuple(
            (name, value if isinstance(value, Message) else str(value))
            for name, value in sorted(params.items())
        )
        return cls(template, values)

    def shown(self, gettext: Callable[[str], str] = _same) -> str:
        """The text in the language of ``gettext`` (English without one). Only a
        template with values is %-formatted, so a plain message may contain ``%``."""
        text = gettext(self.template)
        if not self.params:
            return text
        return text % {
            name: value.shown(gettext) if isinstance(value, Message) else value
            for name, value in self.params
        }

    def __str__(self) -> str:
        return self.shown()

    def as_json(self) -> dict[str, Any]:
        """``{"template": ..., "params": {name: text or message}}`` for a client that
        translates by itself (the workspace editor's script)."""
        return {"template": self.template, "params": params_json(self.params)}


def params_json(params: Params) -> dict[str, Any]:
    return {
        name: value.as_json() if isinstance(value, Message) else value for name, value in params
    }
