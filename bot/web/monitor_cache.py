"""The campaign monitor's figures, shared by everyone watching (the page, the wall
display, the API) and kept at most a few seconds old.

At 100,000 calls a week the monitor's aggregates take a few hundred milliseconds
(``bench/web_bench.py``), and every open monitor asks again on each refresh. A live
campaign changes the figures every second, so no data version is worth reading: the
version is the clock, in steps of ``fresh_s``. Within a step, views share one
computation; after it, a view is served the figures it has while one background thread
recomputes them (at most ``max_stale_s`` old; older, it waits for new ones). The figures
say when they were computed (``generated_at``), which the pages show. ``fresh_s = 0``
computes on every view.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.web.snapshots import Snapshots
from bot.web.stats import MonitorOut

#: (campaign name or None for all, days or None for ever)
Key = tuple[str | None, int | None]


class MonitorCache:
    """One per app (``app.state.monitor_cache``); thread-safe."""

    def __init__(
        self,
        engine: Engine,
        fresh_s: float = 5.0,
        max_stale_s: float = 30.0,
        size: int = 32,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fresh_s = fresh_s
        self._ticks = ticks
        self._snapshots: Snapshots[Key, MonitorOut | None] = Snapshots(
            engine, max_stale_s, size, ticks
        )

    def _step(self, _session: Session | None = None) -> int:
        return int(self._ticks() // self.fresh_s)

    def get(
        self,
        session: Session,
        key: Key,
        compute: Callable[[Session, dt.datetime], MonitorOut | None],
        now: Callable[[], dt.datetime],
    ) -> MonitorOut | None:
        """The figures for ``key``: ``compute(session, now)``, or a copy of at most
        ``fresh_s`` (``max_stale_s`` while a refresh runs) ago."""
        if self.fresh_s <= 0:
            return compute(session, now())
        return self._snapshots.get(
            session, key, self._step(), lambda s: compute(s, now()), current=self._step
        )

    def wait(self, timeout: float = 30.0) -> None:
        """Until no refresh is running (tests, orderly shutdown)."""
        self._snapshots.wait(timeout)
