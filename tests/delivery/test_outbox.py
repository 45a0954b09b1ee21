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
    Backoff,
    DeliveryStats,
    claim_due,
    deliver_due,
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
    class Slow:
        def deliver(self, item: OutboxRow) -> DeliveryResult:
            time.sleep(0.06)
            return DeliveryResult(True)

        def close(self) -> None:
            pass

    seed_dispositions(engine, 3)
    stats = deliver_due(engine, Slow(), now=T0, lease_s=0.05)
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
