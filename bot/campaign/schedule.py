"""When a call may be placed: calling windows in the callee's local time, and retries.

Pure functions over aware datetimes; the queue and the worker call them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

_MAX_DAYS_AHEAD = 400


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _hhmm(text: str) -> dt.time:
    if text == "24:00":  # "until the end of the day"
        return dt.time.max
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


@dataclass(frozen=True)
class CallingWindow:
    """Calls are allowed from ``start`` to ``end`` local time on ``weekdays`` (ISO, 1 =
    Monday) that are not ``holidays``. Defaults: 09:00-20:00, Monday to Friday."""

    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(20, 0)
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_campaign(
        cls, start: str, end: str, weekdays: Iterable[int], holidays: Iterable[str]
    ) -> CallingWindow:
        days = frozenset(weekdays) or cls.weekdays
        return cls(
            _hhmm(start), _hhmm(end), days, frozenset(dt.date.fromisoformat(h) for h in holidays)
        )

    def _open_day(self, day: dt.date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def is_open(self, now: dt.datetime, tz: str) -> bool:
        local = now.astimezone(zone(tz))
        return self._open_day(local.date()) and self.start <= local.time() < self.end

    def next_open(self, now: dt.datetime, tz: str) -> dt.datetime:
        """``now`` if the window is open, else the next moment it opens (aware, UTC)."""
        if self.is_open(now, tz):
            return now
        z = zone(tz)
        local = now.astimezone(z)
        day = local.date()
        if local.time() >= self.start:
            day += dt.timedelta(days=1)
        for _ in range(_MAX_DAYS_AHEAD):
            if self._open_day(day):
                return dt.datetime.combine(day, self.start, tzinfo=z).astimezone(dt.UTC)
            day += dt.timedelta(days=1)
        raise ValueError("calling window never opens (no weekdays left outside holidays)")


def backoff(attempts_made: int, minutes: list[int]) -> dt.timedelta:
    """Wait before the next attempt: ``minutes[k]`` after attempt k+1 (the last repeats)."""
    steps = minutes or [60]
    return dt.timedelta(minutes=steps[min(max(attempts_made, 1), len(steps)) - 1])


def next_attempt_at(
    now: dt.datetime, attempts_made: int, minutes: list[int], window: CallingWindow, tz: str
) -> dt.datetime:
    """When to try again: after the backoff, moved into the next calling window."""
    return window.next_open(now + backoff(attempts_made, minutes), tz)
