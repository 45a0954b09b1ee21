"""``bot worker --until-idle`` exits only once the outbox is drained too, through the
command line as an operator runs it: a campaign whose calls are placed (simulated
callees), their dispositions delivered by the worker's own delivery loop to a real HTTP
receiver (the bank's side, :class:`tests.delivery.receiver.Receiver`).

* The receiver fails the first requests: the worker keeps delivering (retries with
  backoff) and exits with nothing pending.
* The receiver always fails: the worker still exits, once every item backs off past
  ``--outbox-wait``, and reports them pending (a later worker sends them).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

from bot.campaign.recorder import account_fields
from bot.cli.app import app
from bot.core.account import Account
from bot.delivery.outbox import outbox_counts
from bot.settings import get_settings
from bot.store.db import make_engine
from bot.store.migrate import upgrade
from tests.campaign.factories import make_campaign
from tests.conftest import SHARED
from tests.delivery.conftest import SECRET
from tests.delivery.receiver import Receiver

pytestmark = pytest.mark.slow

PERSONAS = ("p01_salary_owner", "p02_lent_to_friend", "p03_wrong_person")
#: Longest a worker run may take before the test stops it (SIGTERM, as an operator would).
WATCHDOG_S = 300.0


def noon_somewhere(now: dt.datetime) -> str:
    """A time zone in which it is about noon now, so that the real clock the command
    runs on is always inside the campaign's calling window."""
    offset = (12 - now.hour + 12) % 24 - 12  # hours east of UTC, -12..11
    return f"Etc/GMT{-offset:+d}"  # the Etc zones count west as positive


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated SQLite file holding one running campaign of three simulated callees
    (open all day, every day); the command's settings point at it."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    engine = make_engine(url)
    tz = noon_somewhere(dt.datetime.now(dt.UTC))
    accounts = []
    for name in PERSONAS:
        persona = yaml.safe_load((SHARED / "personas" / f"{name}.yaml").read_text("utf-8"))
        accounts.append(
            {**account_fields(Account.model_validate(persona["account"])), "timezone": tz}
        )
    make_campaign(
        engine,
        "outbox",
        accounts=accounts,
        max_attempts=1,
        window_start="00:00",
        window_end="23:59",
        weekdays=[1, 2, 3, 4, 5, 6, 7],
    )
    for key, value in {
        "BOT_DATABASE_URL": url,
        "BOT_DATA_DIR": str(tmp_path / "var"),
        "BOT_INTENT_MODEL_ENABLED": "false",
        "BOT_DB_RETRY_BASE_S": "0.05",
        "BOT_DB_RETRY_CAP_S": "0.5",
        "BOT_DELIVERY__WEBHOOK_SECRET": SECRET,
        "BOT_DELIVERY__DELIVERY_POLL_S": "0.02",
        # Never dead-lettered here: what is not delivered stays pending.
        "BOT_DELIVERY__DELIVERY_MAX_ATTEMPTS": "100",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield engine
    get_settings.cache_clear()
    engine.dispose()


def run_worker(receiver: Receiver, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """``bot worker --until-idle`` delivering to ``receiver``. A run that does not end
    on its own is stopped by SIGTERM (the command's own clean stop) and fails the test."""
    monkeypatch.setenv("BOT_DELIVERY__WEBHOOK_URL", receiver.url)
    get_settings.cache_clear()
    personas = str(SHARED / "personas")
    fired = threading.Event()

    def stop_it() -> None:
        fired.set()
        os.kill(os.getpid(), signal.SIGTERM)

    watchdog = threading.Timer(WATCHDOG_S, stop_it)
    watchdog.start()
    try:
        result = CliRunner().invoke(
            app, ["worker", "--until-idle", "--personas", personas, "--concurrency", "3", *args]
        )
    finally:
        watchdog.cancel()
    assert not fired.is_set(), f"the worker did not exit on its own:\n{result.output}"
    assert result.exit_code == 0, result.output
    assert f"stopped: {len(PERSONAS)} calls, 0 failed" in result.output
    return result


def test_exits_only_once_the_outbox_is_drained(
    db: Engine, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    failures = 2 * len(PERSONAS)  # every item fails at least once on average
    monkeypatch.setenv("BOT_DELIVERY__RETRY_BASE_S", "0.05")
    monkeypatch.setenv("BOT_DELIVERY__RETRY_CAP_S", "0.2")
    with Receiver(SECRET) as receiver:
        receiver.then(*[503] * failures)
        result = run_worker(receiver, monkeypatch, "--outbox-wait", "60")
        received = list(receiver.requests)
    counts = outbox_counts(db)
    assert counts == {"pending": 0, "delivered": len(PERSONAS), "dead": 0}
    assert "outbox:" not in result.output  # nothing left to report
    # The bank got each disposition once, after the failures the worker rode out.
    assert len(received) == failures + len(PERSONAS)
    assert [r.status for r in received[:failures]] == [503] * failures
    assert sorted(r.status for r in received[failures:]) == [200] * len(PERSONAS)
    assert len({r.key for r in received if r.status == 200}) == len(PERSONAS)


def test_a_dead_endpoint_does_not_keep_the_worker_forever(
    db: Engine, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    """Each failure pushes an item's next attempt further out (0.2 s, doubling); once
    every item's is more than ``--outbox-wait`` (1 s) away, the worker exits and says
    what it left."""
    monkeypatch.setenv("BOT_DELIVERY__RETRY_BASE_S", "0.2")
    monkeypatch.setenv("BOT_DELIVERY__RETRY_CAP_S", "600")
    with Receiver(SECRET) as receiver:
        receiver.then(*[503] * 10_000)
        result = run_worker(receiver, monkeypatch, "--outbox-wait", "1")
        received = list(receiver.requests)
    counts = outbox_counts(db)
    n = len(PERSONAS)
    assert counts == {"pending": n, "delivered": 0, "dead": 0}
    assert f"outbox: {n} pending (retrying later), 0 dead" in result.output
    # Every item was tried, more than once (it backed off until past the wait).
    assert len({r.key for r in received}) == n and len(received) > n
    assert {r.status for r in received} == {503}


def test_a_delivery_loop_that_dies_stops_the_worker_with_one_line(
    db: Engine, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    """Dispositions must reach the bank: a delivery thread that dies (here: its loop
    raises) stops the worker, which says why in one line and exits 1, no traceback."""

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("the outbox table is gone for 13812345678")

    monkeypatch.setattr("bot.delivery.outbox.run_forever", broken)
    monkeypatch.setenv("BOT_DELIVERY__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["worker", "--personas", str(SHARED / "personas"), "--status-every", "0"]
    )
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: delivery stopped: RuntimeError: the outbox table is gone for 138****5678"
    ]
    assert "Traceback" not in result.output


def test_a_deliverer_that_cannot_start_stops_the_worker_before_the_models(
    db: Engine, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    def refuse(*_args: object, **_kw: object) -> None:
        raise PermissionError("cannot create /var/callbot/outbox")

    monkeypatch.setattr("bot.delivery.adapters.make_deliverer", refuse)
    monkeypatch.setattr(
        "bot.runtime.build_investigator", lambda *_: pytest.fail("models loaded first")
    )
    monkeypatch.setenv("BOT_DELIVERY__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["worker", "--personas", str(SHARED / "personas")])
    assert result.exit_code == 1, result.output
    assert "error: delivery cannot start: cannot create /var/callbot/outbox" in result.output
    assert "Traceback" not in result.output
