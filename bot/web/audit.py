"""The append-only audit log: every view of personal data, verdict, template change,
publish and login. Rows are only ever inserted (the routes have no update or delete for
them); supervisors read and export them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.core.masking import mask_text
from bot.store.models import AuditEventRow, utcnow


def audit(
    session: Session,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    **detail: Any,
) -> AuditEventRow:
    """Add one event to the caller's transaction. Free text in ``detail`` is PII-masked."""
    clean = {k: mask_text(v) if isinstance(v, str) else v for k, v in detail.items()}
    row = AuditEventRow(
        at=utcnow(),
        actor=actor[:60],
        action=action[:40],
        object_type=object_type[:30],
        object_id=str(object_id)[:60],
        detail=clean,
    )
    session.add(row)
    return row
