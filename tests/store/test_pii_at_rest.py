"""Personal numbers at rest, on SQLite and PostgreSQL: callees who speak card, ID and
phone numbers (text-mode calls through the real worker, recorder and NLU) and a reviewer
who types them leave none in clear in any text column of any table; with a key the
audited reveal gives the full values back, without one they are gone."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.campaign.worker import SimulatedGateway, Worker
from bot.settings import Settings
from bot.store.models import (
    AuditEventRow,
    CallRow,
    EntityRow,
    PiiSecretRow,
    ReviewItemRow,
    TurnRow,
)
from bot.store.pii_crypto import KeyRing
from bot.web.app import create_app
from bot.web.calls_service import reveal_call
from bot.web.deps import Viewer
from bot.web.review_service import TurnCorrection, VerdictIn, claim, give_verdict
from bot.web.security import create_user
from tests.campaign.factories import MONDAY_10_LOCAL, make_campaign
from tests.store.pii_helpers import new_key, normalised
from tests.store.pii_helpers import scan as scan_all
from tests.web.factories import investigator

CARD = "6222 0210 0112 3456 789"  # 19 digits, grouped as people say it
CARD_13 = "4000123456789"  # an old 13-digit card, in one run
ID_NUMBER = "11010519491231002X"
PHONE = "13912345678"
SPOKEN_PHONE = "幺三七零零一二三四五六"  # 13700123456, read out digit by digit
TYPED_CARD = "6217003210004567890"  # typed by the reviewer

#: Every number above as bare digits: none may be anywhere in the database.
SECRETS = [
    "6222021001123456789", CARD_13, ID_NUMBER, PHONE, "13700123456", TYPED_CARD,
]  # fmt: skip

ANSWERS = {
    "identity": f"对，我是李娜，身份证号{ID_NUMBER}。",
    "card_purpose": "当时开卡是想存点钱。",
    "fund_source": f"这些钱不是我的，是我朋友的货款，他用卡号{CARD_13}转的。",
    "card_custody": f"这张卡我借给朋友用了，卡号{CARD}，他电话{PHONE}，他说帮他收一下货款。",
    "counterparty": f"王强我不认识，他的电话是{SPOKEN_PHONE}。",
    "occupation": "我现在没有工作。",
    "default": "嗯。",
}
ACCOUNT = {
    "account_id": "900100200",  # digits, but no card number
    "name": "李娜",
    "phone": "+8613800000002",
    "phone_e164": "+8613800000002",
    "card_last4": "0002",
    "scenario": "suspicious_txn",
    "model_score": 0.81,
    "branch": "shenzhen",
    "txn_amount": 49800.0,
    "txn_date": dt.date(2026, 11, 18),
    "txn_counterparty": "王强",
}


def scan(engine: Engine) -> tuple[list[str], int]:
    """The numbers above, and anything like a card, ID or mobile, in clear anywhere."""
    return scan_all(engine, SECRETS)


PASSWORD = "correct horse battery staple"


def run_call_and_review(engine: Engine) -> tuple[int, Viewer]:
    """One call (the callee speaks the numbers) and an overturning verdict whose reason
    and turn correction type numbers too; returns the call id and the supervisor."""
    make_campaign(engine, "pii", accounts=[ACCOUNT], max_attempts=1)
    gateway = SimulatedGateway({ACCOUNT["account_id"]: ANSWERS})
    stats = Worker(engine, investigator(), gateway, poll_s=0.01, clock=lambda: MONDAY_10_LOCAL).run(
        until_idle=True
    )
    assert stats.calls == 1 and stats.failed == 0
    now = MONDAY_10_LOCAL + dt.timedelta(hours=1)
    with Session(engine, expire_on_commit=False) as s:
        call = s.exec(select(CallRow)).one()
        assert call.id is not None and call.outcome == "completed"
        user = create_user(s, "sup", PASSWORD, "supervisor")
        who = Viewer(user.id or 0, user.username, user.role, "t")
        item = s.exec(select(ReviewItemRow).where(ReviewItemRow.call_id == call.id)).first()
        if item is None:
            item = ReviewItemRow(call_id=call.id, reason="sample")
            s.add(item)
            s.flush()
        assert item.id is not None
        custody = s.exec(
            select(TurnRow).where(
                TurnRow.call_id == call.id,
                TurnRow.topic == "card_custody",
                TurnRow.role == "callee",
            )
        ).first()
        assert custody is not None and custody.role == "callee"
        claim(s, item.id, who, now)
        give_verdict(
            s, item.id,
            VerdictIn(
                agree=False, corrected_disposition="suspend_all",
                reason=f"客户另一张卡{TYPED_CARD}也在朋友手里",
                turn_corrections=[TurnCorrection(turn_idx=custody.idx, text=f"卡借给朋友了，他电话{PHONE}")],
            ),
            who, now,
        )  # fmt: skip
        s.commit()
    return call.id, who


def test_spoken_and_typed_numbers_are_masked_at_rest_and_revealed_with_the_key(
    engine: Engine, pii_key: str
) -> None:
    call_id, who = run_call_and_review(engine)
    found, read = scan(engine)
    assert read > 100 and not found, "\n".join(found)

    with Session(engine) as s:
        turns = s.exec(select(TurnRow).where(TurnRow.call_id == call_id)).all()
        stored = "\n".join(t.text for t in turns)
        # masked the documented way: last four of cards, 3+4 of phones, ends of IDs
        assert "**** **** **** ***6 789" in stored and "*********6789" in stored
        assert "139****5678" in stored and "137****3456" in stored
        assert "1****************X" in stored
        # entities point into the masked text
        by_idx = {t.idx: t.text for t in turns}
        sensitive = s.exec(
            select(EntityRow).where(
                EntityRow.call_id == call_id,
                col(EntityRow.label).in_(["card_number", "phone", "id_number"]),
            )
        ).all()
        assert {e.label for e in sensitive} == {"card_number", "phone", "id_number"}
        for e in sensitive:
            assert by_idx[e.turn_idx][e.start : e.end] == e.text, e
        secrets = s.exec(select(PiiSecretRow)).all()
        assert secrets and {x.call_id for x in secrets} == {call_id}
        assert {(x.table_name, x.column_name) for x in secrets} >= {
            ("turn", "text"), ("extracted_entity", "value"), ("risk_assessment", "explanation"),
            ("verdict", "reason"), ("verdict", "turn_corrections"),
        }  # fmt: skip
        assert len({x.key_id for x in secrets}) == 1 and len({x.nonce for x in secrets}) == len(
            secrets
        )

    with Session(engine, expire_on_commit=False) as s:
        detail = reveal_call(s, who, call_id, "case 2026-118 escalation")
        s.commit()  # the request's transaction: nothing unmasked may be written back
    shown = "\n".join(t.text for t in detail.turns)
    for spoken in (CARD, CARD_13, ID_NUMBER, PHONE, SPOKEN_PHONE):
        assert spoken in shown
    values = {e.value for es in detail.entities.values() for e in es}
    assert {"6222021001123456789", ID_NUMBER, "+86" + PHONE} <= values
    by_idx = {t.idx: t.text for t in detail.turns}
    for e in (e for es in detail.entities.values() for e in es):
        assert by_idx[e.turn_idx][e.start : e.end] == e.text  # original offsets too
    (verdict,) = detail.verdicts
    assert TYPED_CARD in verdict.reason and PHONE in verdict.turn_corrections[0]["text"]
    assert detail.assessment is not None and PHONE in json.dumps(
        detail.assessment.explanation, ensure_ascii=False
    )
    with Session(engine) as s:
        (event,) = s.exec(select(AuditEventRow).where(AuditEventRow.action == "pii_revealed")).all()
    assert event.actor == "sup" and event.object_id == str(call_id)
    assert event.detail["decrypted"] == len(secrets) and event.detail["undecryptable"] == 0
    found, _ = scan(engine)
    assert not found, "\n".join(found)


def test_the_reveal_route_decrypts_with_the_process_key(engine: Engine, pii_key: str) -> None:
    call_id, _ = run_call_and_review(engine)
    app = create_app(Settings(), engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        r = client.post("/api/v1/session", json={"username": "sup", "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["csrf_token"]
        masked = client.get(f"/api/v1/calls/{call_id}").text
        assert not [n for n in SECRETS if n in normalised(masked)]
        body = client.post(
            f"/api/v1/calls/{call_id}/reveal", json={"reason": "fraud ring 2026-118"},
            headers={"X-CSRF-Token": token},
        ).json()  # fmt: skip
    texts = "\n".join(t["text"] for t in body["turns"])
    assert CARD in texts and ID_NUMBER in texts and SPOKEN_PHONE in texts
    assert {"6222021001123456789", ID_NUMBER, "+86" + PHONE} <= {
        e["value"] for e in body["entities"]
    }
    found, _ = scan(engine)
    assert not found, "\n".join(found)


def test_without_a_key_the_full_numbers_are_not_kept(engine: Engine, no_pii_key: None) -> None:
    call_id, who = run_call_and_review(engine)
    found, _ = scan(engine)
    assert not found, "\n".join(found)
    with Session(engine, expire_on_commit=False) as s:
        assert s.exec(select(PiiSecretRow)).first() is None
        detail = reveal_call(s, who, call_id, "case 2026-118 escalation")
        s.commit()
    shown = "\n".join(t.text for t in detail.turns)
    assert PHONE not in shown and "139****5678" in shown
    with Session(engine) as s:
        event = s.exec(select(AuditEventRow).where(AuditEventRow.action == "pii_revealed")).one()
    assert event.detail["decrypted"] == 0


def test_a_retired_key_still_opens_and_a_removed_one_leaves_values_masked(
    engine: Engine, pii_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id, who = run_call_and_review(engine)
    rotated = KeyRing.from_settings(
        Settings(pii={"key": new_key(), "old_keys": [pii_key]}).pii  # type: ignore[arg-type]
    )
    stranger = KeyRing.from_settings(Settings(pii={"key": new_key()}).pii)  # type: ignore[arg-type]
    assert rotated is not None and stranger is not None
    with Session(engine, expire_on_commit=False) as s:
        opened = reveal_call(s, who, call_id, "rotation check", keys=rotated)
        assert any(PHONE in t.text for t in opened.turns)
        s.rollback()
    with Session(engine, expire_on_commit=False) as s:
        closed = reveal_call(s, who, call_id, "rotation check", keys=stranger)
        assert not any(PHONE in t.text for t in closed.turns)
        s.commit()
    with Session(engine) as s:
        event = s.exec(select(AuditEventRow).where(AuditEventRow.action == "pii_revealed")).one()
        sealed = len(s.exec(select(PiiSecretRow)).all())
    assert event.detail["decrypted"] == 0 and event.detail["undecryptable"] == sealed > 0
