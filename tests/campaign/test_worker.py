"""A campaign run end to end by a worker, on SQLite and PostgreSQL: every account ends
exactly once, and what is stored is what the investigation decided."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.campaign.recorder import account_fields
from bot.campaign.worker import PlacedCall, SimulatedGateway, Worker
from bot.core.account import Account
from bot.core.investigation import Investigator
from bot.runtime import build_investigator
from bot.settings import Settings
from bot.sim.callee import PersonaCallee
from bot.store.db import session_scope
from bot.store.models import (
    CallRow,
    CampaignAccountRow,
    CampaignRow,
    DispositionRow,
    EntityRow,
    OutboxRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
)
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def investigator() -> Investigator:
    # Rules-only NLU keeps this test fast; the model is exercised by the eval tests.
    return build_investigator(Settings(intent_model_enabled=False))


def personas() -> list[dict[str, Any]]:
    return [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((SHARED / "personas").glob("*.yaml"))
    ]


def _row(acct: dict[str, Any]) -> dict[str, Any]:
    return account_fields(Account.model_validate(acct))


def test_campaign_runs_to_the_end(engine: Engine, investigator: Investigator) -> None:
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
        "e2e",
        accounts=[_row(p["account"]) for p in ps] + [_row(silent)],
        max_attempts=3,
        max_concurrency=4,
    )
    with session_scope(engine) as s:
        c = s.exec(select(CampaignRow)).one()
        c.backoff_minutes = [0]
        s.add(c)
    gateway = SimulatedGateway({p["account"]["account_id"]: p["answers"] for p in ps})
    worker = Worker(
        engine, investigator, gateway, worker_id="t1", poll_s=0.01, clock=lambda: MONDAY_10_LOCAL
    )
    stats = worker.run(until_idle=True)

    with session_scope(engine) as s:
        items = s.exec(select(CampaignAccountRow)).all()
        assert all(i.state == "done" for i in items) and len(items) == len(ps) + 1
        assert s.exec(select(CampaignRow)).one().state == "completed"
        calls = s.exec(select(CallRow)).all()
        by_item = Counter(c.campaign_account_id for c in calls)
        # The silent account was tried max_attempts times, then handed to people.
        silent_item = next(i for i in items if i.last_outcome == "no_answer")
        assert (
            by_item[silent_item.id] == 3 and silent_item.final_disposition == "manual_investigation"
        )
        assert stats.calls == len(calls) and stats.failed == 0
        # Each call's stored decision is the investigation's own.
        accounts = {p["account"]["account_id"]: p for p in ps}
        for item in items:
            if item.id == silent_item.id:
                continue
            acct_row = s.exec(select(CallRow).where(CallRow.campaign_account_id == item.id)).all()
            last = max(acct_row, key=lambda c: c.attempt_no)
            from bot.store.models import AccountRow

            account = s.get(AccountRow, item.account_pk)
            assert account is not None
            p = accounts[account.account_id]
            expected = investigator.run_text(
                Account.model_validate(p["account"]),
                PersonaCallee(p["answers"]),
                attempts_left=last.attempt_no < 3,
            )
            assert last.outcome == expected.record.outcome
            assert last.disposition == expected.decision.disposition
            assert last.risk_band == (
                expected.assessment.band.value if expected.assessment.band else None
            )
            turns = s.exec(
                select(TurnRow).where(TurnRow.call_id == last.id).order_by(TurnRow.idx)
            ).all()
            assert [t.text for t in turns] == [t.text for t in expected.record.turns]
            ra = s.exec(select(RiskAssessmentRow).where(RiskAssessmentRow.call_id == last.id)).one()
            assert [h["feature"] for h in ra.explanation] == [
                h.feature for h in expected.assessment.hits
            ]
        # Entities, dispositions, outbox and review items were written with the calls.
        assert s.exec(select(EntityRow)).first() is not None
        finals = s.exec(
            select(DispositionRow).where(DispositionRow.disposition != "retry_call")
        ).all()
        assert len(finals) == len(items)
        outbox = s.exec(select(OutboxRow)).all()
        assert len(outbox) == len(finals) and len({o.idempotency_key for o in outbox}) == len(
            outbox
        )
        reviews = s.exec(select(ReviewItemRow)).all()
        assert {r.call_id for r in reviews} == {c.id for c in calls if c.needs_review}


class ExplodingGateway(SimulatedGateway):
    def place(self, investigator, account, *, attempts_left):  # type: ignore[no-untyped-def]
        if account.account_id.endswith("1"):
            raise RuntimeError("corrupt audio")
        return super().place(investigator, account, attempts_left=attempts_left)


def test_a_failing_call_is_stored_as_failed_and_the_worker_goes_on(
    engine: Engine, investigator: Investigator
) -> None:
    make_campaign(engine, "boom", n=4, max_attempts=1)
    worker = Worker(
        engine, investigator, ExplodingGateway({}), poll_s=0.01, clock=lambda: MONDAY_10_LOCAL
    )
    stats = worker.run(until_idle=True)
    assert stats.failed == 1 and stats.calls == 4
    with session_scope(engine) as s:
        outcomes = Counter(c.outcome for c in s.exec(select(CallRow)).all())
        assert outcomes == {"failed": 1, "no_answer": 3}
        failed = s.exec(select(CallRow).where(CallRow.outcome == "failed")).one()
        assert (
            failed.ended_by == "error: RuntimeError"
            and failed.disposition == "manual_investigation"
        )
        assert failed.error == "RuntimeError: corrupt audio"


class TimedGateway(SimulatedGateway):
    """Like a voice gateway: reports each answering bot turn's latency and a line error."""

    def place(self, investigator, account, *, attempts_left):  # type: ignore[no-untyped-def]
        placed = super().place(investigator, account, attempts_left=attempts_left)
        bot_turns = [i for i, t in enumerate(placed.result.record.turns) if t.role == "bot"][1:]
        latency = {i: 800.0 + 100 * n for n, i in enumerate(bot_turns)}
        return PlacedCall(
            placed.result, placed.duration_s, "/rec/x.wav", latency, "line: phone 13812345678"
        )


def test_voice_latencies_and_line_errors_are_stored(
    engine: Engine, investigator: Investigator
) -> None:
    p = personas()[0]
    make_campaign(engine, "timed", accounts=[_row(p["account"])], max_attempts=1)
    gateway = TimedGateway({p["account"]["account_id"]: p["answers"]})
    Worker(engine, investigator, gateway, poll_s=0.01, clock=lambda: MONDAY_10_LOCAL).run(
        until_idle=True
    )
    with session_scope(engine) as s:
        call = s.exec(select(CallRow)).one()
        turns = s.exec(select(TurnRow).where(TurnRow.call_id == call.id)).all()
        timed = [t.latency_ms for t in turns if t.latency_ms is not None]
        assert timed and timed == sorted(timed) and timed[0] == 800.0
        assert all(t.role == "bot" for t in turns if t.latency_ms is not None)
        assert call.latency_p50_ms is not None and 800 <= call.latency_p50_ms <= timed[-1]
        assert call.latency_p95_ms is not None and call.latency_p95_ms >= call.latency_p50_ms
        assert call.recording_path == "/rec/x.wav"
        assert call.error is not None and "13812345678" not in call.error  # masked
