"""Prometheus metrics: a small simulated campaign counted by outcome, the database
backlogs read at scrape time matching the database, delivery failures, turn latency,
bounded labels, and multi-process mode adding up several processes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot import metrics
from bot.campaign.worker import SimulatedGateway, Worker
from bot.core.investigation import Investigator
from bot.delivery.adapters import make_deliverer
from bot.delivery.config import DeliverySettings
from bot.delivery.outbox import deliver_due
from bot.runtime import build_investigator
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import CallRow, CampaignAccountRow, OutboxRow, ReviewItemRow
from bot.voice.server import media_app
from bot.voice.session import CallBook, VoiceStack
from bot.voice.timeline import CallTimeline
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.campaign.test_worker import _row, personas
from tests.conftest import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(engine: Engine | None = None) -> Samples:
    """One scrape, the database read at the campaign's clock."""
    return parse(metrics.render(engine, lambda: MONDAY_10_LOCAL).decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over the samples whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


@pytest.fixture(autouse=True)
def fresh_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other tests in the process have used up campaign names; start the cap afresh."""
    monkeypatch.setattr(metrics, "campaign_label", metrics.Bounded())
    monkeypatch.setattr(metrics, "branch_label", metrics.Bounded())


@pytest.fixture(scope="module")
def investigator() -> Investigator:
    return build_investigator(Settings(intent_model_enabled=False))


@pytest.fixture
def campaign_run(engine: Engine, investigator: Investigator) -> Iterator[tuple[Samples, Samples]]:
    """The shared personas (plus one who never answers) called to the end; the scrapes
    before and after."""
    ps = personas()
    silent = {
        "account_id": "6225880199999999",
        "name": "无人接",
        "phone": "+8613900000000",
        "scenario": "dormant",
        "model_score": 0.5,
    }
    make_campaign(
        engine,
        "metrics-run",
        accounts=[_row(p["account"]) for p in ps] + [_row(silent)],
        max_attempts=1,
    )
    gateway = SimulatedGateway({p["account"]["account_id"]: p["answers"] for p in ps})
    before = scrape()
    worker = Worker(
        engine,
        investigator,
        gateway,
        worker_id="m1",
        poll_s=0.01,
        concurrency=2,
        clock=lambda: MONDAY_10_LOCAL,
    )
    worker.run(until_idle=True)
    yield before, scrape(engine)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.mark.slow  # a campaign of calls (and the NLU the first time)
def test_campaign_calls_are_counted_by_outcome_band_and_disposition(
    engine: Engine, campaign_run: tuple[Samples, Samples]
) -> None:
    before, after = campaign_run
    with session_scope(engine) as s:
        calls = s.exec(select(CallRow)).all()
    assert len(calls) == len(personas()) + 1
    for field, label in (("outcome", "outcome"), ("risk_band", "band"), ("disposition",) * 2):
        stored = Counter(getattr(c, field) or "none" for c in calls)
        counted = {
            v: delta(before, after, "callbot_calls_total", campaign="metrics-run", **{label: v})
            for v in stored
        }
        assert counted == stored, field
    assert delta(before, after, "callbot_calls_total") == len(calls)
    assert delta(before, after, "callbot_calls_by_branch_total") == len(calls)
    # The worker has stopped: nothing active, no capacity held.
    assert value(after, "callbot_active_calls") == 0
    assert value(after, "callbot_call_concurrency_limit") == 0


@pytest.mark.slow
def test_backlogs_match_the_database(engine: Engine, campaign_run: tuple[Samples, Samples]) -> None:
    del campaign_run  # what it left in the outbox and the review queue
    _, pks = make_campaign(engine, "metrics-queue", n=3)  # due a minute before the clock
    with session_scope(engine) as s:
        s.exec(
            sa.update(CampaignAccountRow)
            .where(col(CampaignAccountRow.account_pk) == pks[0])
            .values(next_attempt_at=MONDAY_10_LOCAL + dt.timedelta(hours=1))
        )
        outbox = Counter(s.exec(select(OutboxRow.state)).all())
        review = Counter(s.exec(select(ReviewItemRow.state)).all())
    assert outbox["pending"] > 0 and review["open"] > 0  # the run left work for both
    now = scrape(engine)
    assert value(now, "callbot_metrics_database_up") == 1
    assert value(now, "callbot_campaign_queue_depth", campaign="metrics-queue") == 2
    assert value(now, "callbot_campaign_queue_oldest_due_seconds", campaign="metrics-queue") == 60
    assert ("callbot_campaign_queue_depth", (("campaign", "metrics-run"),)) not in now  # completed
    for state in ("pending", "dead"):
        assert value(now, "callbot_outbox_items", state=state) == outbox[state]
    for state in ("open", "claimed"):
        assert value(now, "callbot_review_queue_depth", state=state) == review[state]
    assert value(now, "callbot_review_queue_oldest_open_seconds") >= 0
    assert value(now, "callbot_outbox_oldest_pending_seconds") >= 0
    # A failing endpoint: each attempt is a delivery failure, still pending (retried).
    deliverer = make_deliverer(
        DeliverySettings(
            webhook_url="http://127.0.0.1:9/hook", webhook_secret="s", webhook_timeout_s=2
        ),
        Path("."),
    )
    stats = deliver_due(engine, deliverer, batch=2)
    later = scrape(engine)
    failed = delta(now, later, "callbot_outbox_deliveries_total", result="retried")
    assert failed == stats.retried == stats.claimed > 0
    assert value(later, "callbot_outbox_items", state="pending") == outbox["pending"]


def test_an_unreadable_database_is_reported_not_raised(tmp_path: Path) -> None:
    gone = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'bot.db'}")
    samples = scrape(gone)
    assert value(samples, "callbot_metrics_database_up") == 0
    assert not any(n.startswith("callbot_outbox_items") for n, _ in samples)


def test_turn_latency_is_observed_when_the_answer_reaches_the_wire() -> None:
    now = [10.0]
    timeline = CallTimeline(clock=lambda: now[0])
    before = scrape()
    timeline.speech_ended()
    now[0] += 0.3
    timeline.replied()
    now[0] += 0.4
    timeline.audio_on_wire(1.0)  # 700 ms after the callee stopped
    after = scrape()
    assert delta(before, after, "callbot_turn_latency_ms_count") == 1
    assert delta(before, after, "callbot_turn_latency_ms_sum") == pytest.approx(700.0)
    assert delta(before, after, "callbot_turn_latency_ms_bucket", le="800.0") == 1
    assert delta(before, after, "callbot_turn_latency_ms_bucket", le="600.0") == 0


def test_labels_are_bounded_and_carry_no_long_numbers() -> None:
    bound = metrics.Bounded(limit=2)
    assert [bound(v) for v in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "other"]
    assert metrics.Bounded()("callback 13800138000") == "callback " + "*" * 11


CHILD = """
import sys
from bot import metrics
metrics.CALLS.labels("completed", "low", "clear", "c").inc(int(sys.argv[1]))
metrics.worker_load(int(sys.argv[1]), 4)
metrics.TURN_LATENCY.observe(500)
if sys.argv[2] == "dead":
    metrics.mark_process_dead()
"""


def test_multiprocess_mode_adds_up_the_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n, fate in ((2, "live"), (3, "live"), (5, "dead")):
        subprocess.run([sys.executable, "-c", CHILD, str(n), fate], env=env, check=True)
    show = "from bot import metrics; print(metrics.render().decode())"
    text = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, capture_output=True, text=True
    ).stdout
    samples = parse(text)
    assert total(samples, "callbot_calls_total") == 10  # counters: every process, dead or not
    assert value(samples, "callbot_turn_latency_ms_count") == 3
    # Live gauges: the exited process that said so is gone; the others count until the
    # operator clears the folder (or they call mark_process_dead) on exit.
    assert value(samples, "callbot_active_calls") == 5
    assert value(samples, "callbot_call_concurrency_limit") == 8


def test_the_worker_metrics_server_and_the_media_health_probe() -> None:
    """``bot worker``'s metrics port (``voice.metrics_port``) over real HTTP, and the
    media server's ``/healthz``."""
    port = free_port()
    server = metrics.serve(port)
    metrics.speech_error("asr")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.shutdown()
    assert r.status_code == 200
    assert value(parse(r.text), "callbot_speech_errors_total", component="asr") >= 1
    media = TestClient(media_app(cast(VoiceStack, None), CallBook()))
    assert media.get("/healthz").json() == {"status": "ok"}


def test_reviewer_agreement_counts_the_recent_verdicts(engine: Engine) -> None:
    """Verdicts of the last 7 days by reason and verdict, and the share that agreed; a
    verdict older than the window does not count, a reason without verdicts has no share."""
    from bot.store.models import VerdictRow
    from bot.web.security import create_user
    from tests.web.factories import populate

    populate(engine, "metrics-review")
    with session_scope(engine) as s:
        reviewer = create_user(s, "rev1", "a long enough pass phrase 7", "reviewer").id
        items = s.exec(select(ReviewItemRow).order_by(col(ReviewItemRow.id))).all()
        suspicious = [i for i in items if i.reason == "suspicious"]
        assert len(suspicious) >= 4
        for n, item in enumerate(suspicious[:4]):
            age = dt.timedelta(days=30 if n == 3 else 1)  # the fourth is too old to count
            s.add(
                VerdictRow(
                    review_item_id=item.id, reviewer_id=reviewer, agree=n != 1,
                    created_at=MONDAY_10_LOCAL - age,
                )
            )  # fmt: skip
    now = scrape(engine)
    assert value(now, "callbot_review_verdicts", reason="suspicious", verdict="agree") == 2
    assert value(now, "callbot_review_verdicts", reason="suspicious", verdict="overturn") == 1
    assert value(now, "callbot_review_verdicts", reason="sample", verdict="agree") == 0
    ratio = ("callbot_review_agreement_ratio", (("reason", "suspicious"),))
    assert now[ratio] == pytest.approx(2 / 3)
    assert ("callbot_review_agreement_ratio", (("reason", "sample"),)) not in now
