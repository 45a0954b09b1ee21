"""Times on the dashboard in the team's local time (``web.timezone``, Asia/Shanghai by
default): the database keeps UTC, pages show local time with the zone's name."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def to_local(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """``value`` (aware, or naive UTC as SQLite returns it) in ``zone``."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone)


def local_filter(zone: ZoneInfo):  # type: ignore[no-untyped-def]
    """The templates' ``|local`` filter: ``{{ t|local }}`` -> ``2026-12-03 18:40``;
    ``{{ t|local("%H:%M:%S") }}``; None renders as an en dash."""

    def local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return "–" if value is None else to_local(value, zone).strftime(fmt)

    return local
