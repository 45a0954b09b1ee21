"""The worker outlives database outages: connections terminated under it mid-campaign,
a commit whose acknowledgement is lost, a result whose transaction dies half way.
Every call must end up recorded exactly once, and every account end exactly once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import bot.campaign.worker as worker_mod
from bot.campaign.worker import Worker
from bot.core.investigation import Investigator
from bot.store.db import session_scope
from bot.store.retry import Reconnector
from tests.campaign.factories import MONDAY_10_LOCAL
from tests.campaign.outage_helpers import (
    RETRY_LOG,
    assert_each_call_recorded_once,
    campaign,
    outage_worker,
    run_to_idle,
    text_investigator,
)
from tests.store.pgtools import new_tag, tagged_engine, terminate


@pytest.fixture(scope="module")
def investigator() -> Investigator:
    return text_investigator()


# -- connections terminated under a running campaign ------------------------------------


@pytest.fixture
def tagged(pg_url: str) -> Iterator[tuple[Engine, str]]:
    tag = new_tag()
    with tagged_engine(pg_url, tag) as engine:
        yield engine, tag


def test_worker_survives_terminated_connections_mid_campaign(
    tagged: tuple[Engine, str],
    pg_url: str,
    investigator: Investigator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, tag = tagged
    n = 40
    gateway = campaign(engine, "kill", n)
    worker = Worker(
        engine,
        investigator,
        gateway,
        worker_id="w1",
        concurrency=4,
        lease_s=30,
        poll_s=0.01,
        clock=lambda: MONDAY_10_LOCAL,
        reconnector=Reconnector(base_s=0.05, cap_s=0.5),
    )
    finished = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        admin = sa.create_engine(pg_url, poolclass=sa.NullPool)
        try:
            # Every 0.2 s: often enough to hit work in flight, rarely enough that a
            # call's result transaction (the longest) gets through between kills.
            while not finished.wait(0.2):
                killed.append(terminate(admin, tag))
        finally:
            admin.dispose()

    caplog.set_level(logging.INFO, logger=RETRY_LOG)
    k = threading.Thread(target=killer)
    k.start()
    try:
        stats = run_to_idle(worker)
    finally:
        finished.set()
        k.join()

    assert sum(killed) > 0
    assert stats.calls == n and stats.failed == 0 and stats.lost == 0
    # The terminations hit work in flight (not only idle pooled connections, which the
    # pool's pre-ping replaces silently), and each outage was logged once.
    assert stats.outages >= 1 and stats.db_retries >= stats.outages
    warnings = [r for r in caplog.records if r.name == RETRY_LOG and r.levelno == logging.WARNING]
    assert len(warnings) == stats.outages
    assert all("database unreachable" in r.getMessage() for r in warnings)
    assert all("retrying in" in r.getMessage() for r in warnings)
    assert_each_call_recorded_once(engine, n)


def test_result_transaction_killed_half_way_is_written_again_whole(
    tagged: tuple[Engine, str], pg_url: str, investigator: Investigator
) -> None:
    """The connection dies after the call's first rows went in, before the commit: the
    server rolls the transaction back, and the worker writes the whole result again."""
    engine, _ = tagged
    gateway = campaign(engine, "half", 1)
    admin = sa.create_engine(pg_url, poolclass=sa.NullPool)
    fired: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def kill_mid_result(conn, cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
        if not fired and statement.lstrip().upper().startswith("INSERT INTO TURN"):
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.begin() as a:
                fired.append(
                    a.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).rowcount
                )

    try:
        worker = outage_worker(engine, investigator, gateway, base_s=0.05, cap_s=0.2)
        stats = worker.run(until_idle=True)
    finally:
        admin.dispose()
    assert fired, "the result's transaction was never interrupted"
    assert stats.outages == 1 and stats.calls == 1 and stats.failed == 0
    assert_each_call_recorded_once(engine, 1)


def test_commit_that_landed_before_the_connection_dropped_is_not_written_twice(
    engine: Engine, investigator: Investigator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst case for a retry: the server committed the result, but the connection
    dropped before the worker heard so. The retry must see the stored call and stop."""
    gateway = campaign(engine, "acked", 3)
    real = worker_mod.record_result
    lost_acks: list[int] = []

    def commit_then_drop(*args: Any, **kw: Any) -> int:
        disposition_id = real(*args, **kw)
        if not lost_acks:
            lost_acks.append(disposition_id)
            raise sa.exc.OperationalError(
                "COMMIT", {}, Exception("server closed the connection unexpectedly")
            )
        return disposition_id

    monkeypatch.setattr(worker_mod, "record_result", commit_then_drop)
    worker = outage_worker(engine, investigator, gateway, base_s=0.01, cap_s=0.05)
    stats = worker.run(until_idle=True)
    assert lost_acks and stats.outages == 1
    assert stats.calls == 3 and stats.lost == 0 and stats.failed == 0
    assert_each_call_recorded_once(engine, 3)


def test_an_error_a_retry_cannot_fix_is_not_retried(
    engine: Engine, investigator: Investigator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here: a broken statement) is not an outage: the call is left to lease
    recovery as before, and no outage is reported."""
    gateway = campaign(engine, "bug", 1)
    tries: list[int] = []

    def broken(*_: Any, **__: Any) -> int:
        tries.append(1)
        with session_scope(engine) as s:
            s.execute(sa.text("SELECT * FROM no_such_table"))
        return 0

    monkeypatch.setattr(worker_mod, "record_result", broken)
    worker = outage_worker(engine, investigator, gateway, base_s=0.01, cap_s=0.05)
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,))
    t.start()
    try:
        for _ in range(500):
            if worker.stats.failed:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        t.join(timeout=60)
    assert worker.stats.failed == 1 and len(tries) == 1 and worker.db.outages == 0
