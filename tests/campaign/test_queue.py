"""Claims, leases and recovery on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.campaign.queue import claim, recover_expired, renew_lease
from bot.store.db import session_scope
from bot.store.models import (
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    DispositionRow,
    DncEntryRow,
    OutboxRow,
)
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign

NOW = MONDAY_10_LOCAL


def items(engine: Engine) -> list[CampaignAccountRow]:
    with session_scope(engine) as s:
        return list(s.exec(select(CampaignAccountRow).order_by(CampaignAccountRow.id)).all())


def test_claim_takes_due_items_and_opens_a_call(engine: Engine) -> None:
    make_campaign(engine, n=3)
    got = claim(engine, "w1", limit=2, now=NOW)
    assert len(got) == 2 and all(c.attempt_no == 1 and c.max_attempts == 3 for c in got)
    states = [i.state for i in items(engine)]
    assert states.count("in_progress") == 2 and states.count("queued") == 1
    with session_scope(engine) as s:
        calls = s.exec(select(CallRow)).all()
        assert {c.id for c in calls} == {c.call_id for c in got} and all(
            c.worker_id == "w1" for c in calls
        )


def test_paused_and_draft_campaigns_are_not_dialled(engine: Engine) -> None:
    make_campaign(engine, "paused", state="paused")
    make_campaign(engine, "draft", state="draft")
    assert claim(engine, "w", limit=10, now=NOW) == []


def test_outside_the_window_items_are_deferred_to_the_next_opening(engine: Engine) -> None:
    make_campaign(engine, n=1)
    evening = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)  # 21:00 local
    assert claim(engine, "w", limit=5, now=evening) == []
    (item,) = items(engine)
    assert item.state == "queued" and item.next_attempt_at == dt.datetime(
        2026, 11, 24, 1, 0, tzinfo=dt.UTC
    )


def test_concurrency_cap_per_campaign_and_global(engine: Engine) -> None:
    make_campaign(engine, "a", n=5, max_concurrency=2)
    make_campaign(engine, "b", n=5, max_concurrency=5)
    got = claim(engine, "w", limit=10, now=NOW)
    per = {cid: sum(1 for c in got if c.campaign_id == cid) for cid in {c.campaign_id for c in got}}
    assert sorted(per.values()) == [2, 5]


def test_global_cap_counts_live_calls_of_every_worker(engine: Engine) -> None:
    make_campaign(engine, "a", n=10, max_concurrency=10)
    assert len(claim(engine, "w1", limit=10, now=NOW, global_cap=4)) == 4
    assert len(claim(engine, "w2", limit=10, now=NOW, global_cap=6)) == 2
    assert claim(engine, "w3", limit=10, now=NOW, global_cap=6) == []


def test_do_not_call_numbers_are_cancelled_not_dialled(engine: Engine) -> None:
    make_campaign(engine, n=2)
    with session_scope(engine) as s:
        s.add(DncEntryRow(phone_e164="+8613800000000", reason="customer request"))
    got = claim(engine, "w", limit=5, now=NOW)
    assert len(got) == 1
    cancelled = [i for i in items(engine) if i.state == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0].last_outcome == "dnc"


def test_one_account_in_two_campaigns_gets_one_live_call(engine: Engine) -> None:
    shared = [{"account_id": "6222000011112222"}]
    make_campaign(engine, "a", accounts=shared)
    with session_scope(engine) as s:
        acct = s.exec(sa.text("select id from account")).scalar_one()
        c = CampaignRow(name="b", state="running")
        s.add(c)
        s.flush()
        s.add(
            CampaignAccountRow(
                campaign_id=c.id, account_pk=acct, next_attempt_at=NOW - dt.timedelta(minutes=5)
            )
        )  # type: ignore[arg-type]
    got = claim(engine, "w", limit=5, now=NOW)
    assert len(got) == 1
    assert claim(engine, "w2", limit=5, now=NOW) == []


def test_parallel_claims_never_hand_out_one_item_twice(engine: Engine) -> None:
    make_campaign(engine, n=40, max_concurrency=100)
    results: list[list[int]] = []
    lock = threading.Lock()

    def grab(worker: str) -> None:
        mine: list[int] = []
        for _ in range(20):
            mine += [c.item_id for c in claim(engine, worker, limit=3, now=NOW)]
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for r in results for i in r]
    # SKIP LOCKED lets a claimer pass over rows another holds, so a few may be left
    # for a last sweep; what matters is that nothing was handed out twice.
    flat += [c.item_id for c in claim(engine, "sweeper", limit=100, now=NOW)]
    assert len(flat) == len(set(flat)) == 40


def test_expired_lease_is_recovered_and_the_lost_call_recorded(engine: Engine) -> None:
    make_campaign(engine, n=1)
    (c,) = claim(engine, "dead", limit=1, now=NOW, lease_s=60)
    assert recover_expired(engine, now=NOW + dt.timedelta(seconds=30)) == 0
    assert recover_expired(engine, now=NOW + dt.timedelta(seconds=61)) == 1
    (item,) = items(engine)
    assert item.state == "queued" and item.lease_owner is None and item.attempts == 0
    with session_scope(engine) as s:
        call = s.get(CallRow, c.call_id)
        assert call is not None and call.outcome == "failed" and call.ended_by == "worker_lost"
    (again,) = claim(engine, "alive", limit=1, now=NOW + dt.timedelta(seconds=62))
    assert again.attempt_no == 1 and again.call_id != c.call_id


def test_an_item_that_keeps_killing_workers_goes_to_people(engine: Engine) -> None:
    make_campaign(engine, n=1)
    t = NOW
    for _ in range(2):
        claim(engine, "dead", limit=1, now=t, lease_s=10)
        t += dt.timedelta(seconds=11)
        recover_expired(engine, now=t)
    (item,) = items(engine)
    assert item.state == "done" and item.final_disposition == "manual_investigation"
    with session_scope(engine) as s:
        (d,) = s.exec(select(DispositionRow)).all()
        (o,) = s.exec(select(OutboxRow)).all()
        assert d.disposition == "manual_investigation" and o.disposition_id == d.id
        assert o.payload["disposition"] == "manual_investigation"


def test_renewed_lease_survives_and_a_lost_one_reports_false(engine: Engine) -> None:
    make_campaign(engine, n=1)
    (c,) = claim(engine, "w", limit=1, now=NOW, lease_s=60)
    assert renew_lease(engine, c, lease_s=60, now=NOW + dt.timedelta(seconds=50))
    assert recover_expired(engine, now=NOW + dt.timedelta(seconds=70)) == 0
    assert recover_expired(engine, now=NOW + dt.timedelta(seconds=111)) == 1
    assert not renew_lease(engine, c, now=NOW + dt.timedelta(seconds=112))
