"""``bot worker`` says what it is doing: the status line, the connect-rate warning, and
``--until-idle`` exiting when nothing is due within its horizon (retries backing off,
calling hours closed) instead of waiting silently for ever.

Pure parts on fake clocks; the queue's due times against SQLite and PostgreSQL; the
worker on its injected clock (never the wall clock); the command through CliRunner."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col
from typer.testing import CliRunner

from bot.campaign import progress
from bot.campaign.due import QueueView, queue_view
from bot.campaign.queue import claim
from bot.campaign.worker import Notice, SimulatedGateway, Worker
from bot.core.investigation import Investigator
from bot.runtime import build_investigator
from bot.settings import Settings, get_settings
from bot.store.db import make_engine, session_scope
from bot.store.migrate import upgrade
from bot.store.models import CampaignAccountRow, CampaignRow
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.campaign.outage_helpers import run_to_idle

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = MONDAY_10_LOCAL  # Monday 10:00 in Shanghai, the accounts' default zone
MIN = dt.timedelta(minutes=1)


# -- pure: rates, the connect watch, the texts -------------------------------------------


def test_calls_per_min_counts_the_last_minute_only() -> None:
    p = progress.Progress()
    for t in (0.0, 10.0, 20.0, 59.0):
        p.record("completed", at=t)
    assert p.calls_per_min(59.0) == 4
    assert p.calls_per_min(60.5) == 3  # the call at 0 s is over a minute old
    assert p.calls_per_min(200.0) == 0
    assert p.attempts == 4  # the totals keep everything


def test_connect_rate_counts_what_reached_the_line() -> None:
    p = progress.Progress()
    assert p.connect_rate() is None
    for outcome in ["completed", "voicemail", "hung_up", "no_answer", "busy", "failed"]:
        p.record(outcome, at=0.0)
    assert (p.answered, p.attempts) == (3, 6) and p.connect_rate() == 0.5


def test_connect_watch_warns_once_and_again_only_after_recovering() -> None:
    w = progress.ConnectWatch(after=3)
    said = [w.observe(o) for o in ["no_answer", "busy", "failed", "no_answer", "no_answer"]]
    assert said == [None, None, "warn", None, None]
    assert w.observe("completed") == "recovered"
    assert w.observe("completed") is None
    said = [w.observe("no_answer") for _ in range(4)]
    assert said == [None, None, "warn", None]


def test_connect_warning_names_the_gateway_and_the_outcomes() -> None:
    text = progress.connect_warning(Counter(no_answer=8, failed=2), "TelephonyGateway")
    assert text.startswith(
        "0 of 10 calls connected: check the gateway (TelephonyGateway: no_answer 8, failed 2;"
    )


def status(**kw: object) -> progress.StatusInput:
    base: dict[str, object] = dict(
        now=NOW,
        calls_per_min=12.0,
        outcomes=Counter(completed=18, busy=3, no_answer=9),
        live=3,
        concurrency=4,
        queued=120,
        due_now=85,
        next_due=NOW,
    )
    return progress.StatusInput(**{**base, **kw})  # type: ignore[arg-type]


def test_status_line() -> None:
    assert progress.status_line(status(), SHANGHAI) == (
        "calls/min 12 | 30 calls: completed 18, no_answer 9, busy 3 | "
        "connected 60% (18/30) | live 3/4 | queue 120, 85 due now"
    )


def test_status_line_says_when_the_next_item_is_due() -> None:
    line = progress.status_line(
        status(outcomes=Counter(), calls_per_min=0.0, live=0, due_now=0, next_due=NOW + 90 * MIN),
        SHANGHAI,
    )
    assert line == "calls/min 0 | no calls yet | live 0/4 | queue 120, nothing due until 11:30"
    tomorrow = progress.queue_text(status(due_now=0, next_due=NOW + 23 * 60 * MIN), SHANGHAI)
    assert tomorrow == "queue 120, nothing due until 2026-11-24 09:00"
    empty = progress.queue_text(status(queued=0, due_now=0, next_due=None, in_progress=2))
    assert empty == "queue empty (2 in progress)"


def test_times_are_local() -> None:
    assert progress.local_time(NOW, NOW, SHANGHAI) == "10:00"
    assert progress.local_time(NOW, NOW, dt.UTC) == "02:00"
    assert progress.local_time(NOW, NOW) == NOW.astimezone().strftime("%H:%M")  # the machine's


def test_idle_texts() -> None:
    assert progress.idle_exit_line(60, NOW + 10 * MIN, NOW, SHANGHAI) == (
        "nothing due within 60 s (next at 10:10); exiting"
    )
    assert progress.idle_exit_line(60, None, NOW) == "nothing queued in running campaigns; exiting"
    assert "nothing is due within 60 s, and no disposition is due for delivery within 5 s" in (
        progress.idle_bound_line(60, 5)
    )


# -- the queue as claim() sees it ----------------------------------------------------------


def due_at(engine: Engine, campaign_id: int, *when: dt.datetime) -> None:
    """Set the campaign's items' next attempts, in item order."""
    with session_scope(engine) as s:
        ids = s.execute(
            sa.select(col(CampaignAccountRow.id))
            .where(col(CampaignAccountRow.campaign_id) == campaign_id)
            .order_by(col(CampaignAccountRow.id))
        ).scalars()
        for item_id, at in zip(ids, when, strict=True):
            s.execute(
                sa.update(CampaignAccountRow)
                .where(col(CampaignAccountRow.id) == item_id)
                .values(next_attempt_at=at)
            )


def test_queue_view_counts_due_items_of_running_campaigns(engine: Engine) -> None:
    cid, _ = make_campaign(engine, "open", n=3)
    due_at(engine, cid, NOW - MIN, NOW, NOW + 10 * MIN)
    make_campaign(engine, "paused", n=2, state="paused")
    assert queue_view(engine, now=NOW) == QueueView(queued=3, due_now=2, next_due=NOW)
    assert len(claim(engine, "w", limit=1, now=NOW)) == 1
    assert queue_view(engine, now=NOW) == QueueView(2, 1, NOW, in_progress=1)


def test_queue_view_next_due_is_the_earliest_retry(engine: Engine) -> None:
    a, _ = make_campaign(engine, "a", n=2)
    due_at(engine, a, NOW + 10 * MIN, NOW + 30 * MIN)
    b, _ = make_campaign(engine, "b", n=1)
    due_at(engine, b, NOW + 5 * MIN)
    assert queue_view(engine, now=NOW) == QueueView(queued=3, due_now=0, next_due=NOW + 5 * MIN)


def test_queue_view_next_due_respects_calling_hours(engine: Engine) -> None:
    """At 22:00 in Shanghai an item already due is really due when the window opens,
    09:00 the next morning: exactly when claim() first takes it."""
    make_campaign(engine, "night", n=1)  # due at 09:59, window 09:00-20:00 weekdays
    night = NOW + 12 * 60 * MIN
    opens = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    view = queue_view(engine, now=night)
    assert view == QueueView(queued=1, due_now=0, next_due=opens)
    assert claim(engine, "w", limit=1, now=night) == []  # pushes it to the opening
    assert queue_view(engine, now=night) == view
    assert claim(engine, "w", limit=1, now=opens - MIN) == []
    assert len(claim(engine, "w", limit=1, now=opens)) == 1


def test_queue_view_skips_a_window_that_never_opens(engine: Engine) -> None:
    make_campaign(engine, "never", n=1, weekdays=[1], holidays=[])
    with session_scope(engine) as s:  # every Monday a holiday for 400 days
        c = s.execute(sa.select(CampaignRow)).scalar_one()
        c.holidays = [(NOW.date() + dt.timedelta(days=7 * k)).isoformat() for k in range(60)]
        s.add(c)
    assert queue_view(engine, now=NOW) == QueueView(queued=1, due_now=0, next_due=None)


# -- the worker -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def investigator() -> Investigator:
    return build_investigator(Settings(intent_model_enabled=False))


def worker(
    engine: Engine,
    investigator: Investigator,
    notices: list[Notice],
    clock: Callable[[], dt.datetime] = lambda: NOW,
    **kw: object,
) -> Worker:
    return Worker(
        engine,
        investigator,
        SimulatedGateway({}),  # nobody answers
        poll_s=0.01,
        clock=clock,
        on_notice=notices.append,
        local_tz=SHANGHAI,
        monotonic=lambda: 0.0,
        **kw,  # type: ignore[arg-type]
    )


def test_until_idle_exits_when_the_next_item_is_due_past_the_horizon(
    engine: Engine, investigator: Investigator
) -> None:
    cid, _ = make_campaign(engine, "later", n=1)
    due_at(engine, cid, NOW + 10 * MIN)
    notices: list[Notice] = []
    w = worker(engine, investigator, notices, status_every_s=10)
    stats = run_to_idle(w, timeout_s=60)
    assert stats.calls == 0
    assert w.idle_exit is not None and w.idle_exit.next_due == NOW + 10 * MIN
    assert w.idle_exit.queued == 1 and w.idle_exit.horizon_s == 60
    assert notices[-1] == Notice("idle", "nothing due within 60 s (next at 10:10); exiting")
    status_lines = [n.text for n in notices if n.kind == "status"]
    assert status_lines and all("queue 1, nothing due until 10:10" in t for t in status_lines)


def test_until_idle_exits_when_calling_hours_are_closed(
    engine: Engine, investigator: Investigator
) -> None:
    make_campaign(engine, "night", n=2)
    notices: list[Notice] = []
    w = worker(engine, investigator, notices, clock=lambda: NOW + 12 * 60 * MIN)
    assert run_to_idle(w, timeout_s=60).calls == 0
    assert w.idle_exit is not None
    assert w.idle_exit.next_due == dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
    assert notices == [
        Notice("idle", "nothing due within 60 s (next at 2026-11-24 09:00); exiting")
    ]


def test_until_idle_waits_for_an_item_due_within_the_horizon(
    engine: Engine, investigator: Investigator
) -> None:
    cid, _ = make_campaign(engine, "soon", n=1, max_attempts=1)
    due_at(engine, cid, NOW + 30 * dt.timedelta(seconds=1))
    ticks = itertools.count()
    notices: list[Notice] = []
    w = worker(engine, investigator, notices, clock=lambda: NOW + dt.timedelta(seconds=next(ticks)))
    stats = run_to_idle(w, timeout_s=60)
    assert stats.calls == 1  # waited for it, placed it
    assert w.idle_exit is not None and w.idle_exit.next_due is None
    assert notices[-1] == Notice("idle", "nothing queued in running campaigns; exiting")


def test_calls_that_never_connect_raise_one_loud_warning(
    engine: Engine, investigator: Investigator
) -> None:
    make_campaign(engine, "silent", n=13, max_attempts=1)
    notices: list[Notice] = []
    w = worker(engine, investigator, notices, status_every_s=10)
    assert run_to_idle(w, timeout_s=120).calls == 13
    warnings = [n.text for n in notices if n.kind == "warn"]
    assert warnings == [
        "0 of 10 calls connected: check the gateway (SimulatedGateway: no_answer 10; "
        "numbers, caller id, credentials, network)"
    ]
    final = [n.text for n in notices if n.kind == "status"][-1]
    assert "13 calls: no_answer 13 | connected 0% (0/13) | live 0/1 | queue empty" in final


# -- the command ------------------------------------------------------------------------------


def test_the_command_says_nothing_is_due_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signals: None
) -> None:
    """On the real clock: an item due in 10 minutes, in a window open all day."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    engine = make_engine(url)
    cid, _ = make_campaign(
        engine, "later", n=1, window_start="00:00", window_end="24:00", weekdays=list(range(1, 8))
    )
    due = dt.datetime.now(dt.UTC) + 10 * MIN
    due_at(engine, cid, due)
    engine.dispose()
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BOT_INTENT_MODEL_ENABLED", "false")
    get_settings.cache_clear()
    try:
        from bot.cli.app import app

        result = CliRunner().invoke(
            app, ["worker", "--until-idle", "--no-deliver", "--idle-horizon", "120"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    at = progress.local_time(due, dt.datetime.now(dt.UTC))
    assert "until idle: exits once no call is live, nothing is due within 120 s" in result.output
    assert f"calls/min 0 | no calls yet | live 0/1 | queue 1, nothing due until {at}" in (
        result.output
    )
    assert f"nothing due within 120 s (next at {at}); exiting" in result.output
    assert "stopped: 0 calls" in result.output
