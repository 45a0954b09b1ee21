"""What the bank receives for each disposition, and how it is queued for delivery.

The outbox entry is written in the same transaction as the call's result (see
:mod:`bot.campaign.recorder`), so a disposition is never decided without being queued,
nor queued for a call that was not stored. The payload is built once, at enqueue time,
and stored with the entry: every retry sends the same bytes, whatever changes later.

Personal numbers never leave unmasked: the bank keys on its own ``account_id``, and
the phone number is only there (masked) so a human can recognise the call.
The schema is documented in ``docs/delivery.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from sqlmodel import Session, col, select

from bot.core.masking import mask_phone, mask_text
from bot.store.models import (
    AccountRow,
    CallRow,
    DispositionRow,
    OutboxRow,
    RiskAssessmentRow,
)

#: Version of the payload schema (bump on incompatible changes; see docs/delivery.md).
SCHEMA_VERSION: Final = 1
#: How many scoring reasons travel with a disposition (the largest contributions).
MAX_REASONS: Final = 5

Kind = Literal["disposition", "correction"]


def idempotency_key(kind: str, call_id: int | None, disposition_id: int | None) -> str:
    """Stable per disposition: a retried or duplicated delivery carries the same key.

    A correction is a new disposition row (``source="review"``), so it gets its own key.
    """
    if call_id is None or disposition_id is None:
        raise ValueError("idempotency key: the call and the disposition must be flushed first")
    return f"{kind}:{call_id}:{disposition_id}"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def reasons_summary(assessment: RiskAssessmentRow | None) -> list[dict[str, Any]]:
    """The scoring features that moved the score most, without their evidence (the
    callee's own words stay in the bank-side review tool, not in the push)."""
    if assessment is None:
        return []
    hits = sorted(
        assessment.explanation, key=lambda h: abs(float(h.get("contribution", 0.0))), reverse=True
    )
    return [
        {
            "feature": h.get("feature"),
            "category": h.get("category"),
            "contribution": round(float(h.get("contribution", 0.0)), 4),
            "description": mask_text(str(h.get("description", ""))),
        }
        for h in hits[:MAX_REASONS]
    ]


def build_payload(
    disposition: DispositionRow,
    call: CallRow,
    account: AccountRow,
    *,
    kind: Kind = "disposition",
    assessment: RiskAssessmentRow | None = None,
    corrects: str | None = None,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body for the bank (a plain dict of JSON types).

    ``corrects`` is the idempotency key of the delivery a correction replaces;
    it is required for ``kind="correction"`` and refused otherwise.
    """
    if (kind == "correction") != (corrects is not None):
        raise ValueError("a correction must name the delivery it corrects, and only a correction")
    return {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "idempotency_key": idempotency_key(kind, call.id, disposition.id),
        "corrects": corrects,
        "account_id": account.account_id,
        "phone": mask_phone(account.phone_e164 or account.phone),
        "branch": account.branch,
        "disposition": disposition.disposition,
        "situation": disposition.situation,
        "decided_by": disposition.source,
        "needs_review": disposition.needs_review,
        "call": {
            "id": call.id,
            "attempt": call.attempt_no,
            "outcome": call.outcome,
            "risk_score": call.risk_score,
            "risk_band": call.risk_band,
            "script": f"{call.script_id}@v{call.script_version}" if call.script_id else None,
            "ruleset": call.ruleset_version,
            "started_at": _iso(call.started_at),
            "ended_at": _iso(call.ended_at),
        },
        "risk": {
            "score": assessment.score if assessment else call.risk_score,
            "band": assessment.band if assessment else call.risk_band,
            "band_reason": mask_text(assessment.band_reason) if assessment else None,
            "reasons": reasons_summary(assessment),
        },
        "decided_at": _iso(disposition.created_at),
        **({"review": review} if review is not None else {}),
    }


def _assessment(session: Session, call_id: int | None) -> RiskAssessmentRow | None:
    return session.exec(
        select(RiskAssessmentRow).where(RiskAssessmentRow.call_id == call_id)
    ).first()


def original_key(session: Session, call_id: int | None) -> str | None:
    """The idempotency key of the first disposition delivered for ``call_id``, if any."""
    return session.exec(
        select(OutboxRow.idempotency_key)
        .join(DispositionRow, col(DispositionRow.id) == OutboxRow.disposition_id)
        .where(DispositionRow.call_id == call_id, OutboxRow.kind == "disposition")
        .order_by(col(OutboxRow.id))
    ).first()


def enqueue(
    session: Session,
    disposition: DispositionRow,
    call: CallRow,
    account: AccountRow,
    *,
    kind: Kind = "disposition",
    review: dict[str, Any] | None = None,
) -> OutboxRow:
    """Add the outbox entry for ``disposition`` to ``session`` (the caller commits).

    The call's risk assessment (if stored, even in this same unflushed transaction) gives
    the reasons; a correction references the call's original disposition delivery.
    """
    corrects = None
    if kind == "correction":
        corrects = original_key(session, call.id)
        if corrects is None:
            raise ValueError(f"call {call.id}: no disposition was queued, nothing to correct")
    payload = build_payload(
        disposition,
        call,
        account,
        kind=kind,
        assessment=_assessment(session, call.id),
        corrects=corrects,
        review=review,
    )
    row = OutboxRow(
        disposition_id=disposition.id,  # type: ignore[arg-type]  # flushed: checked by the key
        idempotency_key=payload["idempotency_key"],
        kind=kind,
        payload=payload,
        created_at=disposition.created_at,
        next_attempt_at=disposition.created_at,
    )
    session.add(row)
    return row
