"""The worker's ``/healthz`` and ``/readyz`` (with ``/metrics`` on
``voice.metrics_port``): starting until the models load, then ready while the loop turns,
the database answers and the delivery thread lives; each failure named, nothing leaked."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot import metrics
from bot.campaign.health import STALL_S, WorkerHealth
from bot.store.db import database_answers
from tests.conftest import free_port


def test_readiness_follows_the_start_and_names_what_fails(engine: Engine) -> None:
    now = [100.0]
    health = WorkerHealth(clock=lambda: now[0])
    assert health.report() == (False, {"models": "loading"})
    health.models_loaded()
    turned: list[float | None] = [None]
    health.watch_loop(lambda: turned[0])
    health.watch_database(engine)
    assert health.report() == (False, {"models": "ok", "worker": "not started", "database": "ok"})
    turned[0] = 99.0
    assert health.report()[0]
    now[0] = 99.0 + STALL_S + 1
    ok, checks = health.report()
    assert not ok and checks["worker"] == f"main loop stalled for {STALL_S + 1:.0f} s"

    done = threading.Thread(target=lambda: None)
    done.start()
    done.join()
    health.watch_thread("delivery", done)
    assert health.report()[1]["delivery"] == "stopped"


def test_a_check_that_raises_answers_with_its_type() -> None:
    health = WorkerHealth()

    def broken() -> str:
        raise ValueError("secret detail 13812345678")

    health.add("gateway", broken)
    ok, checks = health.report()
    assert not ok and checks["gateway"] == "check failed (ValueError)"


def test_an_unreachable_database_is_named_without_its_address(tmp_path: Path) -> None:
    gone = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'bot.db'}")
    answer = database_answers(gone)
    assert answer == "unreachable (OperationalError)" and str(tmp_path) not in answer
    pg = sa.create_engine("postgresql+psycopg://u:pw@127.0.0.1:1/x")
    assert database_answers(pg).startswith("unreachable (")


def test_the_ops_server_answers_probes_and_metrics_over_http(engine: Engine) -> None:
    health = WorkerHealth()
    health.watch_database(engine)
    port = free_port()
    server = metrics.serve(port, "127.0.0.1", health.report)
    base = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        starting = httpx.get(f"{base}/readyz", timeout=5)
        assert starting.status_code == 503
        assert starting.json() == {
            "status": "unavailable",
            "checks": {"models": "loading", "database": "ok"},
        }
        health.models_loaded()
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        scrape = httpx.get(f"{base}/metrics", timeout=5)
        assert (
            scrape.status_code == 200
            and "# TYPE callbot_outbox_deliveries_total counter" in scrape.text
        )
    finally:
        server.shutdown()
