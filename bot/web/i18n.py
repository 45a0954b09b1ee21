"""The dashboard's languages: Simplified Chinese by default, English on request.

Templates mark their text with Jinja2's i18n extension (``{% trans %}``, ``_("...")``);
the English text is the message id, and the ``.po`` files of
``bot/web/locale/<locale>/LC_MESSAGES/`` (one per area: ``messages.po`` for the frame,
then ``review.po``, ``workspace.po`` ...) hold the translations (gettext catalogues, read
with Babel and compiled in memory at start, so there is no build step). Vocabulary values are shown with their labels
(:mod:`bot.web.labels`), dates and numbers in the locale's format (Babel).

The locale of a request: ``?lang=en`` (remembered in a cookie), else the cookie, else the
browser's ``Accept-Language`` among the supported ones, else ``web.default_locale``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: The locales the dashboard speaks, the default first.
SUPPORTED = ("zh_CN", "en")
#: The cookie that remembers a ``?lang=`` choice (a year).
LANG_COOKIE = "bot_lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; translated where shown."""
    return message


def normalise(tag: str | None) -> str | None:
    """A supported locale for ``tag`` (``zh``, ``zh-CN``, ``zh_Hans_CN``, ``en-US``...)."""
    if not tag:
        return None
    try:
        parsed = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if parsed.language == "zh" and parsed.script in (None, "Hans"):
        return "zh_CN"
    if parsed.language == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The first supported locale of an ``Accept-Language`` header, by quality."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            quality = float(q) if q else 1.0
        except ValueError:
            continue
        found = normalise(tag)
        if found:
            ranked.append((-quality, i, found))
    return min(ranked)[2] if ranked else None


def choose(query: str | None, cookie: str | None, accept_language: str | None, default: str) -> str:
    return normalise(query) or normalise(cookie) or negotiate(accept_language) or default


def catalogue_files(locale: str) -> list[Path]:
    """``locale``'s catalogues: one ``.po`` per area of the dashboard (``messages.po``
    for the shared frame, ``review.po``, ``workspace.po`` ...), so that translators of
    different areas do not edit one file."""
    return sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))


def read_catalogue(locale: str) -> Catalog:
    """Every area's catalogue of ``locale`` merged into one (a message translated in
    two files: the one of the later file name wins)."""
    merged = Catalog(locale=locale)
    for po in catalogue_files(locale):
        with po.open("rb") as f:
            for message in read_po(f, locale=locale):
                if message.id and message.string:
                    merged.add(message.id, message.string, context=message.context)
    return merged


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalogue of ``locale`` (English, the source language, has none)."""
    if not catalogue_files(locale):
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, read_catalogue(locale))
    buffer.seek(0)
    return Translations(buffer)


def html_lang(locale: str) -> str:
    """``lang`` attribute value: ``zh-CN``, ``en``."""
    return locale.replace("_", "-")


def context(locale: str, zone: ZoneInfo) -> Mapping[str, Any]:
    """What a template needs to speak ``locale``: the gettext callables of the i18n
    extension, the ``lang`` attribute, and formatters for dates, numbers and labels."""
    from bot.web.labels import label
    from bot.web.localtime import to_local

    t = translations(locale)

    def gettext(message: str, **params: Any) -> str:
        text = t.gettext(message)
        return text % params if params else text

    def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
        text = t.ngettext(singular, plural, n)
        return text % {"num": n, **params}

    def when(value: dt.datetime | None, fmt: str = "yyyy-MM-dd HH:mm") -> str:
        if value is None:
            return "–"
        return format_datetime(to_local(value, zone), fmt, locale=locale)

    def number(value: float | None, fmt: str | None = None) -> str:
        return "–" if value is None else format_decimal(value, fmt, locale=locale)

    def percent(value: float | None, fmt: str = "#,##0.0%") -> str:
        return "–" if value is None else format_percent(value, fmt, locale=locale)

    named: Callable[[str, str | None], str] = lambda kind, value: label(kind, value, gettext)  # noqa: E731
    return {
        "gettext": gettext,
        "_": gettext,
        "ngettext": ngettext,
        "locale": locale,
        "html_lang": html_lang(locale),
        "when": when,
        "number": number,
        "percent": percent,
        "label": named,
        "other_locales": [loc for loc in SUPPORTED if loc != locale],
    }
