"""Draining the outbox on both engines, against the real local receiver: delivery,
retries with backoff, dead letters, duplicates, concurrent deliverers, leases."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.delivery.adapters import DeliveryResult, FileDeliverer, WebhookDeliverer
from bot.delivery.config import DeliverySettings
from bot.delivery.outbox import (
    NO_RESULT,
    Backoff,
    DeliveryStats,
    claim_due,
    deliver_due,
    expire_exhausted,
    outbox_counts,
    requeue_dead,
    run_forever,
    serve,
)
from bot.store.models import OutboxRow
from tests.delivery.conftest import PHONE_RAW, SECRET, T0, outbox_rows, seed_dispositions
from tests.delivery.receiver import Receiver

#: No jitter: delays are exactly 10 s, 20 s, 40 s...
STEADY = Backoff(base_s=10, cap_s=1000, jitter=0)


def webhook(receiver: Receiver, timeout_s: float = 0.2) -> WebhookDeliverer:
    return WebhookDeliverer(receiver.url, SECRET, timeout_s=timeout_s)


def only(engine: Engine) -> OutboxRow:
    (row,) = outbox_rows(engine)
    return row


def test_delivered_on_2xx(engine: Engine, receiver: Receiver) -> None:
    seed_dispositions(engine)
    stats = deliver_due(engine, webhook(receiver), now=T0)
    assert stats == DeliveryStats(claimed=1, delivered=1)
    row = only(engine)
    assert (row.state, row.attempts, row.delivered_at) == ("delivered", 1, T0)
    assert row.lease_owner is None and row.lease_expires_at is None
    assert receiver.accepted == {row.idempotency_key: 1} and receiver.requests[0].signature_ok
    assert receiver.requests[0].json() == row.payload
    assert deliver_due(engine, webhook(receiver), now=T0).claimed == 0


def test_not_claimed_before_due(engine: Engine, receiver: Receiver) -> None:
    seed_dispositions(engine, at=T0)
    assert deliver_due(engine, webhook(receiver), now=T0 - dt.timedelta(seconds=1)).claimed == 0
    assert not receiver.requests


def test_retried_with_growing_backoff_then_delivered(engine: Engine, receiver: Receiver) -> None:
    seed_dispositions(engine)
    receiver.then(500, "hang", 503)
    deliverer, now, delays = webhook(receiver), T0, []
    for _ in range(3):
        assert deliver_due(engine, deliverer, now=now, backoff=STEADY).retried == 1
        row = only(engine)
        assert row.state == "pending" and row.last_error
        assert deliver_due(
            engine, deliverer, now=row.next_attempt_at - dt.timedelta(seconds=1)
        ) == (DeliveryStats())
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert delays == [10, 20, 40]
    assert deliver_due(engine, deliverer, now=now, backoff=STEADY).delivered == 1
    row = only(engine)
    assert (row.state, row.attempts) == ("delivered", 4)
    # The hung attempt had reached the bank: the retry was a harmless duplicate (409).
    assert [r.status for r in receiver.requests] == [500, 200, 503, 409]
    assert receiver.accepted == {row.idempotency_key: 1}
    assert receiver.duplicates == {row.idempotency_key: 3}


def test_jittered_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_s=30, cap_s=600, jitter=0.5, rng=random.Random(7))
    for _ in range(50):
        delays = [backoff(n).total_seconds() for n in range(1, 10)]
        assert delays == sorted(delays) or delays[-1] >= 300  # non-decreasing until the cap
        assert all(15 <= d <= 600 for d in delays)
    with pytest.raises(ValueError):
        Backoff(jitter=1.0)


def test_dead_after_max_attempts_and_requeued(engine: Engine, receiver: Receiver) -> None:
    seed_dispositions(engine)
    receiver.then(500, 500, 500)
    now = T0
    for expected in ("retried", "retried", "dead"):
        stats = deliver_due(engine, webhook(receiver), now=now, max_attempts=3, backoff=STEADY)
        assert getattr(stats, expected) == 1
        now = only(engine).next_attempt_at
    row = only(engine)
    assert (row.state, row.attempts) == ("dead", 3) and (row.last_error or "").startswith(
        "HTTP 500"
    )
    assert deliver_due(engine, webhook(receiver), now=T0 + dt.timedelta(days=1)).claimed == 0
    assert outbox_counts(engine) == {"pending": 0, "delivered": 0, "dead": 1}

    assert requeue_dead(engine, [row.id + 1]) == 0  # type: ignore[operator]
    assert requeue_dead(engine, now=now) == 1
    assert (only(engine).state, only(engine).attempts) == ("pending", 0)
    assert deliver_due(engine, webhook(receiver), now=now).delivered == 1


def test_dead_at_once_on_a_rejection(engine: Engine, receiver: Receiver) -> None:
    seed_dispositions(engine)
    receiver.then(400)
    assert deliver_due(engine, webhook(receiver), now=T0).dead == 1
    row = only(engine)
    assert (row.state, row.attempts) == ("dead", 1) and (row.last_error or "").startswith(
        "HTTP 400"
    )


def test_errors_and_logs_are_masked(
    engine: Engine, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    seed_dispositions(engine)
    receiver.error_text = f"unknown holder {PHONE_RAW}, id 44010619900101123X"
    receiver.then(422)
    with caplog.at_level(logging.INFO, logger="bot.delivery.outbox"):
        deliver_due(engine, webhook(receiver), now=T0)
    error = only(engine).last_error or ""
    assert "138****0002" in error and "4****************X" in error
    for text in (error, caplog.text, *(r.body.decode() for r in receiver.requests)):
        assert PHONE_RAW not in text and "44010619900101123X" not in text


def test_a_crashing_deliverer_counts_as_a_retryable_attempt(engine: Engine) -> None:
    class Broken:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            raise RuntimeError(f"bug while sending to {PHONE_RAW}")

        def close(self) -> None:
            pass

    seed_dispositions(engine)
    assert deliver_due(engine, Broken(), now=T0, backoff=STEADY).retried == 1
    row = only(engine)
    assert row.attempts == 1 and "RuntimeError" in (row.last_error or "")
    assert PHONE_RAW not in (row.last_error or "")


@pytest.mark.parametrize("n_workers", [2, 4])
def test_concurrent_deliverers_never_send_an_item_twice(
    engine: Engine, n_workers: int, tmp_path: Path
) -> None:
    ids = seed_dispositions(engine, 30)
    barrier = threading.Barrier(n_workers)
    errors: list[BaseException] = []

    def work(receiver: Receiver) -> None:
        try:
            # A generous timeout: this is about claims, and a loaded machine can take
            # longer than 0.2 s to answer (a timed-out delivery is retried later).
            deliverer = webhook(receiver, timeout_s=10)
            barrier.wait()
            while deliver_due(engine, deliverer, now=T0, batch=3).claimed:
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with Receiver(SECRET, delay_s=0.005) as receiver:
        threads = [threading.Thread(target=work, args=(receiver,)) for _ in range(n_workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert len(receiver.requests) == len(ids) and not receiver.duplicates
    assert all(r.status == 200 for r in receiver.requests)
    assert {r.state for r in outbox_rows(engine)} == {"delivered"}
    assert {r.attempts for r in outbox_rows(engine)} == {1}


def test_a_dead_deliverers_items_come_back_after_the_lease(
    engine: Engine, receiver: Receiver
) -> None:
    seed_dispositions(engine)
    (claimed,) = claim_due(engine, "killed-worker", now=T0, lease_s=60)  # then SIGKILL
    assert claimed.attempts == 1
    assert deliver_due(engine, webhook(receiver), now=T0 + dt.timedelta(seconds=59)).claimed == 0
    stats = deliver_due(engine, webhook(receiver), now=T0 + dt.timedelta(seconds=60))
    assert stats.delivered == 1 and only(engine).attempts == 2


def test_a_result_after_the_lease_was_taken_over_is_not_recorded(
    engine: Engine, receiver: Receiver
) -> None:
    """A slow deliverer (A) outlives its lease; another (B) takes the item over and
    delivers it; A's late result is dropped, not written over B's."""
    seed_dispositions(engine)
    later = T0 + dt.timedelta(seconds=120)
    inner: list[DeliveryStats] = []

    class SlowThenOvertaken:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            inner.append(deliver_due(engine, webhook(receiver), now=later))  # B, meanwhile
            return DeliveryResult(False, True, "A timed out")

        def close(self) -> None:
            pass

    stats = deliver_due(engine, SlowThenOvertaken(), now=T0, lease_s=60)
    assert stats == DeliveryStats(claimed=1, lost=1) and inner[0].delivered == 1
    row = only(engine)
    assert (row.state, row.last_error) == ("delivered", None)


def test_unsent_items_are_handed_back_when_the_lease_runs_out(engine: Engine) -> None:
    """The first delivery starts well inside the lease (the claim takes far less than
    80 % of 2 s) and ends past 80 % of it: the other two are handed back unsent."""

    class Slow:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            time.sleep(1.7)
            return DeliveryResult(True)

        def close(self) -> None:
            pass

    seed_dispositions(engine, 3)
    stats = deliver_due(engine, Slow(), now=T0, lease_s=2.0)
    assert stats == DeliveryStats(claimed=3, delivered=1, released=2)
    rows = outbox_rows(engine)
    assert [(r.state, r.attempts, r.lease_owner) for r in rows] == [
        ("delivered", 1, None),
        ("pending", 0, None),
        ("pending", 0, None),
    ]


def test_run_forever_until_stopped(engine: Engine, tmp_path: Path) -> None:
    seed_dispositions(engine, 5)
    stop = threading.Event()
    out = tmp_path / "d.jsonl"
    totals: list[DeliveryStats] = []
    thread = threading.Thread(
        target=lambda: totals.append(
            run_forever(engine, FileDeliverer(out), stop, poll_s=0.01, batch=2)
        )
    )
    thread.start()
    deadline = time.monotonic() + 10
    while outbox_counts(engine)["delivered"] < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert totals[0].delivered == 5 and len(out.read_text().splitlines()) == 5


def test_serve_from_settings_in_file_mode(engine: Engine, tmp_path: Path) -> None:
    seed_dispositions(engine, 2)
    stop = threading.Event()
    stop.set()  # one look is enough: nothing runs once stopped
    settings = DeliverySettings(delivery_mode="file", delivery_poll_s=0.01)
    assert serve(engine, settings, tmp_path, stop) == DeliveryStats()
    stop.clear()
    threading.Timer(0.5, stop.set).start()
    totals = serve(engine, settings, tmp_path, stop)
    assert totals.delivered == 2 and (tmp_path / "dispositions.jsonl").exists()


# -- the attempt budget holds whatever happens to leases ---------------------------------


def test_a_last_attempt_that_never_reported_is_dead_not_sent_again(
    engine: Engine, receiver: Receiver
) -> None:
    """The deliverer of an item's last allowed attempt dies: when its lease expires the
    item is dead-lettered, not sent as attempt max + 1 (and again after every expiry)."""
    seed_dispositions(engine)
    receiver.then(500)
    assert deliver_due(engine, webhook(receiver), now=T0, max_attempts=2, backoff=STEADY).retried
    due = only(engine).next_attempt_at
    (claimed,) = claim_due(engine, "killed-worker", now=due, lease_s=60, max_attempts=2)
    assert claimed.attempts == 2  # then SIGKILL, before sending
    after = due + dt.timedelta(seconds=60)
    stats = deliver_due(engine, webhook(receiver), now=after, max_attempts=2)
    assert stats == DeliveryStats(dead=1)
    row = only(engine)
    assert (row.state, row.attempts, row.lease_owner) == ("dead", 2, None)
    assert row.last_error == NO_RESULT.format(n=2)
    assert len(receiver.requests) == 1  # only the first attempt ever reached the bank
    # A re-drive gets a fresh budget, as documented.
    assert requeue_dead(engine, now=after) == 1
    assert deliver_due(engine, webhook(receiver), now=after, max_attempts=2).delivered == 1


def test_no_claim_beyond_the_budget_even_when_it_was_lowered(engine: Engine) -> None:
    seed_dispositions(engine)
    claim_due(engine, "a", now=T0, lease_s=1)
    claim_due(engine, "b", now=T0 + dt.timedelta(seconds=1), lease_s=1)
    later = T0 + dt.timedelta(seconds=2)
    assert claim_due(engine, "c", now=later, max_attempts=2) == []
    assert expire_exhausted(engine, now=later, max_attempts=2) == 1
    assert only(engine).state == "dead"


def test_a_late_success_is_recorded_even_after_the_item_was_dead_lettered(
    engine: Engine, receiver: Receiver
) -> None:
    """A's last attempt outlives its lease; meanwhile B finds the lease expired with no
    attempt left and dead-letters the item without sending it. A's answer then comes:
    the bank has the item, so it is delivered, not a dead letter."""
    seed_dispositions(engine)
    later = T0 + dt.timedelta(seconds=120)
    inner: list[DeliveryStats] = []

    class SlowButAccepted:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            inner.append(deliver_due(engine, webhook(receiver), now=later, max_attempts=1))
            return webhook(receiver).deliver(item)

        def close(self) -> None:
            pass

    stats = deliver_due(engine, SlowButAccepted(), now=T0, lease_s=60, max_attempts=1)
    assert inner == [DeliveryStats(dead=1)]
    assert stats == DeliveryStats(claimed=1, delivered=1)
    row = only(engine)
    assert (row.state, row.attempts, row.delivered_at) == ("delivered", 1, T0)
    assert row.last_error == NO_RESULT.format(n=1)  # kept for the record
    assert [r.status for r in receiver.requests] == [200]


def test_a_late_failure_does_not_overwrite_a_dead_letter(engine: Engine) -> None:
    seed_dispositions(engine)
    later = T0 + dt.timedelta(seconds=120)

    class SlowAndFailing:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            deliver_due(engine, self, now=later, max_attempts=1)  # B: dead-letters it
            return DeliveryResult(False, True, "timeout")

        def close(self) -> None:
            pass

    stats = deliver_due(engine, SlowAndFailing(), now=T0, lease_s=60, max_attempts=1)
    assert stats == DeliveryStats(claimed=1, lost=1)
    row = only(engine)
    assert (row.state, row.last_error) == ("dead", NO_RESULT.format(n=1))


@pytest.mark.parametrize("max_attempts", [1, 2])
@pytest.mark.parametrize("n_workers", [2, 4])
def test_deliverers_racing_for_expired_leases_never_exceed_the_budget(
    engine: Engine, n_workers: int, max_attempts: int
) -> None:
    """30 items whose deliverer died mid-attempt 1; after the lease, several deliverers
    race for them at once while the bank fails every request. With a budget of 1 none
    may be sent again; with 2, each exactly once more. Every item ends dead."""
    ids = seed_dispositions(engine, 30)
    assert len(claim_due(engine, "killed-worker", now=T0, lease_s=60)) == 30
    after = T0 + dt.timedelta(seconds=60)
    barrier = threading.Barrier(n_workers)
    errors: list[BaseException] = []

    def work(receiver: Receiver) -> None:
        try:
            deliverer = webhook(receiver, timeout_s=10)
            barrier.wait()
            while True:
                stats = deliver_due(
                    engine, deliverer, now=after, batch=3, max_attempts=max_attempts
                )
                if not (stats.claimed or stats.dead):
                    break
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with Receiver(SECRET, delay_s=0.005) as receiver:
        receiver.then(*[500] * 100)
        threads = [threading.Thread(target=work, args=(receiver,)) for _ in range(n_workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    sent = [r.key for r in receiver.requests]
    assert len(sent) == len(ids) * (max_attempts - 1) and not receiver.duplicates
    rows = outbox_rows(engine)
    assert {(r.state, r.attempts) for r in rows} == {("dead", max_attempts)}


def test_a_claim_takes_at_most_its_batch(engine: Engine) -> None:
    """The batch bounds one claim on both engines (on PostgreSQL an ``IN (SELECT ... LIMIT
    ... FOR UPDATE SKIP LOCKED)`` subquery can be re-evaluated per row and lease more), and
    two claims take disjoint items, oldest due first."""
    ids = seed_dispositions(engine, 12)
    first = claim_due(engine, "a", now=T0, batch=5)
    second = claim_due(engine, "b", now=T0, batch=5)
    rest = claim_due(engine, "c", now=T0, batch=5)
    assert [len(first), len(second), len(rest)] == [5, 5, 2]
    claimed = [r.id for r in first + second + rest]
    assert sorted(claimed) == sorted(ids) and len(set(claimed)) == 12
    assert {r.lease_owner for r in first} == {"a"} and all(r.attempts == 1 for r in first)
