"""Rows and a receiver for delivery tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.delivery.payload import enqueue
from bot.store.db import session_scope
from bot.store.models import AccountRow, CallRow, DispositionRow, OutboxRow, RiskAssessmentRow
from tests.delivery.receiver import Receiver

SECRET = "test-secret-不要外传"
T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)
#: Full numbers that must never appear in anything sent or stored as an error.
PHONE_RAW = "13800000002"
PHONE_E164 = "+8613800000002"

EXPLANATION = [
    {
        "feature": "custody_lent",
        "description": "card lent to someone else",
        "category": "custody",
        "weight": 2.0,
        "hits": 1,
        "contribution": 2.0,
        "evidence": [{"turn": 3, "text": "借给我表哥了, 他电话13800000009"}],
    },
    {
        "feature": "purpose_unclear",
        "description": "could not say why the card was opened",
        "category": "purpose",
        "weight": 0.5,
        "hits": 1,
        "contribution": 0.5,
        "evidence": [],
    },
    {
        "feature": "salary",
        "description": "salary account",
        "category": "purpose",
        "weight": -0.8,
        "hits": 1,
        "contribution": -0.8,
        "evidence": [],
    },
]


def seed_dispositions(
    engine: Engine, n: int = 1, *, at: dt.datetime = T0, prefix: str = "acct"
) -> list[int]:
    """``n`` accounts, each with a completed call, its assessment, a disposition and the
    outbox entry (as the recorder writes them); returns the outbox ids."""
    ids = []
    with session_scope(engine) as s:
        for i in range(n):
            account = AccountRow(
                account_id=f"{prefix}-{i:05d}",
                name="李娜",
                phone=PHONE_RAW,
                phone_e164=PHONE_E164,
                id_number="44010619900101123X",
                scenario="suspicious_txn",
                model_score=0.8,
                branch="shenzhen",
            )
            s.add(account)
            s.flush()
            call = CallRow(
                account_pk=account.id,  # type: ignore[arg-type]
                started_at=at - dt.timedelta(minutes=5),
                ended_at=at,
                outcome="completed",
                script_id="suspicious_txn",
                script_version=3,
                ruleset_version="2026.11",
                risk_score=0.91,
                risk_band="high",
                disposition="suspend_non_counter",
                needs_review=True,
            )
            s.add(call)
            s.flush()
            s.add(
                RiskAssessmentRow(
                    call_id=call.id,  # type: ignore[arg-type]
                    score=0.91,
                    band="high",
                    prior=0.8,
                    prior_contribution=1.4,
                    logit=2.3,
                    ruleset_version="2026.11",
                    band_reason="score 0.91 >= 0.7",
                    explanation=EXPLANATION,
                )
            )
            disposition = DispositionRow(
                call_id=call.id,  # type: ignore[arg-type]
                account_pk=account.id,  # type: ignore[arg-type]
                disposition="suspend_non_counter",
                situation="completed_high",
                needs_review=True,
                created_at=at,
            )
            s.add(disposition)
            s.flush()
            row = enqueue(s, disposition, call, account)
            s.flush()
            assert row.id is not None
            ids.append(row.id)
    return ids


def outbox_rows(engine: Engine) -> list[OutboxRow]:
    with session_scope(engine) as s:
        return list(s.exec(select(OutboxRow).order_by(col(OutboxRow.id))).all())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET, hang_s=0.5) as r:
        yield r
