"""Numbers stored before masking, on SQLite and PostgreSQL: a database at revision 0006
holds what the old code wrote (a callee's ID, card and phone in clear in the turn, its
entities, the score's evidence, a verdict and a call error). Migration 0007 masks it all,
sealing the originals when a key is configured; ``bot db mask-pii`` (``mask_stored``)
changes nothing a second time and catches what an old worker wrote after the migration;
the downgrade drops the sealed originals and leaves the text masked."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from bot.cli.app import app
from bot.settings import get_settings
from bot.store import migrate, pii_backfill
from bot.store.db import make_engine
from bot.store.models import (
    AccountRow,
    AuditEventRow,
    CallRow,
    EntityRow,
    PiiSecretRow,
    ReviewItemRow,
    RiskAssessmentRow,
    TurnRow,
    UserRow,
    VerdictRow,
)
from bot.store.pii_backfill import mask_stored
from bot.store.pii_crypto import KeyRing, PiiKeyError, process_keyring
from bot.web.calls_service import reveal_call
from bot.web.deps import Viewer
from tests.store.pii_helpers import HEAD_TABLES, new_key, scan

ID_NUMBER = "11010519491231002X"
CARD = "6222021001123456"  # 16 digits in one run
PHONE = "+8613912345678"  # with its country code: one character longer masked
TYPED_CARD = "6217003210004567890"  # typed by the reviewer
TYPED_PHONE = "13700123456"
LINE_PHONE = "13512345678"  # in a gateway error

#: Every number above as bare digits: none may be anywhere once masked.
SECRETS = [ID_NUMBER, CARD, "13912345678", TYPED_CARD, TYPED_PHONE, LINE_PHONE]

CALLEE = f"我的身份证号{ID_NUMBER}，卡号{CARD}，电话{PHONE}，钱是王强的。"
#: The documented masks: an ID keeps its first and last character, a card its last four
#: digits, a phone its country code, first three and last four digits.
MASKED_ID, MASKED_CARD, MASKED_PHONE = "1" + "*" * 16 + "X", "*" * 12 + "3456", "+86 139****5678"
MASKED_CALLEE = f"我的身份证号{MASKED_ID}，卡号{MASKED_CARD}，电话{MASKED_PHONE}，钱是王强的。"
DECISION = f"identity confirmed by ID {ID_NUMBER}"
EXPLANATION = [
    {
        "feature": "card_lent", "description": "the card is with someone else",
        "category": "custody", "weight": 1.5, "hits": 1, "contribution": 1.5,
        "evidence": [{
            "topic": "card_custody", "node_id": "card_custody",
            "answer": f"卡号{CARD}借给朋友了", "match": "借给",
        }],
    }
]  # fmt: skip
REASON = f"客户另一张卡{TYPED_CARD}也在朋友手里"
CORRECTIONS = [{"turn_idx": 1, "text": f"卡借给朋友了，他电话{TYPED_PHONE}", "intent": None}]
ERROR = f"gateway: transfer to {LINE_PHONE} failed"

#: The cells whose originals a keyed backfill of one call seals: the ID and card keep
#: their length, the phone grows by one, so its end and the name after it move.
SEALED_CELLS = Counter(
    {
        ("turn", "text"): 1, ("turn", "decision"): 1,
        ("extracted_entity", "value"): 3, ("extracted_entity", "text"): 3,
        ("extracted_entity", "start"): 1, ("extracted_entity", "end"): 2,
        ("risk_assessment", "explanation"): 1, ("verdict", "reason"): 1,
        ("verdict", "turn_corrections"): 1, ("call_attempt", "error"): 1,
    }
)  # fmt: skip
#: Rows one call's backfill changes, per table (``mask_stored``'s counts).
MASKED_ROWS = {
    "turn": 1, "extracted_entity": 4, "risk_assessment": 1, "verdict": 1, "call_attempt": 1,
}  # fmt: skip


@dataclass(frozen=True)
class OldCall:
    call_id: int
    reviewer: Viewer


# -- a database the old code filled ---------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at revision 0006, by URL as ``bot db`` reaches it (PostgreSQL:
    a fresh schema, named in the URL's ``options``, percent-encoded)."""
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path / 'bot.db'}"
        migrate.upgrade(db, "0006")
        yield db
        return
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    db = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    text = db.render_as_string(hide_password=False)
    assert "%3D" in text
    try:
        migrate.upgrade(text, "0006")
        yield text
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    eng = make_engine(url)
    yield eng
    eng.dispose()


def _entity(call_id: int, label: str, value: str, text: str) -> EntityRow:
    """An entity of the callee's turn, its offsets into the clear text."""
    start = CALLEE.index(text)
    return EntityRow(
        call_id=call_id, turn_idx=1, label=label, value=value, text=text, start=start,
        end=start + len(text),
    )  # fmt: skip


def old_call(engine: Engine, tag: str) -> OldCall:
    """One call as the code before migration 0007 stored it: every number in clear,
    entity offsets into the clear text."""
    with Session(engine, expire_on_commit=False) as s:
        account = AccountRow(
            account_id=f"acct-{tag}", name="李娜", phone="+8613800000002",
            phone_e164="+8613800000002", card_last4="0002", scenario="suspicious_txn",
            model_score=0.8,
        )  # fmt: skip
        reviewer = UserRow(username=f"sup-{tag}", password_hash="-", role="supervisor")
        s.add_all([account, reviewer])
        s.flush()
        assert account.id is not None and reviewer.id is not None
        call = CallRow(account_pk=account.id, outcome="completed", error=ERROR)
        s.add(call)
        s.flush()
        assert call.id is not None
        bot = TurnRow(
            call_id=call.id, idx=0, role="bot", node_id="identity", topic="identity",
            text="请问您是李娜本人吗？", event="say",
        )  # fmt: skip
        callee = TurnRow(
            call_id=call.id, idx=1, role="callee", node_id="identity", topic="identity",
            text=CALLEE, event="answer", intent="affirm", decision=DECISION,
        )  # fmt: skip
        entities = [
            _entity(call.id, "id_number", ID_NUMBER, ID_NUMBER),
            _entity(call.id, "card_number", CARD, CARD),
            _entity(call.id, "phone", PHONE, PHONE),
            _entity(call.id, "person", "王强", "王强"),
        ]
        risk = RiskAssessmentRow(
            call_id=call.id, score=0.9, band="high", prior=0.2, prior_contribution=-1.4,
            logit=2.2, ruleset_version="r-1", band_reason="score above 0.7",
            explanation=EXPLANATION,
        )  # fmt: skip
        item = ReviewItemRow(call_id=call.id, reason="suspicious", state="done")
        s.add_all([bot, callee, *entities, risk, item])
        s.flush()
        assert item.id is not None
        s.add(
            VerdictRow(
                review_item_id=item.id, reviewer_id=reviewer.id, agree=False,
                corrected_disposition="suspend_all", reason=REASON,
                turn_corrections=CORRECTIONS,
            )
        )  # fmt: skip
        s.commit()
        who = Viewer(reviewer.id, reviewer.username, reviewer.role, "t")
        return OldCall(call.id, who)


# -- checks -------------------------------------------------------------------------------


def assert_clean(engine: Engine, require: tuple[str, ...] = HEAD_TABLES) -> int:
    """No number in clear anywhere; how many values were read."""
    found, read = scan(engine, SECRETS, require)
    assert not found, "\n".join(found)
    return read


def assert_masked(engine: Engine, call_id: int) -> None:
    """The call's rows hold the documented masks, entity offsets into the masked text."""
    with Session(engine) as s:
        turn = s.exec(select(TurnRow).where(TurnRow.call_id == call_id, TurnRow.idx == 1)).one()
        assert turn.text == MASKED_CALLEE
        assert turn.decision == f"identity confirmed by ID {MASKED_ID}"
        entities = {
            e.label: e for e in s.exec(select(EntityRow).where(EntityRow.call_id == call_id))
        }
        assert {k: (e.value, e.text) for k, e in entities.items()} == {
            "id_number": (MASKED_ID, MASKED_ID),
            "card_number": (MASKED_CARD, MASKED_CARD),
            "phone": (MASKED_PHONE, MASKED_PHONE),
            "person": ("王强", "王强"),
        }
        for e in entities.values():
            assert turn.text[e.start : e.end] == e.text, e
        risk = s.exec(select(RiskAssessmentRow).where(RiskAssessmentRow.call_id == call_id)).one()
        assert risk.explanation[0]["evidence"][0]["answer"] == f"卡号{MASKED_CARD}借给朋友了"
        verdict = s.exec(select(VerdictRow)).all()[-1]
        assert verdict.reason == f"客户另一张卡{'*' * 15}7890也在朋友手里"
        assert verdict.turn_corrections[0]["text"] == "卡借给朋友了，他电话137****3456"
        call = s.get(CallRow, call_id)
        assert call is not None and call.error == "gateway: transfer to 135****5678 failed"


def sealed_cells(engine: Engine, call_id: int) -> Counter[tuple[str, str]]:
    with Session(engine) as s:
        rows = s.exec(select(PiiSecretRow).where(PiiSecretRow.call_id == call_id)).all()
    assert len({r.nonce for r in rows}) == len(rows)  # a nonce per value
    return Counter((r.table_name, r.column_name) for r in rows)


def reveal(engine: Engine, old: OldCall) -> tuple[Any, dict[str, Any]]:
    """The audited reveal of ``old`` (the process key), committed like a request; the
    call shown and the audit event's detail."""
    with Session(engine, expire_on_commit=False) as s:
        detail = reveal_call(s, old.reviewer, old.call_id, "case 2026-118 backfill check")
        s.commit()  # nothing unmasked may be written back
    with Session(engine) as s:
        event = s.exec(
            select(AuditEventRow).where(
                AuditEventRow.action == "pii_revealed",
                AuditEventRow.object_id == str(old.call_id),
            )
        ).one()
    assert event.actor == old.reviewer.username
    return detail, event.detail


def assert_revealed(engine: Engine, old: OldCall) -> None:
    """With the key, the reveal gives back every original, offsets included."""
    detail, audit = reveal(engine, old)
    turn = next(t for t in detail.turns if t.idx == 1)
    assert turn.text == CALLEE and turn.decision == DECISION
    shown = {e.label: e for e in detail.entities[1]}
    assert {k: e.value for k, e in shown.items()} == {
        "id_number": ID_NUMBER, "card_number": CARD, "phone": PHONE, "person": "王强",
    }  # fmt: skip
    for e in shown.values():
        assert CALLEE[e.start : e.end] == e.text
    assert detail.assessment.explanation == EXPLANATION
    (verdict,) = detail.verdicts
    assert verdict.reason == REASON and verdict.turn_corrections == CORRECTIONS
    assert detail.call.error == ERROR
    assert audit["decrypted"] == SEALED_CELLS.total() and audit["undecryptable"] == 0


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for t in meta.sorted_tables
        }


def mask_again(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        return mask_stored(conn, process_keyring())


# -- tests --------------------------------------------------------------------------------


@pytest.mark.slow  # migrates, reveals, backfills and reveals again: 2-3 s
def test_migration_masks_old_rows_and_seals_the_originals_under_the_key(
    url: str, engine: Engine, pii_key: str
) -> None:
    old = old_call(engine, "a")
    found, _ = scan(engine, SECRETS, require=("turn", "verdict"))
    assert len(found) >= 8  # the old rows hold the numbers in clear

    migrate.upgrade(url)

    assert assert_clean(engine) > 40
    assert_masked(engine, old.call_id)
    assert sealed_cells(engine, old.call_id) == SEALED_CELLS
    with Session(engine) as s:
        (key_id,) = set(s.exec(select(PiiSecretRow.key_id)).all())
    keys = process_keyring()
    assert keys is not None and key_id == keys.key_id

    before = snapshot(engine)
    assert mask_again(engine) == {}  # idempotent: masked text masks to itself
    assert snapshot(engine) == before

    assert_revealed(engine, old)
    assert_clean(engine)

    late = old_call(engine, "late")  # an old worker, still running during the upgrade
    assert scan(engine, SECRETS)[0]
    assert mask_again(engine) == {**MASKED_ROWS, "sealed": SEALED_CELLS.total()}
    assert_clean(engine)
    assert_masked(engine, late.call_id)
    assert sealed_cells(engine, late.call_id) == SEALED_CELLS
    assert_revealed(engine, late)
    assert mask_again(engine) == {}


def test_migration_without_a_key_masks_and_keeps_nothing(
    url: str, engine: Engine, no_pii_key: None
) -> None:
    old = old_call(engine, "a")
    migrate.upgrade(url)
    assert_clean(engine)
    assert_masked(engine, old.call_id)
    with Session(engine) as s:
        assert s.exec(select(PiiSecretRow)).first() is None
    detail, audit = reveal(engine, old)
    assert next(t for t in detail.turns if t.idx == 1).text == MASKED_CALLEE
    assert detail.call.error == "gateway: transfer to 135****5678 failed"
    assert audit["decrypted"] == 0 and audit["undecryptable"] == 0
    assert mask_again(engine) == {}


def test_bot_db_upgrade_and_mask_pii_on_the_command_line(
    url: str, engine: Engine, pii_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    get_settings.cache_clear()
    runner = CliRunner()
    first = old_call(engine, "a")
    up = runner.invoke(app, ["db", "upgrade"])
    assert up.exit_code == 0, up.output
    late = old_call(engine, "late")

    result = runner.invoke(app, ["db", "mask-pii"])

    assert result.exit_code == 0, result.output
    counts = {**MASKED_ROWS, "sealed": SEALED_CELLS.total()}
    expected = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    assert expected in result.output.replace("\n", ""), result.output
    assert not [n for n in SECRETS if n in result.output]
    assert_clean(engine)
    assert_masked(engine, late.call_id)
    assert_revealed(engine, first)
    assert_revealed(engine, late)
    again = runner.invoke(app, ["db", "mask-pii"])
    assert again.exit_code == 0 and "nothing to mask" in again.output, again.output


def test_downgrade_to_0006_drops_the_sealed_originals_and_keeps_the_masks(
    url: str, engine: Engine, pii_key: str
) -> None:
    old = old_call(engine, "a")
    migrate.upgrade(url)
    assert sealed_cells(engine, old.call_id).total() == SEALED_CELLS.total()

    migrate.downgrade(url, "0006")

    assert "pii_secret" not in sa.inspect(engine).get_table_names()
    assert_clean(engine, require=("turn", "extracted_entity", "verdict"))
    assert_masked(engine, old.call_id)
    migrate.upgrade(url)  # and up again: nothing left to seal, the table is back empty
    assert sealed_cells(engine, old.call_id).total() == 0
    assert_masked(engine, old.call_id)


def test_a_bad_key_fails_the_migration_before_anything_changes(
    url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = old_call(engine, "a")
    before = snapshot(engine)
    monkeypatch.setenv("BOT_PII__KEY", "not-base64-of-32-bytes")
    get_settings.cache_clear()
    with pytest.raises(PiiKeyError) as failed:
        migrate.upgrade(url)
    assert "not-base64" not in str(failed.value)  # the message never holds the key
    assert "pii_secret" not in sa.inspect(engine).get_table_names()
    assert snapshot(engine) == before

    monkeypatch.setenv("BOT_PII__KEY", new_key())
    get_settings.cache_clear()
    try:
        migrate.upgrade(url)
    finally:
        get_settings.cache_clear()
    assert_clean(engine)
    assert sealed_cells(engine, old.call_id) == SEALED_CELLS


def test_a_data_step_that_failed_half_way_can_be_run_again(
    url: str, engine: Engine, pii_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the table it created survives the failure (DDL is not transactional
    there); on PostgreSQL everything rolls back. Either way the rerun completes."""
    old = old_call(engine, "a")

    def fail_after_masking(conn: Connection, keys: KeyRing | None) -> dict[str, int]:
        mask_stored(conn, keys, batch=1)
        raise OSError("disk full")

    monkeypatch.setattr(pii_backfill, "mask_stored", fail_after_masking)
    with pytest.raises(OSError, match="disk full"):
        migrate.upgrade(url)
    assert scan(engine, SECRETS, require=("turn",))[0]  # nothing masked was committed
    with Session(engine) as s:
        (version,) = s.execute(sa.text("SELECT version_num FROM alembic_version")).one()
    assert version == "0006"
    left = "pii_secret" in sa.inspect(engine).get_table_names()
    assert left == (engine.dialect.name == "sqlite")

    monkeypatch.undo()
    monkeypatch.setenv("BOT_PII__KEY", pii_key)
    get_settings.cache_clear()
    migrate.upgrade(url)
    assert_clean(engine)
    assert sealed_cells(engine, old.call_id) == SEALED_CELLS
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("pii_secret")}
    assert {"ix_pii_secret_call_id", "ix_pii_secret_key_id"} <= indexes


def test_small_batches_split_calls_and_mask_the_same(
    url: str, engine: Engine, pii_key: str
) -> None:
    """Batches of 2 cut through calls (2 turns, 4 entities each) and through the rows
    changed together: every row is counted once and every original sealed once."""
    migrate.upgrade(url)
    olds = [old_call(engine, tag) for tag in ("a", "b", "c")]
    with engine.begin() as conn:
        counts = mask_stored(conn, process_keyring(), batch=2)
    assert counts == {
        **{t: 3 * n for t, n in MASKED_ROWS.items()},
        "sealed": 3 * SEALED_CELLS.total(),
    }
    assert_clean(engine)
    for old in olds:
        assert_masked(engine, old.call_id)
        assert sealed_cells(engine, old.call_id) == SEALED_CELLS
    assert_revealed(engine, olds[1])
    assert mask_again(engine) == {}
