"""A reviewer's overturned disposition goes back to the bank as a correction.

The correction is a new disposition row (``source="review"``) and an outbox entry of
kind ``correction`` built by :func:`bot.delivery.payload.enqueue`, so it carries the
documented schema (``docs/delivery.md``): the full state after the correction,
``decided_by: "review"``, ``corrects`` naming the original delivery, and a ``review``
object: the previous disposition, the reviewer and the reason (masked).

If the bot's own disposition was never queued (a ``retry_call`` that a reviewer settles),
there is nothing to correct: the reviewer's disposition is queued as the first one.

Everything is added to the caller's session: it commits with the verdict or not at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from bot.core.masking import mask_text
from bot.delivery.payload import Kind, enqueue, original_key
from bot.store.models import AccountRow, CallRow, DispositionRow, OutboxRow


def review_block(
    previous: str | None, reviewer: str, reason: str, verdict_id: int | None
) -> dict[str, Any]:
    return {
        "previous_disposition": previous,
        "reviewer": reviewer,
        "reason": mask_text(reason),
        "verdict_id": verdict_id,
    }


def enqueue_correction(
    session: Session,
    call: CallRow,
    account: AccountRow,
    *,
    disposition: str,
    previous: str | None,
    reviewer: str,
    reason: str,
    verdict_id: int | None,
    now: dt.datetime,
) -> OutboxRow:
    """Queue the reviewer's ``disposition`` for ``call``; returns the outbox entry."""
    row = DispositionRow(
        call_id=call.id,  # type: ignore[arg-type]  # a stored call
        account_pk=account.id,  # type: ignore[arg-type]
        disposition=disposition,
        situation="review_overturn",
        needs_review=False,
        sampled=False,
        source="review",
        created_at=now,
    )
    session.add(row)
    session.flush()
    kind: Kind = "correction" if original_key(session, call.id) else "disposition"
    return enqueue(
        session,
        row,
        call,
        account,
        kind=kind,
        review=review_block(previous, reviewer, reason, verdict_id),
    )
