"""Draining the outbox: claim due items, deliver them, record what happened.

Safe with several deliverers at once (threads, processes or machines on one database):

1. **Claim** (one short transaction): a single ``UPDATE`` stamps up to ``batch`` due
   items with a fresh claim token and a lease (``lease_owner``, ``lease_expires_at``) and
   counts the attempt. On PostgreSQL the candidates are picked ``FOR UPDATE SKIP
   LOCKED``, so concurrent claimers skip each other's rows instead of queueing; SQLite
   has one writer at a time, and the statement takes the write lock before it reads.
2. **Deliver** outside any transaction: no row lock is held during an HTTP call.
3. **Record** each result in its own short transaction, guarded by the claim token:
   ``delivered``; ``pending`` again with an exponential, jittered ``next_attempt_at``;
   or ``dead`` after a rejection or ``max_attempts``. ``last_error`` is masked.

A deliverer that dies mid-batch leaves leased items behind; they become due again when
the lease expires, and are sent again with the same idempotency key (at-least-once).

**At most ``max_attempts`` attempts.** The attempt is counted when the item is claimed,
and only an item with attempts left can be claimed: one whose last allowed attempt never
reported (its deliverer died, or outlived its lease) is dead-lettered when the lease
expires instead of being sent once more. So an item that crashes its deliverer every
time still reaches ``dead`` instead of looping forever, and two deliverers that find the
same expired lease cannot both add an attempt beyond the budget.

**A success is a fact.** A failure is recorded only while the claim holds; a success is
recorded even after the lease was taken over or the item dead-lettered meanwhile (the
bank has the item: it must not stay a dead letter, nor be sent again).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from bot import metrics
from bot.core.masking import mask_text
from bot.delivery.adapters import Deliverer, DeliveryResult, make_deliverer
from bot.delivery.config import DeliverySettings
from bot.store.db import session_scope
from bot.store.models import OutboxRow, utcnow

log = logging.getLogger(__name__)

#: Stop starting new deliveries once this share of the lease has gone (the rest of the
#: batch is handed back), so that a slow batch does not outlive its claim.
LEASE_SAFETY: Final = 0.8
#: Longest ``last_error`` kept.
MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number ``attempt`` (1 = after the first failure):
    ``min(cap, base * factor**(attempt-1))``, shortened by a random share up to ``jitter``
    so that items that failed together (a bank outage) do not retry in lockstep.

    With ``factor >= 2`` and ``jitter <= 0.5`` a delay is never shorter than the one
    before it (until the cap).
    """

    base_s: float = 30.0
    factor: float = 2.0
    cap_s: float = 3600.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.factor < 1:
            raise ValueError("backoff: need 0 < base_s <= cap_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff: jitter is a share in [0, 1)")

    def __call__(self, attempt: int) -> dt.timedelta:
        raw = min(self.cap_s, self.base_s * self.factor ** max(attempt - 1, 0))
        return dt.timedelta(seconds=raw * (1 - self.jitter * self.rng.random()))


@dataclass
class DeliveryStats:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    #: Results not recorded because the claim had expired and been taken over.
    lost: int = 0
    #: Claimed but handed back unsent (the lease was running out).
    released: int = 0

    def add(self, other: DeliveryStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _unleased(now: dt.datetime) -> sa.ColumnElement[bool]:
    """Pending and held by no live claim (never claimed, handed back, or lease expired)."""
    return sa.and_(
        col(OutboxRow.state) == "pending",
        sa.or_(col(OutboxRow.lease_expires_at).is_(None), col(OutboxRow.lease_expires_at) <= now),
    )


def _due(now: dt.datetime, max_attempts: int | None = None) -> sa.ColumnElement[bool]:
    condition = sa.and_(_unleased(now), col(OutboxRow.next_attempt_at) <= now)
    if max_attempts is not None:
        condition = sa.and_(condition, col(OutboxRow.attempts) < max_attempts)
    return condition


#: ``last_error`` of an item whose last allowed attempt never reported back.
NO_RESULT: Final = "attempt {n} of {n}: no result recorded before its lease expired"


def expire_exhausted(engine: Engine, *, now: dt.datetime, max_attempts: int) -> int:
    """Dead-letter unleased pending items that have no attempt left: the deliverer of
    their last attempt died or outlived its lease (or ``max_attempts`` was lowered).
    Sending them again would exceed the budget; a late success from that deliverer
    still marks them delivered. Returns how many."""
    exhausted = sa.and_(_unleased(now), col(OutboxRow.attempts) >= max_attempts)
    # SKIP LOCKED (PostgreSQL) as in the claim: concurrent deliverers never wait on, or
    # deadlock over, each other's rows; SQLite has one writer at a time.
    targets = select(OutboxRow.id).where(exhausted).with_for_update(skip_locked=True)
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(OutboxRow)
            .where(col(OutboxRow.id).in_(targets.scalar_subquery()), exhausted)
            .values(
                state="dead",
                lease_owner=None,
                lease_expires_at=None,
                last_error=sa.case(
                    (
                        col(OutboxRow.lease_expires_at).is_not(None),
                        NO_RESULT.format(n=max_attempts),
                    ),
                    else_=col(OutboxRow.last_error),
                ),
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def claim_due(
    engine: Engine,
    owner: str,
    *,
    now: dt.datetime,
    batch: int = 50,
    lease_s: float = 300.0,
    max_attempts: int | None = None,
) -> list[OutboxRow]:
    """Lease up to ``batch`` due items to ``owner`` (a token unique to this claim) and
    return them, oldest due first. With ``max_attempts``, only items with an attempt
    left are claimed (see :func:`expire_exhausted` for the others)."""
    due = _due(now, max_attempts)
    candidates = (
        select(OutboxRow.id)
        .where(due)
        .order_by(col(OutboxRow.next_attempt_at), col(OutboxRow.id))
        .limit(batch)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders nothing
    )
    with session_scope(engine) as session:
        # The ids first, then the update by that list: as a subquery of the UPDATE
        # (``id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``) PostgreSQL may run the
        # subquery again for each row and lease far more than ``batch`` items.
        ids = list(session.exec(candidates).all())
        if not ids:
            return []
        session.execute(
            sa.update(OutboxRow)
            # The due condition again: on PostgreSQL a row updated by a concurrent claim
            # is re-checked against it after the lock wait.
            .where(col(OutboxRow.id).in_(ids), due)
            .values(
                lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=lease_s),
                attempts=col(OutboxRow.attempts) + 1,
            )
            .execution_options(synchronize_session=False)
        )
        rows = session.exec(
            select(OutboxRow)
            .where(OutboxRow.lease_owner == owner, OutboxRow.state == "pending")
            .order_by(col(OutboxRow.next_attempt_at), col(OutboxRow.id))
        ).all()
        return list(rows)


def _error_text(detail: str) -> str:
    return mask_text(detail)[:MAX_ERROR_CHARS]


def _outcome(
    item: OutboxRow,
    result: DeliveryResult,
    *,
    now: dt.datetime,
    max_attempts: int,
    backoff: Callable[[int], dt.timedelta],
) -> tuple[str, dict[str, Any]]:
    """What the result means for the item: (stats field, column values)."""
    if result.ok:
        return "delivered", {"state": "delivered", "delivered_at": now}
    values: dict[str, Any] = {"last_error": _error_text(result.detail)}
    if not result.retryable or item.attempts >= max_attempts:
        return "dead", {**values, "state": "dead"}
    return "retried", {**values, "next_attempt_at": now + backoff(item.attempts)}


def _record(engine: Engine, item: OutboxRow, owner: str, values: dict[str, Any]) -> bool:
    """Apply ``values`` and end the lease, if ``owner`` still holds it; a success is
    applied whoever holds the item now, unless it is already delivered (the bank has it:
    a dead letter it accepted is not dead, and another deliverer's claim on it only
    produces a duplicate, whose own result is then dropped)."""
    guard: sa.ColumnElement[bool]
    if values.get("state") == "delivered":
        guard = col(OutboxRow.state).in_(("pending", "dead"))
    else:
        guard = sa.and_(col(OutboxRow.lease_owner) == owner, col(OutboxRow.state) == "pending")
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(OutboxRow)
            .where(col(OutboxRow.id) == item.id, guard)
            .values(lease_owner=None, lease_expires_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(engine: Engine, owner: str, ids: Sequence[int]) -> int:
    """Hand claimed but unsent items back (the attempt is not counted)."""
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(OutboxRow)
            .where(col(OutboxRow.id).in_(list(ids)), col(OutboxRow.lease_owner) == owner)
            .values(lease_owner=None, lease_expires_at=None, attempts=col(OutboxRow.attempts) - 1)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _attempt(deliverer: Deliverer, item: OutboxRow) -> DeliveryResult:
    """Deliver, turning an adapter's crash into a retryable failure: a bug in one adapter
    call must not stop the loop, and the item still dead-letters after max_attempts."""
    try:
        return deliverer.deliver(item)
    except Exception as exc:
        log.exception("outbox %s: deliverer raised", item.id)
        return DeliveryResult(False, True, f"deliverer raised {exc!r}")


def deliver_due(
    engine: Engine,
    deliverer: Deliverer,
    *,
    now: dt.datetime | None = None,
    batch: int = 50,
    max_attempts: int = 8,
    backoff: Callable[[int], dt.timedelta] | None = None,
    lease_s: float = 300.0,
) -> DeliveryStats:
    """One round: claim up to ``batch`` due items, deliver them one by one, record each.

    ``now`` pins the clock (tests); by default each step reads the current time.
    ``backoff(attempt)`` gives the delay after failed attempt number ``attempt``.
    Items without an attempt left are dead-lettered first (``stats.dead``).
    """
    clock: Callable[[], dt.datetime] = (lambda: now) if now is not None else utcnow
    delay = backoff or Backoff()
    owner = uuid.uuid4().hex
    # The lease runs from the clock reading the claim stamps, not from when the claim
    # returned (it may have waited for the database's write lock).
    deadline = time.monotonic() + lease_s * LEASE_SAFETY
    claimed_at = clock()
    expired = expire_exhausted(engine, now=claimed_at, max_attempts=max_attempts)
    items = claim_due(
        engine, owner, now=claimed_at, batch=batch, lease_s=lease_s, max_attempts=max_attempts
    )
    stats = DeliveryStats(claimed=len(items), dead=expired)
    metrics.delivery_attempted("dead", expired)  # their last attempt never reported back
    if expired:
        log.warning("outbox: %d item(s) dead: their last attempt never reported back", expired)
    for i, item in enumerate(items):
        if time.monotonic() > deadline:
            stats.released = release(engine, owner, [x.id for x in items[i:] if x.id is not None])
            break
        result = _attempt(deliverer, item)
        outcome, values = _outcome(
            item, result, now=clock(), max_attempts=max_attempts, backoff=delay
        )
        if not _record(engine, item, owner, values):
            outcome = "lost"
        _log(item, outcome, result)
        metrics.delivery_attempted(outcome)
        setattr(stats, outcome, getattr(stats, outcome) + 1)
    return stats


def _log(item: OutboxRow, outcome: str, result: DeliveryResult) -> None:
    level = logging.INFO if outcome == "delivered" else logging.WARNING
    log.log(
        level,
        "outbox %s (%s, attempt %d): %s - %s",
        item.id,
        item.idempotency_key,
        item.attempts,
        outcome,
        _error_text(result.detail),
    )


def run_forever(
    engine: Engine,
    deliverer: Deliverer,
    stop: threading.Event,
    *,
    poll_s: float = 5.0,
    batch: int = 50,
    **options: Any,
) -> DeliveryStats:
    """Deliver until ``stop`` is set; returns the totals. Rounds follow each other while
    full batches come back, otherwise wait ``poll_s``. A failing round (database down)
    is logged and retried after ``poll_s``: the loop outlives outages."""
    totals = DeliveryStats()
    while not stop.is_set():
        try:
            stats = deliver_due(engine, deliverer, batch=batch, **options)
        except Exception:
            log.exception("outbox round failed; retrying in %.1fs", poll_s)
            stop.wait(poll_s)
            continue
        totals.add(stats)
        if stats.claimed < batch:
            stop.wait(poll_s)
    return totals


def serve(
    engine: Engine,
    settings: DeliverySettings,
    data_dir: Path,
    stop: threading.Event,
    *,
    deliverer: Deliverer | None = None,
) -> DeliveryStats:
    """Run the configured deliverer (or ``deliverer``, built by the caller so that it
    fails before anything else starts) until ``stop``: what ``bot worker`` hosts. The
    deliverer is closed at the end."""
    deliverer = deliverer or make_deliverer(settings, data_dir)
    try:
        return run_forever(
            engine,
            deliverer,
            stop,
            poll_s=settings.delivery_poll_s,
            batch=settings.delivery_batch,
            max_attempts=settings.delivery_max_attempts,
            lease_s=settings.delivery_lease_s,
            backoff=Backoff(base_s=settings.retry_base_s, cap_s=settings.retry_cap_s),
        )
    finally:
        deliverer.close()


def requeue_dead(
    engine: Engine, ids: Sequence[int] | None = None, *, now: dt.datetime | None = None
) -> int:
    """Re-drive dead items (all, or those in ``ids``): pending now, with a fresh attempt
    budget. ``last_error`` is kept until the next attempt replaces it. Returns how many."""
    condition = col(OutboxRow.state) == "dead"
    if ids is not None:
        condition = sa.and_(condition, col(OutboxRow.id).in_(list(ids)))
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(OutboxRow)
            .where(condition)
            .values(
                state="pending",
                attempts=0,
                next_attempt_at=now or utcnow(),
                lease_owner=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def outbox_counts(engine: Engine) -> dict[str, int]:
    """Items per state (for status displays and alerts on ``dead``)."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(OutboxRow.state, func.count()).group_by(col(OutboxRow.state))
        ).all()
        return {"pending": 0, "delivered": 0, "dead": 0, **dict(rows)}
