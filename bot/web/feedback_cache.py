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
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.web.snapshots import Snapshots
from bot.web.stats import FeedbackOut, feedback

Compute = Callable[[Session, dt.datetime, dt.datetime], FeedbackOut]
Version = Callable[[Session], tuple[int, int]]


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
        self._compute: Compute = compute or (lambda s, now, since: feedback(s, now, since=since))
        self._version: Version = version or verdict_version
        self._snapshots: Snapshots[dt.datetime, FeedbackOut] = Snapshots(engine, max_stale_s, size)

    def get(self, session: Session, now: dt.datetime, days: int) -> FeedbackOut:
        since = period_start(now, days)
        return self._snapshots.get(
            session, since, self._version(session),
            lambda s: self._compute(s, now, since), current=self._version,
        )  # fmt: skip

    def wait(self, timeout: float = 30.0) -> None:
        """Until no refresh is running (tests, orderly shutdown)."""
        self._snapshots.wait(timeout)
