"""The append-only audit log: every view of personal data, verdict, template change,
publish and login. Rows are only ever inserted (the routes have no update or delete for
them); supervisors read and export them.

The client's network address is kept in the event's detail under :data:`CLIENT_KEY`
(no column of its own, so no migration): every request's session notes the client's
address (:func:`note_client`, in :func:`bot.web.deps.db`) and every event that session
adds carries it. Behind a TLS proxy that is the proxy's address unless the server trusts
its forwarded headers (``bot web`` runs uvicorn with ``proxy_headers=True``)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bot.core.masking import mask_text
from bot.store.models import AuditEventRow, utcnow

#: The detail key of the client's address (reserved: callers' keys never start with _).
CLIENT_KEY = "_client"


def note_client(session: Session, address: str | None) -> None:
    """Record ``address`` as the client of every event ``session`` adds from now on."""
    if address:
        session.info[CLIENT_KEY] = address[:64]


def audit(
    session: Session,
    actor: str,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    **detail: Any,
) -> AuditEventRow:
    """Add one event to the caller's transaction. Free text in ``detail`` is PII-masked;
    the client's address noted on the session (:func:`note_client`) is added."""
    clean = {k: mask_text(v) if isinstance(v, str) else v for k, v in detail.items()}
    client = session.info.get(CLIENT_KEY)
    if client and CLIENT_KEY not in clean:
        clean[CLIENT_KEY] = client
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
