"""Figures too slow to compute on every page view, served from memory while one
background thread recomputes them (stale-while-revalidate).

Each entry is keyed (a period, a campaign...) and carries the *version* of the data it
was computed from; the caller says what the version is now:

* Nothing cached for the key: computed now (the first view pays once).
* Cached at the current version: served as is.
* Another version, and the entry is younger than ``max_stale_s``: served at once while
  one background thread recomputes it (pages say "as of" with the figures' own time);
  older than that: recomputed now. ``max_stale_s = 0`` always recomputes on change.

Used by the feedback figures (:mod:`bot.web.feedback_cache`, versioned by the verdicts)
and the campaign monitor (:mod:`bot.web.monitor_cache`, versioned by the clock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import LRUCache
from sqlalchemy.engine import Engine
from sqlmodel import Session

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    data: T
    version: Hashable
    computed_at: float


class Snapshots(Generic[K, T]):
    """One per app and kind of figures; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        max_stale_s: float,
        size: int = 16,
        ticks: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self._ticks = ticks
        self.max_stale_s = max_stale_s
        # Least recently used keys go first (cachetools: reads count as uses).
        self._items: LRUCache[K, _Entry[T]] = LRUCache(maxsize=size)
        self._refreshing: set[K] = set()
        self._lock = threading.Lock()

    def get(
        self,
        session: Session,
        key: K,
        version: Hashable,
        compute: Callable[[Session], T],
        current: Callable[[Session], Hashable] | None = None,
    ) -> T:
        """The figures for ``key`` at ``version``; ``compute`` makes them from a session
        (the request's now, a fresh one in the background); ``current`` reads the version
        again in the background session (default: ``version`` as given)."""
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                if entry.version == version:
                    return entry.data
                if self._ticks() - entry.computed_at < self.max_stale_s:
                    if key not in self._refreshing:
                        self._refreshing.add(key)
                        threading.Thread(
                            target=self._refresh, args=(key, version, compute, current),
                            daemon=True,
                        ).start()  # fmt: skip
                    return entry.data
        return self._store(key, version, compute(session))

    def _store(self, key: K, version: Hashable, data: T) -> T:
        with self._lock:
            self._items[key] = _Entry(data, version, self._ticks())
        return data

    def _refresh(
        self,
        key: K,
        version: Hashable,
        compute: Callable[[Session], T],
        current: Callable[[Session], Hashable] | None,
    ) -> None:
        try:
            with Session(self.engine) as session:
                now_version = current(session) if current is not None else version
                self._store(key, now_version, compute(session))
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def wait(self, timeout: float = 30.0) -> None:
        """Until no refresh is running (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while self._refreshing and time.monotonic() < deadline:
            time.sleep(0.01)
