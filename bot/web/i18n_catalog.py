"""The messages the dashboard needs translated, gathered from the source: every
``_()``/``gettext``/``{% trans %}`` in the templates (Babel's Jinja2 extractor), the
``_()`` calls of the web package's Python, the core's messages marked ``N_`` (the script
problems the compliance workspace shows, :mod:`bot.core.messages`), and the vocabulary
labels. ``python -m bot.web.i18n_catalog`` lists the ones no catalogue translates;
``--update [AREA]`` adds them, untranslated, to ``AREA.po`` (default ``messages``) for a
translator."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

from bot.web.i18n import LOCALE_DIR, SUPPORTED, read_catalogue
from bot.web.labels import LABELS

WEB = Path(__file__).resolve().parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
CORE = WEB.parent / "core"
CHECKS = WEB / "workspace" / "checks.py"
#: The core marks its message ids with ``N_`` only (``_`` is no gettext there).
CORE_KEYWORDS = {"N_": None}


def messages() -> Iterator[tuple[str, str]]:
    """(message id, where it is used), sources first, then the labels."""
    for filename, lineno, message, _comments, _context in extract_from_dir(
        WEB, METHODS, options_map=OPTIONS
    ):
        for m in message if isinstance(message, tuple) else (message,):
            if m:
                yield m, f"{filename}:{lineno}"
    for m, where in core_messages():
        yield m, where
    for kind, values in LABELS.items():
        for text in values.values():
            yield text, f"labels.py:{kind}"


@functools.cache
def core_messages() -> tuple[tuple[str, str], ...]:
    """(message id, where) of every ``N_`` in :mod:`bot.core`, in file order."""
    found = extract_from_dir(CORE, [("**.py", "python")], keywords=CORE_KEYWORDS)
    return tuple(
        (message, f"core/{filename}:{lineno}")
        for filename, lineno, message, _comments, _context in found
        if isinstance(message, str) and message
    )


@functools.cache
def problem_messages() -> frozenset[str]:
    """The message ids a document's problem may show (the core's and those of the
    workspace's checks): the workspace editor translates them for its script."""
    checks = extract_from_file("python", CHECKS, keywords=CORE_KEYWORDS)
    return frozenset(m for m, _ in core_messages()) | {
        m for _line, m, _comments, _context in checks if isinstance(m, str)
    }


def catalogue_path(locale: str, area: str = "messages") -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po"


def missing(locale: str) -> list[str]:
    """Message ids without a translation in any of ``locale``'s catalogues."""
    catalog = read_catalogue(locale)
    return sorted({m for m, _ in messages() if catalog.get(m) is None})


def update(locale: str, area: str = "messages") -> None:
    """Add the untranslated messages to ``area``'s catalogue (empty, for a translator)."""
    path = catalogue_path(locale, area)
    catalog = Catalog(locale=locale)
    if path.is_file():
        with path.open("rb") as f:
            catalog = read_po(f, locale=locale)
    for message_id in missing(locale):
        if catalog.get(message_id) is None:
            catalog.add(message_id, "")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, omit_header=False, width=100)


if __name__ == "__main__":
    args = sys.argv[1:]
    for loc in SUPPORTED[:-1]:  # English is the source language
        if "--update" in args:
            rest = args[args.index("--update") + 1 :]
            update(loc, rest[0] if rest else "messages")
        lacking = missing(loc)
        print(f"{loc}: {len(lacking)} untranslated")
        for m in lacking:
            print(f"  {m}")
