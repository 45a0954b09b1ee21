"""Feedback figures served from memory, refreshed when verdicts change.

The feedback statistics aggregate every reviewed callee turn of the period (at 100,000
calls: ~35,000 verdicts, ~230,000 turns, ~1.2 s on two cores), too slow to compute on
each page view. Verdicts are append-only and what they are joined with (turns, risk
explanations) never changes after a call, so the figures of a period depend only on the
set of verdicts: ``(count, newest id)`` identifies it exactly.

* Nothing cached for the period: computed now (the first view pays once).
* Cached and no verdict since: served as is.
* Verdicts since, and the cached figures are younger than ``max_stale_s``: served at
  once while one background thread recomputes them (the page says "as of"); older than
  that: recomputed now. ``max_stale_s = 0`` always recomputes on change.

Periods start at a whole hour (``now - days``, floored) and are keyed by that start, so
requests within the same hour share an entry.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from cachetools import LRUCache
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.web.stats import FeedbackOut, feedback

Compute = Callable[[Session, dt.datetime, dt.datetime], FeedbackOut]
Version = Callable[[Session], tuple[int, int]]


@dataclass
class _Entry:
    data: FeedbackOut
    version: tuple[int, int]
    computed_at: float


def period_start(now: dt.datetime, days: int) -> dt.datetime:
    return (now - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def verdict_version(session: Session) -> tuple[int, int]:
    """(number of verdicts, newest verdict id): changes whenever a verdict is added."""
    n, newest = session.execute(sa.text("SELECT count(*), max(id) FROM verdict")).one()
    return int(n), int(newest or 0)


class FeedbackCache:
    """One per app (``app.state.feedback_cache``); thread-safe."""

    def __init__(
        self,
        engine: Engine,
        max_stale_s: float = 60.0,
        size: int = 16,
        compute: Compute | None = None,
        version: Version | None = None,
    ) -> None:
        self.engine = engine
        self.max_stale_s = max_stale_s
        self.size = size
        self._compute: Compute = compute or (lambda s, now, since: feedback(s, now, since=since))
        self._version: Version = version or verdict_version
        # Least recently used periods go first (cachetools: reads count as uses).
        self._items: LRUCache[dt.datetime, _Entry] = LRUCache(maxsize=size)
        self._refreshing: set[dt.datetime] = set()
        self._lock = threading.Lock()

    def get(self, session: Session, now: dt.datetime, days: int) -> FeedbackOut:
        key = since = period_start(now, days)
        version = self._version(session)
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                if entry.version == version:
                    return entry.data
                fresh_enough = time.monotonic() - entry.computed_at < self.max_stale_s
                if fresh_enough:
                    if key not in self._refreshing:
                        self._refreshing.add(key)
                        threading.Thread(target=self._refresh, args=(key, now), daemon=True).start()
                    return entry.data
        return self._store(key, version, self._compute(session, now, since))

    def _store(self, key: dt.datetime, version: tuple[int, int], data: FeedbackOut) -> FeedbackOut:
        with self._lock:
            self._items[key] = _Entry(data, version, time.monotonic())
        return data

    def _refresh(self, key: dt.datetime, now: dt.datetime) -> None:
        try:
            with Session(self.engine) as session:
                version = self._version(session)
                self._store(key, version, self._compute(session, now, key))
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def wait(self, timeout: float = 30.0) -> None:
        """Until no refresh is running (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while self._refreshing and time.monotonic() < deadline:
            time.sleep(0.01)
