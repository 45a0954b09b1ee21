"""Calling windows in the callee's local time, and retry backoff."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.campaign.schedule import CallingWindow, backoff, next_attempt_at

SH = "Asia/Shanghai"
W = CallingWindow()  # 09:00-20:00, Monday-Friday


def utc(y: int, m: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=dt.UTC)


# 2026-11-23 is a Monday. Shanghai is UTC+8.
@pytest.mark.parametrize(
    "now, is_open",
    [
        (utc(2026, 11, 23, 1, 0), True),  # 09:00 local
        (utc(2026, 11, 23, 0, 59), False),  # 08:59 local
        (utc(2026, 11, 23, 11, 59), True),  # 19:59 local
        (utc(2026, 11, 23, 12, 0), False),  # 20:00 local: end is exclusive
        (utc(2026, 11, 28, 3, 0), False),  # Saturday
    ],
)
def test_window_is_in_callee_local_time(now: dt.datetime, is_open: bool) -> None:
    assert W.is_open(now, SH) is is_open


def test_same_instant_differs_by_timezone() -> None:
    now = utc(2026, 11, 23, 14, 0)  # 22:00 Shanghai, 15:00 Berlin
    assert not W.is_open(now, SH) and W.is_open(now, "Europe/Berlin")


def test_next_open_skips_evening_weekend_and_holidays() -> None:
    friday_evening = utc(2026, 11, 27, 13, 0)  # Friday 21:00 local
    assert W.next_open(friday_evening, SH) == utc(2026, 11, 30, 1, 0)  # Monday 09:00 local
    holiday = CallingWindow(holidays=frozenset({dt.date(2026, 11, 30)}))
    assert holiday.next_open(friday_evening, SH) == utc(2026, 12, 1, 1, 0)
    early = utc(2026, 11, 24, 0, 0)  # Tuesday 08:00 local
    assert W.next_open(early, SH) == utc(2026, 11, 24, 1, 0)
    assert W.next_open(utc(2026, 11, 24, 5, 0), SH) == utc(2026, 11, 24, 5, 0)


def test_window_that_never_opens_is_an_error() -> None:
    with pytest.raises(ValueError, match="never opens"):
        CallingWindow.from_campaign("09:00", "20:00", [8], []).next_open(utc(2026, 11, 23, 0), SH)


def test_from_campaign_parses_strings() -> None:
    w = CallingWindow.from_campaign("08:30", "18:00", [6, 7], ["2026-11-29"])
    assert (
        w.start == dt.time(8, 30)
        and w.weekdays == frozenset({6, 7})
        and dt.date(2026, 11, 29) in w.holidays
    )
    assert CallingWindow.from_campaign("09:00", "20:00", [], []).weekdays == W.weekdays


@pytest.mark.parametrize(
    "attempts, minutes, expected",
    [(1, [30, 120], 30), (2, [30, 120], 120), (5, [30, 120], 120), (1, [], 60)],
)
def test_backoff(attempts: int, minutes: list[int], expected: int) -> None:
    assert backoff(attempts, minutes) == dt.timedelta(minutes=expected)


def test_next_attempt_lands_inside_the_window() -> None:
    now = utc(2026, 11, 23, 11, 30)  # Monday 19:30 local, +60 min = 20:30 -> Tuesday 09:00
    assert next_attempt_at(now, 1, [60], W, SH) == utc(2026, 11, 24, 1, 0)
