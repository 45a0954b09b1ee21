"""The monitor's figures: shared by views within ``fresh_s``, then served while one
background refresh runs (bounded by ``max_stale_s``), per campaign and period."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import create_engine

from bot.web.config import MonitorThresholds
from bot.web.monitor_cache import MonitorCache
from bot.web.stats import CallFigures, CampaignStats, MonitorOut, QueueCounts, WindowRates

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


class World:
    """A clock the test moves, and a compute that counts its calls (and can be held)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.calls = 0
        self.computed: list[tuple[str | None, int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def compute(self, name: str | None) -> Any:
        def run(_session: Any, now: dt.datetime) -> MonitorOut:
            self.gate.wait(5)
            self.computed.append((name, self.calls))
            overall = CampaignStats(
                id=None, name=name or "all", state="", queue=QueueCounts(),
                figures=CallFigures(), recent=WindowRates(),
            )  # fmt: skip
            return MonitorOut(
                generated_at=now, campaign=name, since=None, thresholds=MonitorThresholds(),
                overall=overall, campaigns=[], alerts=[], hourly=[], failure_reasons=[],
            )  # fmt: skip

        return run


def make(w: World, fresh_s: float = 5.0, max_stale_s: float = 30.0) -> MonitorCache:
    return MonitorCache(create_engine("sqlite://"), fresh_s, max_stale_s, ticks=lambda: w.t)


def get(cache: MonitorCache, w: World, name: str | None = None) -> MonitorOut:
    found = cache.get(None, (name, 7), w.compute(name), now=lambda: NOW)  # type: ignore[arg-type]
    assert found is not None
    return found


def test_views_within_the_step_share_one_computation() -> None:
    w = World()
    cache = make(w)
    first = get(cache, w)
    w.t += 1
    assert get(cache, w) is first and len(w.computed) == 1
    get(cache, w, "nov-mules")  # another campaign: its own figures
    assert len(w.computed) == 2


def test_after_the_step_the_old_figures_are_served_while_one_refresh_runs() -> None:
    w = World()
    cache = make(w)
    first = get(cache, w)
    w.t += 6  # the next step: changed
    w.gate.clear()  # hold the background refresh
    w.calls = 1
    assert get(cache, w) is first and get(cache, w) is first  # no wait, one refresh
    w.gate.set()
    cache.wait()
    assert w.computed == [(None, 0), (None, 1)]
    fresh = get(cache, w)
    assert fresh is not first and len(w.computed) == 2  # the refreshed figures, no third


def test_figures_older_than_max_stale_are_recomputed_before_answering() -> None:
    w = World()
    cache = make(w, fresh_s=5, max_stale_s=30)
    first = get(cache, w)
    w.t += 31
    w.calls = 2
    again = get(cache, w)
    assert again is not first and w.computed == [(None, 0), (None, 2)]


def test_fresh_s_zero_computes_on_every_view() -> None:
    w = World()
    cache = make(w, fresh_s=0)
    get(cache, w), get(cache, w)
    assert len(w.computed) == 2
