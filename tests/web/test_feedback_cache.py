"""The feedback cache: computed once per period and verdict set, served stale (bounded)
while a background refresh runs, recomputed at once when too old."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import create_engine

from bot.web.feedback_cache import FeedbackCache, period_start
from bot.web.stats import FeedbackOut

NOW = dt.datetime(2026, 12, 1, 9, 41, 7, tzinfo=dt.UTC)


class World:
    """Verdict versions and a compute that records its calls (and can be held up)."""

    def __init__(self) -> None:
        self.version = (10, 100)
        self.computed: list[tuple[dt.datetime, tuple[int, int]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def compute(self, _session: Any, now: dt.datetime, since: dt.datetime) -> FeedbackOut:
        self.gate.wait(5)
        self.computed.append((since, self.version))
        n = self.version[0]
        return FeedbackOut(
            generated_at=now, since=since, verdicts=n, agreed=0, corrected_turns=0,
            by_script=[], by_step=[], by_rule=[], by_intent=[], by_week=[],
        )  # fmt: skip


def make(world: World, max_stale_s: float) -> FeedbackCache:
    return FeedbackCache(
        create_engine("sqlite://"),
        max_stale_s=max_stale_s,
        compute=world.compute,
        version=lambda _s: world.version,
    )


def test_one_computation_per_period_and_verdict_set() -> None:
    w = World()
    cache = make(w, 60)
    first = cache.get(None, NOW, 90)  # type: ignore[arg-type]
    again = cache.get(None, NOW + dt.timedelta(minutes=5), 90)  # type: ignore[arg-type]
    assert again is first and len(w.computed) == 1
    assert w.computed[0][0] == dt.datetime(2026, 9, 2, 9, 0, tzinfo=dt.UTC)  # a whole hour
    cache.get(None, NOW, 30)  # type: ignore[arg-type]
    assert len(w.computed) == 2  # another period, another entry
    cache.get(None, NOW + dt.timedelta(hours=1), 90)  # type: ignore[arg-type]
    assert len(w.computed) == 3  # the next hour starts a new period


def test_new_verdicts_are_served_stale_while_one_refresh_runs() -> None:
    w = World()
    cache = make(w, 60)
    assert cache.get(None, NOW, 90).verdicts == 10  # type: ignore[arg-type]
    w.version = (11, 101)
    w.gate.clear()  # hold the background refresh
    stale = cache.get(None, NOW, 90)  # type: ignore[arg-type]
    stale_again = cache.get(None, NOW, 90)  # type: ignore[arg-type]
    assert stale.verdicts == stale_again.verdicts == 10
    w.gate.set()
    cache.wait()
    assert len(w.computed) == 2  # one refresh, however many requests came meanwhile
    assert cache.get(None, NOW, 90).verdicts == 11  # type: ignore[arg-type]
    assert len(w.computed) == 2


def test_too_old_figures_are_recomputed_at_once() -> None:
    w = World()
    cache = make(w, 0.0)
    cache.get(None, NOW, 90)  # type: ignore[arg-type]
    w.version = (12, 103)
    assert cache.get(None, NOW, 90).verdicts == 12  # type: ignore[arg-type]
    assert [v for _, v in w.computed] == [(10, 100), (12, 103)]


def test_period_start_is_a_whole_hour() -> None:
    assert period_start(NOW, 7) == dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
