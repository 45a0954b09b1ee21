"""Times on the dashboard in the team's local time (``web.timezone``, Asia/Shanghai by
default): the database keeps UTC, pages show local time with the zone's name (the
templates' ``when()``, :mod:`bot.web.i18n`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def to_local(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """``value`` (aware, or naive UTC as SQLite returns it) in ``zone``."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone)
