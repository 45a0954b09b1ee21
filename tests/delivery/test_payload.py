"""What the bank receives: content, masking, keys, corrections."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.delivery.payload import SCHEMA_VERSION, build_payload, enqueue, idempotency_key
from bot.store.db import session_scope
from bot.store.models import AccountRow, CallRow, DispositionRow, OutboxRow
from tests.delivery.conftest import PHONE_RAW, T0, outbox_rows, seed_dispositions


def _rows(engine: Engine) -> tuple[DispositionRow, CallRow, AccountRow]:
    with session_scope(engine) as s:
        return (
            s.exec(select(DispositionRow)).one(),
            s.exec(select(CallRow)).one(),
            s.exec(select(AccountRow)).one(),
        )


def test_stored_payload_content(engine: Engine) -> None:
    seed_dispositions(engine)
    (row,) = outbox_rows(engine)
    p = row.payload
    assert row.state == "pending" and row.next_attempt_at == T0 and row.kind == "disposition"
    assert p["schema"] == SCHEMA_VERSION and p["kind"] == "disposition"
    assert p["idempotency_key"] == row.idempotency_key == f"disposition:{p['call']['id']}:1"
    assert p["corrects"] is None
    assert (p["account_id"], p["disposition"], p["situation"]) == (
        "acct-00000",
        "suspend_non_counter",
        "completed_high",
    )
    assert p["phone"] == "+86 138****0002"
    assert p["call"]["outcome"] == "completed" and p["call"]["script"] == "suspicious_txn@v3"
    assert p["risk"]["band"] == "high" and p["risk"]["score"] == 0.91
    assert p["decided_at"] == T0.isoformat() and p["decided_by"] == "bot"


def test_reasons_are_the_largest_contributions_without_evidence(engine: Engine) -> None:
    seed_dispositions(engine)
    reasons = outbox_rows(engine)[0].payload["risk"]["reasons"]
    assert [r["feature"] for r in reasons] == ["custody_lent", "salary", "purpose_unclear"]
    assert all(set(r) == {"feature", "category", "contribution", "description"} for r in reasons)


def test_no_full_personal_number_anywhere_in_the_payload(engine: Engine) -> None:
    seed_dispositions(engine)
    text = json.dumps(outbox_rows(engine)[0].payload, ensure_ascii=False)
    for secret in (PHONE_RAW, "13800000009", "44010619900101123X", "李娜"):
        assert secret not in text


def test_key_is_deterministic_and_unique(engine: Engine) -> None:
    seed_dispositions(engine)
    disposition, call, account = _rows(engine)
    again = build_payload(disposition, call, account)
    assert again["idempotency_key"] == idempotency_key("disposition", call.id, disposition.id)
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        enqueue(s, disposition, call, account)  # the same disposition queued twice


def test_correction_references_the_original_delivery(engine: Engine) -> None:
    seed_dispositions(engine)
    _, call, account = _rows(engine)
    original = outbox_rows(engine)[0].idempotency_key
    with session_scope(engine) as s:
        corrected = DispositionRow(
            call_id=call.id,  # type: ignore[arg-type]
            account_pk=account.id,  # type: ignore[arg-type]
            disposition="clear",
            situation="review",
            source="review",
        )
        s.add(corrected)
        s.flush()
        row = enqueue(s, corrected, call, account, kind="correction")
    assert row.kind == "correction" and row.idempotency_key.startswith("correction:")
    assert row.payload["corrects"] == original and row.payload["disposition"] == "clear"
    assert row.payload["decided_by"] == "review"
    assert len(outbox_rows(engine)) == 2


def test_correction_needs_an_original(engine: Engine) -> None:
    seed_dispositions(engine)
    disposition, call, account = _rows(engine)
    with session_scope(engine) as s:
        s.execute(sa.delete(OutboxRow))
    with pytest.raises(ValueError, match="nothing to correct"), session_scope(engine) as s:
        enqueue(s, disposition, call, account, kind="correction")
    with pytest.raises(ValueError):
        build_payload(disposition, call, account, kind="disposition", corrects="x")


def test_unflushed_rows_have_no_key() -> None:
    with pytest.raises(ValueError, match="flushed"):
        idempotency_key("disposition", None, 3)
