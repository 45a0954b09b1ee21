"""The dashboard's probes and metrics: no browser session needed, ``/readyz`` says 503
and which check failed when the database is unreachable, ``/metrics`` parses, carries
the database backlogs, leaks no number and honours its bearer token."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.store.db import make_engine
from bot.web.app import create_app
from bot.web.config import WebSettings
from bot.web.routes.ops import database_check
from tests.campaign.factories import make_campaign
from tests.web.conftest import Clock


def client(engine: Engine, **web: object) -> TestClient:
    app = create_app(Settings(web=WebSettings(**web)), engine, clock=Clock())
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def metric_names(text: str) -> dict[str, float]:
    return {
        s.name + str(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def without_values(text: str) -> str:
    """The scrape less each sample's value (a byte count or a timestamp is a long number
    but no one's identity): comments, names and labels."""
    return "\n".join(
        line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in text.splitlines()
    )


def test_probes_answer_without_a_session(engine: Engine) -> None:
    c = client(engine)
    r = c.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = c.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_metrics_parse_and_show_the_backlogs_without_numbers(engine: Engine) -> None:
    make_campaign(engine, "ops-queue", n=2)  # due before the dashboard's clock
    c = client(engine)
    r = c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = metric_names(r.text)
    assert samples["callbot_metrics_database_up[]"] == 1
    assert samples["callbot_campaign_queue_depth[('campaign', 'ops-queue')]"] == 2
    assert samples["callbot_outbox_items[('state', 'pending')]"] == 0
    assert "callbot_review_queue_depth[('state', 'open')]" in samples
    assert not re.search(r"\d{11,}", without_values(r.text)), "a phone, card or ID number"


def test_metrics_token(engine: Engine) -> None:
    c = client(engine, metrics_token="s3cret-token")
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    r = c.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and "callbot_outbox_items" in r.text
    assert c.get("/healthz").status_code == 200  # the probes stay open


def unreachable_sqlite(tmp_path: Path) -> Engine:
    # Not make_engine: it would create the folder.
    return sa.create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'bot.db'}")


def test_readyz_is_503_when_sqlite_cannot_open(tmp_path: Path) -> None:
    c = client(unreachable_sqlite(tmp_path))
    r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "checks": {"database": "unreachable (OperationalError)"},
    }
    assert c.get("/healthz").status_code == 200
    r = c.get("/metrics")  # the scrape still works, and says the database is down
    assert r.status_code == 200
    assert metric_names(r.text)["callbot_metrics_database_up[]"] == 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_readyz_is_503_when_postgresql_refuses() -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test")
    r = client(engine).get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"].startswith("unreachable")
    assert "127.0.0.1" not in r.text  # no addresses for an unauthenticated caller


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes connections and never says a word (a hung database)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.slow  # the hung connect holds its thread until libpq's timeout (2 s at least)
@pytest.mark.anyio
async def test_a_database_that_hangs_fails_the_check_in_time(silent_server: int) -> None:
    engine = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test",
        connect_args={"connect_timeout": 2},
    )
    assert await database_check(engine, timeout_s=0.2) == "no answer within 0.2 s"
