"""Riding out database outages: which errors mean "the database is unreachable", and a
retry loop for units of work that are safe to run again from the start.

A *unit* is a callable that opens its own transaction(s) and either commits all of its
work or none of it (:func:`bot.store.db.session_scope`), so running it again after a
connection loss repeats nothing that was committed. Callers decide what a unit is; a
unit whose commit may have landed before the connection dropped must check for its own
effect before writing again (see ``Worker._store``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from bot.core.masking import mask_text

log = logging.getLogger(__name__)

T = TypeVar("T")


class GaveUp(RuntimeError):
    """The database stayed unreachable and the caller asked to stop waiting."""


def is_unreachable(exc: BaseException) -> bool:
    """True for errors that say the database is gone or not (yet) accepting work: a
    dropped or refused connection, a server shutting down or starting up, a serialization
    failure or deadlock (PostgreSQL reports all of these as ``OperationalError``), a lock
    timeout on SQLite. False for errors a retry cannot fix (bad SQL, constraint
    violations, a missing table)."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite's OperationalError also covers "no such table" and syntax errors.
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)
    return True


def describe(exc: BaseException) -> str:
    """A one-line, masked summary of a database error (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return mask_text(f"{type(orig).__name__}: {first}"[:200])


class Reconnector:
    """Runs units of work, retrying those that fail because the database is unreachable,
    with a capped exponential backoff (``base_s``, doubled per failed try up to
    ``cap_s``, minus up to a quarter at random so that workers do not reconnect in
    lockstep after a restart).

    Shared by the threads of one process: an outage is logged once, as one warning
    ("database unreachable ..., retrying in N s") when the first unit fails, and ends
    (logged at INFO) when any unit succeeds again. ``outages`` and ``retries`` count them.
    """

    def __init__(
        self,
        *,
        base_s: float = 0.5,
        cap_s: float = 15.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("retry: need 0 < base_s <= cap_s")
        self.base_s, self.cap_s, self._rng = base_s, cap_s, rng
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.outages = 0
        self.retries = 0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1 = the first)."""
        raw: float = min(self.cap_s, self.base_s * 2.0 ** max(attempt - 1, 0))
        return raw * (1.0 - 0.25 * float(self._rng()))

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, unit: Callable[[], T], *, stop: threading.Event | None = None) -> T:
        """``unit()``, retried for as long as the database is unreachable. Other errors
        propagate at once. When ``stop`` is set during an outage, raises
        :class:`GaveUp` (from the last database error) instead of waiting on."""
        stop = stop or threading.Event()
        attempt = 0
        while True:
            try:
                result = unit()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                attempt += 1
                wait = self.delay(attempt)
                self._failed(exc, wait)
                if stop.wait(wait):
                    raise GaveUp(
                        f"stopped while the database was unreachable: {describe(exc)}"
                    ) from exc
                continue
            self._succeeded()
            return result

    def _failed(self, exc: BaseException, wait: float) -> None:
        with self._lock:
            self.retries += 1
            if self._down_since is not None:
                log.debug(
                    "database still unreachable (%s), retrying in %.3g s", describe(exc), wait
                )
                return
            self._down_since = time.monotonic()
            self.outages += 1
        log.warning("database unreachable (%s), retrying in %.3g s", describe(exc), wait)

    def _succeeded(self) -> None:
        if self._down_since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self._down_since is None:
                return
            seconds = time.monotonic() - self._down_since
            self._down_since = None
        log.info("database reachable again after %.3g s", seconds)
