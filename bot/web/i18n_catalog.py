"""The messages the dashboard needs translated, gathered from the source: every
``_()``/``gettext``/``{% trans %}`` in the templates (Babel's Jinja2 extractor), the
``_()`` calls of the web package's Python, and the vocabulary labels. ``python -m
bot.web.i18n_catalog`` lists the ones a catalogue lacks; ``--update`` adds them to the
catalogues (untranslated, for a translator) and drops the ones no longer used."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.web.i18n import LOCALE_DIR, SUPPORTED
from bot.web.labels import LABELS

WEB = Path(__file__).resolve().parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def messages() -> Iterator[tuple[str, str]]:
    """(message id, where it is used), sources first, then the labels."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        WEB, METHODS, options_map=OPTIONS
    ):
        for m in message if isinstance(message, tuple) else (message,):
            if m:
                yield m, f"{filename}:{lineno}"
    for kind, values in LABELS.items():
        for text in values.values():
            yield text, f"labels.py:{kind}"


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def load(locale: str) -> Catalog:
    path = catalogue_path(locale)
    if not path.is_file():
        return Catalog(locale=locale)
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def missing(locale: str) -> list[str]:
    """Message ids without a translation in ``locale``'s catalogue."""
    catalog = load(locale)
    return sorted(
        {m for m, _ in messages() if not (catalog.get(m) and catalog.get(m).string)}  # type: ignore[union-attr]
    )


def update(locale: str) -> None:
    catalog, used = load(locale), dict(messages())
    for message_id, where in used.items():
        if catalog.get(message_id) is None:
            catalog.add(message_id, "", locations=[(where, 0)])
    for message in list(catalog):
        if message.id and message.id not in used:
            catalog.delete(message.id)
    path = catalogue_path(locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, omit_header=False, width=100)


if __name__ == "__main__":
    for loc in SUPPORTED[:-1]:  # English is the source language
        if "--update" in sys.argv:
            update(loc)
        lacking = missing(loc)
        print(f"{loc}: {len(lacking)} untranslated")
        for m in lacking:
            print(f"  {m}")
