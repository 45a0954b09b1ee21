"""The worker outlives a PostgreSQL server restart, and a server that is stopped for a
while and started again, in the middle of a campaign: every call is recorded exactly
once. The server is a throwaway one (:class:`tests.store.pgtools.Cluster`); the shared
test server is never restarted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy.engine import Engine

from bot.campaign.worker import PlacedCall, SimulatedGateway, Worker
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.store.retry import Reconnector
from tests.campaign.factories import MONDAY_10_LOCAL
from tests.campaign.outage_helpers import (
    RETRY_LOG,
    assert_each_call_recorded_once,
    campaign,
    run_to_idle,
    text_investigator,
)
from tests.store.pgtools import Cluster, fresh_engine, running_cluster

pytestmark = pytest.mark.slow

N_CALLS = 24
CONCURRENCY = 4


@pytest.fixture(scope="module")
def investigator() -> Investigator:
    return text_investigator()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


@pytest.fixture
def engine(cluster: Cluster) -> Iterator[Engine]:
    """A fresh, migrated database on the throwaway server (``make_engine``'s pool)."""
    with fresh_engine(cluster) as engine:
        yield engine


@dataclass
class DisruptingGateway:
    """Places calls through ``inner``; call number ``at`` first runs ``disrupt`` in its
    own call thread, so the server goes away while the other calls are in flight."""

    inner: SimulatedGateway
    at: int
    disrupt: Callable[[], None]
    placed: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def place(
        self, investigator: Investigator, account: Account, *, attempts_left: bool
    ) -> PlacedCall:
        with self._lock:
            self.placed += 1
            mine = self.placed == self.at
        if mine:
            self.disrupt()
            self.done.set()
        return self.inner.place(investigator, account, attempts_left=attempts_left)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def restart(cluster: Cluster, _worker: Worker) -> None:
    cluster.restart()


def stop_wait_start(cluster: Cluster, worker: Worker) -> None:
    """Stop the server; start it again only once the worker has found it gone and
    retried a few times (its backoff is in use, nothing is given up)."""
    before = worker.db.retries
    cluster.stop()
    wait_for(lambda: worker.db.down and worker.db.retries >= before + 3, "the worker's retries")
    cluster.start()


@pytest.mark.parametrize("disruption", [restart, stop_wait_start], ids=lambda f: f.__name__)
def test_worker_survives_a_server_restart_mid_campaign(
    disruption: Callable[[Cluster, Worker], None],
    cluster: Cluster,
    engine: Engine,
    investigator: Investigator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker_box: list[Worker] = []
    gateway = DisruptingGateway(
        campaign(engine, "restart", N_CALLS),
        at=N_CALLS // 3,
        disrupt=lambda: disruption(cluster, worker_box[0]),
    )
    worker = Worker(
        engine,
        investigator,
        gateway,
        worker_id="w1",
        concurrency=CONCURRENCY,
        lease_s=60,
        poll_s=0.01,
        clock=lambda: MONDAY_10_LOCAL,
        reconnector=Reconnector(base_s=0.05, cap_s=0.5),
    )
    worker_box.append(worker)
    caplog.set_level(logging.INFO, logger=RETRY_LOG)

    stats = run_to_idle(worker)

    assert gateway.done.is_set(), "the server was not disrupted"
    assert cluster.started
    assert stats.calls == N_CALLS and stats.failed == 0 and stats.lost == 0
    # The worker noticed (the loop reads the database every few milliseconds while
    # calls are in flight), logged each outage once, and came back on its own.
    assert stats.outages >= 1 and stats.db_retries >= stats.outages
    records = [r for r in caplog.records if r.name == RETRY_LOG]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == stats.outages
    assert all("database unreachable" in r.getMessage() for r in warnings)
    assert sum("reachable again" in r.getMessage() for r in records) == stats.outages
    assert_each_call_recorded_once(engine, N_CALLS)
